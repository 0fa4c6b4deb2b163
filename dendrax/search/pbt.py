"""Population-based training, the pure-Python side: exploit/explore decisions, bounds,
schedules and lineage (no JAX; the population side is dendrax.population.pbt).

Rules (Jaderberg et al. 2017, with Ray Tune's defaults):

- A *generation* happens after epoch e (1 <= e < n_epochs) when e >= ``burn_in`` and e is a
  multiple of ``ready_every`` (:meth:`PBTStrategy.boundaries`).
- Members are ranked by their last validation accuracy (never test); a diverged member,
  or one whose accuracy is not finite, scores -inf and is always in the bottom. The bottom
  ``quantile`` (at least one member, at most half of them, plus every diverged one) each
  copy a member drawn uniformly from the top ``quantile`` (alive members only).
- Explore: every name in ``mutate`` whose distribution in the space is not fixed changes;
  with probability ``resample_probability`` it is drawn afresh from its distribution,
  otherwise it is perturbed: a range is multiplied by a factor drawn from ``perturb``
  (a change in log space) and clipped to the range (integers rounded); a list of choices
  moves to a neighbouring value. A value never leaves its distribution's bounds.
- The decisions of generation g draw from ``random.Random("dendrax-pbt:{seed}:{g}")`` only,
  so a run resumed from a checkpoint decides exactly as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
from typing import Any, Mapping, Sequence

from dendrax.config import STREAM_SEED_FIELDS, ModelConfig
from dendrax.errors import ConfigError
from dendrax.search import spaces

MUTABLE = ("lr", "weight_decay", "percentage_resample", "steps_to_resample",
           "synaptic_resampling")


@dataclasses.dataclass(frozen=True)
class Exploit:
    """One decision: ``member`` takes ``parent``'s whole state (None: keeps its own, as
    in a replay) and continues with ``config`` (its hyperparameters from now on)."""

    member: int
    parent: int | None
    config: ModelConfig
    member_score: float = math.nan
    parent_score: float = math.nan


def own_seeds(config: ModelConfig) -> dict[str, Any]:
    """A member's seeds (its seed and any stream seeds): a copy keeps them, never takes
    its parent's."""
    return {name: getattr(config, name) for name in ("seed", *STREAM_SEED_FIELDS)}


def hyperparameters(config: ModelConfig, names: Sequence[str] = MUTABLE) -> dict[str, Any]:
    return {name: getattr(config, name) for name in names}


def explore_value(name: str, value: Any, dist: spaces.Distribution, rng: random.Random,
                  perturb: Sequence[float], resample_probability: float) -> Any:
    """A new value for one hyperparameter, inside ``dist``'s bounds (see the module doc)."""
    if isinstance(dist, spaces.Fixed):
        return value
    if rng.random() < resample_probability:
        value = dist.sample(rng)
        if isinstance(dist, spaces.Choice):
            return value
        # exp(log(x)) may land a rounding error outside [low, high]: clip the draw too.
        return type(value)(min(max(value, dist.low), dist.high))
    if isinstance(dist, spaces.Choice):
        values = list(dist.values)
        try:
            index = values.index(value)
        except ValueError:  # not one of the choices: the nearest choice by value, else first
            index = 0
        index = min(max(index + rng.choice((-1, 1)), 0), len(values) - 1)
        return values[index]
    factor = rng.choice(tuple(perturb))
    new = min(max(float(value) * factor, dist.low), dist.high)
    if isinstance(dist, spaces.IntRange):
        return int(min(max(round(new), dist.low), dist.high))
    return new


def explore(config: ModelConfig, space: Mapping[str, spaces.Distribution],
            mutate: Sequence[str], rng: random.Random, perturb: Sequence[float],
            resample_probability: float) -> ModelConfig:
    changes = {name: explore_value(name, getattr(config, name), space[name], rng, perturb,
                                   resample_probability)
               for name in mutate if name in space}
    return config.replace(**changes) if changes else config


@dataclasses.dataclass(frozen=True)
class PBTStrategy:
    """The exploit/explore rule of one PBT search (see the module doc)."""

    space: Mapping[str, spaces.Distribution]
    ready_every: int
    burn_in: int = 0
    quantile: float = 0.25
    perturb: tuple = (0.8, 1.25)
    resample_probability: float = 0.25
    mutate: tuple = MUTABLE
    seed: int = 0

    def __post_init__(self) -> None:
        for name in self.mutate:
            if name not in MUTABLE:
                raise ConfigError(f"mutate: {name!r} cannot change during training; choose "
                                  f"among {', '.join(MUTABLE)}")
        if not isinstance(self.ready_every, int) or isinstance(self.ready_every, bool) \
                or self.ready_every < 1:
            raise ConfigError(f"ready_every={self.ready_every!r} must be an integer >= 1")
        if not isinstance(self.burn_in, int) or isinstance(self.burn_in, bool) \
                or self.burn_in < 0:
            raise ConfigError(f"burn_in={self.burn_in!r} must be an integer >= 0")
        if not (isinstance(self.quantile, (int, float)) and 0 < self.quantile <= 0.5):
            raise ConfigError(f"quantile={self.quantile!r} must be in (0, 0.5]")
        if not (isinstance(self.resample_probability, (int, float))
                and 0 <= self.resample_probability <= 1):
            raise ConfigError(f"resample_probability={self.resample_probability!r} must be "
                              f"in [0, 1]")
        if not self.perturb or not all(isinstance(f, (int, float)) and f > 0 and
                                       math.isfinite(f) for f in self.perturb):
            raise ConfigError(f"perturb={self.perturb!r} must be positive factors")

    def to_spec(self) -> dict[str, Any]:
        return {"ready_every": self.ready_every, "burn_in": self.burn_in,
                "quantile": self.quantile, "perturb": list(self.perturb),
                "resample_probability": self.resample_probability,
                "mutate": list(self.mutate)}

    def boundaries(self, n_epochs: int) -> list[int]:
        """The epochs after which a generation happens, in order (generation g is the
        g-th, counted from 1)."""
        return [e for e in range(1, n_epochs) if e >= self.burn_in and e % self.ready_every == 0]

    def rng(self, generation: int) -> random.Random:
        return random.Random(f"dendrax-pbt:{self.seed}:{generation}")

    def decide(self, generation: int, configs: Sequence[ModelConfig],
               scores: Sequence[float]) -> list[Exploit]:
        """The exploits of ``generation`` given each member's config and score (NaN or
        -inf: diverged)."""
        n = len(configs)
        score = [s if s is not None and math.isfinite(s) else -math.inf for s in scores]
        order = sorted(range(n), key=lambda i: (-score[i], i))
        q = min(max(1, int(n * self.quantile)), n // 2)
        top = [i for i in order[:q] if score[i] > -math.inf]
        bottom = set(order[n - q:]) | {i for i in range(n) if score[i] == -math.inf}
        bottom -= set(top)
        if not top or not bottom:
            return []
        rng = self.rng(generation)
        out = []
        for member in sorted(bottom):
            parent = rng.choice(top)
            config = explore(configs[parent].replace(**own_seeds(configs[member])), self.space,
                             self.mutate, rng, self.perturb, self.resample_probability)
            out.append(Exploit(member, parent, config, score[member], score[parent]))
        return out


@dataclasses.dataclass(frozen=True)
class ScheduleStrategy:
    """A replay: no exploit; at each epoch of ``changes`` (epoch → hyperparameters), every
    member takes those values."""

    changes: Mapping[int, Mapping[str, Any]]

    def boundaries(self, n_epochs: int) -> list[int]:
        return sorted(e for e in self.changes if 0 < e < n_epochs)

    def decide(self, generation: int, configs: Sequence[ModelConfig],
               scores: Sequence[float]) -> list[Exploit]:
        epoch = self.boundaries(10 ** 9)[generation - 1]
        values = dict(self.changes[epoch])
        return [Exploit(i, None, c.replace(**values)) for i, c in enumerate(configs)]


# ---- lineage ------------------------------------------------------------------------------

def exploit_record(search_index: int, generation: int, epoch: int, decision: Exploit,
                   old: ModelConfig, keys: Sequence[str]) -> dict[str, Any]:
    """The log line of one exploit (type "exploit"); ``keys`` are the trial keys of the
    members (their initial configs), which name them in the log."""
    return {"type": "exploit", "search_index": search_index, "generation": generation,
            "epoch": epoch, "member": decision.member, "parent": decision.parent,
            "member_key": keys[decision.member], "parent_key": keys[decision.parent],
            "old": hyperparameters(old), "new": hyperparameters(decision.config),
            "member_score": decision.member_score, "parent_score": decision.parent_score}


@dataclasses.dataclass
class Lineage:
    """The ancestry of one member: ``segments`` are (first epoch, last epoch, member,
    hyperparameters), oldest first; the model trained in epoch e (1-based) under the
    values of the segment holding e."""

    member_key: str
    segments: list
    initial: dict[str, Any]  # the root ancestor's initial config

    def schedule(self) -> dict[int, dict[str, Any]]:
        """Epoch (from 1) → the hyperparameters that trained it."""
        return {e: dict(values) for first, last, _, values in self.segments
                for e in range(first, last + 1)}

    def changes(self) -> dict[int, dict[str, Any]]:
        """Epoch after which the values change → the new values (what a replay applies)."""
        out = {}
        for first, _, _, values in self.segments[1:]:
            out[first - 1] = dict(values)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"format": "dendrax-pbt-schedule", "version": 1, "config": self.initial,
                "n_epochs": self.segments[-1][1] if self.segments else 0,
                "initial": hyperparameters(ModelConfig.from_dict(self.initial)),
                "changes": {str(e): v for e, v in self.changes().items()},
                "ancestry": [{"first_epoch": f, "last_epoch": l, "member": m, "values": v}
                             for f, l, m, v in self.segments]}


def lineage(member_key: str, n_epochs: int, initial: Mapping[str, Mapping[str, Any]],
            exploits: Sequence[Mapping[str, Any]]) -> Lineage:
    """The ancestry of ``member_key`` after ``n_epochs``: ``initial`` maps each member's
    trial key to its initial config, ``exploits`` are the exploit records (later records
    of one (generation, member) replace earlier ones: a resumed run may log one twice)."""
    unique: dict[tuple, Mapping[str, Any]] = {}
    for r in exploits:
        unique[(r["generation"], r["member_key"])] = r
    by_member: dict[str, list] = {}
    for r in sorted(unique.values(), key=lambda r: r["epoch"]):
        by_member.setdefault(r["member_key"], []).append(r)

    def values_at(key: str, epoch: int) -> dict[str, Any]:
        """The hyperparameters ``key`` trained epoch ``epoch`` with (after its exploits
        at epochs before it)."""
        values = hyperparameters(ModelConfig.from_dict(dict(initial[key])))
        for r in by_member.get(key, []):
            if r["epoch"] < epoch:
                values = dict(r["new"])
        return values

    segments = []
    key, end = member_key, n_epochs
    while True:
        before = [r for r in by_member.get(key, []) if r["epoch"] < end]
        start = before[-1]["epoch"] + 1 if before else 1
        segments.append((start, end, key, values_at(key, end)))
        if not before:
            break
        key, end = before[-1]["parent_key"], before[-1]["epoch"]
    segments.reverse()
    return Lineage(member_key, [list(s) for s in segments], dict(initial[segments[0][2]]))


def format_lineage(lin: Lineage, score: float | None = None,
                   names: Sequence[str] = MUTABLE) -> str:
    lines = [f"best member {lin.member_key}"
             + (f" (val acc {score:.4f})" if score is not None else "")]
    lines.append("ancestry (oldest first):")
    for first, last, key, _ in lin.segments:
        lines.append(f"  epochs {first}-{last}: member {key}")
    lines.append("schedule (epoch: " + ", ".join(names) + "):")
    previous = None
    for epoch, values in sorted(lin.schedule().items()):
        row = tuple(values.get(n) for n in names)
        if row != previous:
            lines.append(f"  {epoch}: " + ", ".join(_short(v) for v in row))
            previous = row
    return "\n".join(lines)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclasses.dataclass
class PBTLog:
    """What a log holds of one PBT call: each member's initial config, final validation
    accuracy (-inf: diverged) and slot, and every exploit (deduplicated, in order)."""

    search_index: int
    n_epochs: int
    initial: dict  # trial key -> initial config (dict)
    scores: dict  # trial key -> final validation accuracy
    slots: dict  # trial key -> its member index in the population
    exploits: list

    @property
    def best(self) -> str:
        """The best member (ties: the first slot)."""
        return max(sorted(self.scores, key=lambda k: self.slots.get(k, 0)),
                   key=lambda k: self.scores[k])

    def lineage(self, key: str | None = None) -> Lineage:
        return lineage(self.best if key is None else key, self.n_epochs, self.initial,
                       self.exploits)


def read_pbt_log(path: str, search_index: int | None = None) -> PBTLog:
    """The last PBT call of a log (or call ``search_index``), from the log alone."""
    from dendrax.search.log import LogError, read_log

    contents = read_log(path)
    pbt = [h["search_index"] for h in contents.headers
           if h["spec"].get("strategy") == "pbt"]
    if not pbt:
        raise LogError(f"{path}: no population-based training search in this log "
                       f"(--lineage needs one)")
    index = pbt[-1] if search_index is None else search_index
    space = contents.headers[index]["spec"].get("space") or {}
    n_epochs = (space.get("pbt") or {}).get("n_epochs") \
        or contents.headers[index]["spec"].get("n_epochs")
    trials = {k: r for k, r in contents.trials.items() if r.get("search_index") == index}
    if not trials:
        raise LogError(f"{path}: the PBT search #{index} has no finished members yet")
    outcomes = {k: contents.outcomes[k] for k in trials}

    def final(o):
        v = o.final("val_accuracy")
        return -math.inf if o.diverged or not math.isfinite(v) else v

    unique: dict[tuple, dict] = {}
    for r in contents.exploits:
        if r.get("search_index") == index:
            unique[(r["generation"], r["member_key"])] = r
    exploits = sorted(unique.values(), key=lambda r: (r["generation"], r["member"]))
    slots = {k: r.get("position") if isinstance(r.get("position"), int) else i
             for i, (k, r) in enumerate(trials.items())}
    for r in exploits:
        slots[r["member_key"]], slots[r["parent_key"]] = r["member"], r["parent"]
    return PBTLog(index, int(n_epochs), {k: o.config.to_dict() for k, o in outcomes.items()},
                  {k: final(o) for k, o in outcomes.items()}, slots, exploits)


def read_lineage(path: str, search_index: int | None = None) -> tuple[Lineage, float]:
    """The best member's lineage in a PBT search log (the last PBT call unless
    ``search_index``), and its final validation accuracy; from the log alone."""
    log = read_pbt_log(path, search_index)
    return log.lineage(), log.scores[log.best]


def save_schedule(path: str, lin: Lineage) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(lin.to_json(), f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_schedule(value: Any) -> dict[str, Any]:
    """A schedule (its JSON document, or a path to one) checked: config, n_epochs and
    changes {epoch: values}."""
    if isinstance(value, (str, os.PathLike)):
        try:
            with open(value, encoding="utf-8") as f:
                value = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read the schedule {value!r}: {e}") from None
    if not isinstance(value, Mapping) or not isinstance(value.get("config"), Mapping):
        raise ConfigError("a schedule must be an object with 'config' (the initial config) "
                          "and 'changes' ({epoch: hyperparameters})")
    changes = value.get("changes") or {}
    out = {}
    for epoch, values in changes.items():
        try:
            e = int(epoch)
        except (TypeError, ValueError):
            raise ConfigError(f"schedule: epoch {epoch!r} is not an integer") from None
        if not isinstance(values, Mapping) or set(values) - set(MUTABLE):
            raise ConfigError(f"schedule: the values at epoch {epoch} must be an object of "
                              f"{', '.join(MUTABLE)}")
        out[e] = dict(values)
    return {"config": dict(value["config"]), "changes": out,
            "n_epochs": value.get("n_epochs")}


# ---- the search calls ---------------------------------------------------------------------

def _call_class():
    from dendrax.search.pipeline import Candidate, SearchCall
    from dendrax.search.record import labelled_params
    from dendrax.search.log import trial_key

    class PBTCall(SearchCall):
        """A search call whose members train as one PBT population: each member is its own
        candidate (members of one initial config and different seeds are not folded
        together: they are different lineages), trained by ``trainer``."""

        def __init__(self, *args, trainer, **kwargs):
            super().__init__(*args, **kwargs)
            self.trainer = trainer

        def plan(self) -> None:
            searcher = self.searcher
            candidates: dict[str, Candidate] = {}
            for params in self.sampled:
                config = searcher._config(params)
                key = trial_key(config)
                candidates.setdefault(key, Candidate(labelled_params(config, self.parameters),
                                                     config, {key: config}))
            self.candidates = list(candidates.values())
            self.rejections = []
            self.positions = {key: i for i, key in enumerate(candidates)}

    return PBTCall


def _draw_population(searcher: Any, space: Mapping[str, spaces.Distribution], size: int,
                     rng: random.Random) -> list[dict[str, Any]]:
    """``size`` draws that fit the budget, in random_search's order of draws, each with its
    own seed (the master seed's replicates, unless the space draws seeds)."""
    from dendrax.search.arguments import MAX_DRAWS_PER_TRIAL
    from dendrax.search.budget import BudgetError
    from dendrax.search.pipeline import replicate_seed

    drawn: list[dict[str, Any]] = []
    for _ in range(MAX_DRAWS_PER_TRIAL * size):
        params = spaces.sample_space(space, 1, rng)[0]
        if searcher._fits(params):
            drawn.append(params)
            if len(drawn) == size:
                break
    if len(drawn) < size:
        raise BudgetError(f"population_based_training: only {len(drawn)} of {size} members "
                          f"fit the budget of {searcher.budget.describe()} in "
                          f"{MAX_DRAWS_PER_TRIAL * size} draws; widen the space or the budget")
    if "seed" not in space:
        drawn = [{**p, "seed": replicate_seed(searcher.seed, i) if i else searcher.seed}
                 for i, p in enumerate(drawn)]
    seeds = [p.get("seed", searcher.seed) for p in drawn]
    if len(set(seeds)) < len(seeds):
        raise ConfigError("population_based_training: two members drew the same seed; "
                          "every member needs its own")
    return drawn


def _pbt_trainer(searcher: Any, index: int, strategy: Any, n_epochs: int, live: list,
                 checkpoint: str | None, on_generation: Any):
    """A Trainer that runs the call's members as one PBT population, logging each exploit
    as it happens."""
    from dendrax.search.log import trial_key

    def trainer(configs, data, settings, **kwargs):
        from dendrax.population.pbt import train_pbt  # lazy: JAX

        keys = [trial_key(c) for c in configs]

        def on_exploits(generation, epoch, decisions, old):
            records = [exploit_record(index, generation, epoch, d, old[d.member], keys)
                       for d in decisions if d.parent is not None]
            if records and searcher._log is not None:
                searcher._log.append(records)
            return records

        kwargs.pop("replay", None)  # successive halving's; PBT has no rungs
        outcomes = train_pbt(configs, data, dataclasses.replace(settings, n_epochs=n_epochs),
                             strategy=strategy, on_exploits=on_exploits, lineage=live,
                             on_generation=on_generation, checkpoint=checkpoint,
                             resume=searcher.resume, **kwargs)
        # Every member is in the log now (on_bucket_done logged them): the checkpoint of
        # the run is no longer needed (a resume finds the whole call in the log).
        if checkpoint is not None and searcher._log is not None:
            try:
                os.remove(checkpoint)
            except OSError:
                pass
        return outcomes

    return trainer


def _checkpoint_path(searcher: Any, index: int, checkpoint: str | None) -> str | None:
    if checkpoint is not None:
        return os.fspath(checkpoint)
    return f"{searcher.log_path}.pbt{index}.ckpt" if searcher.log_path else None


def population_based_training(searcher: Any, param_distributions: Mapping[str, Any],
                              population_size: int, n_epochs: int | None, ready_every: int,
                              burn_in: int, quantile: float, perturb: Sequence[float],
                              resample_probability: float, mutate: Sequence[str],
                              checkpoint: str | None = None, on_generation: Any = None):
    """See :meth:`HyperparameterSearcher.population_based_training`."""
    from dendrax.checks import check_int

    population_size = check_int("population_size", population_size, 2, 4096)
    n_epochs = searcher.n_epochs if n_epochs is None else check_int("n_epochs", n_epochs, 1,
                                                                     100_000)
    wanted = {"perturb": "a list of factors, e.g. [0.8, 1.25]",
              "mutate": "a list of names, e.g. ['lr'] ([] for selection only)"}
    for name, value in (("perturb", perturb), ("mutate", mutate)):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}={value!r} must be {wanted[name]}")
    space = spaces.parse_space(param_distributions)
    searcher._check_values({name: spaces.candidate_values(d) for name, d in space.items()})
    index = searcher._n_searches
    strategy = PBTStrategy(space, ready_every, burn_in, quantile, tuple(perturb),
                           resample_probability, tuple(mutate),
                           seed=int(searcher._rng(index).getrandbits(62)))
    sampled = _draw_population(searcher, space, population_size, searcher._rng(index))
    if searcher.verbose:
        print(f"\nPopulation-based training: {population_size} members, {n_epochs} epochs, "
              f"a generation every {ready_every} epochs after {burn_in}; "
              f"{len(strategy.boundaries(n_epochs))} generations")
    spec = {"param_distributions": spaces.space_spec(space),
            "pbt": {**strategy.to_spec(), "population_size": population_size,
                    "n_epochs": n_epochs}}
    live: list = []
    trainer = _pbt_trainer(searcher, index, strategy, n_epochs, live,
                           _checkpoint_path(searcher, index, checkpoint), on_generation)
    results = _run_call(searcher, "pbt", spec, sampled, trainer)
    searcher.results.extend(results)
    return results, _live_lineage(searcher, index, n_epochs, results, live)


def _run_call(searcher: Any, strategy: str, spec: Mapping[str, Any], sampled: list,
              trainer: Any) -> list:
    from dendrax.search.log import jsonable

    call = _call_class()(searcher, searcher._n_searches, strategy, spec, sampled,
                         trainer=trainer)
    searcher._calls.append({"strategy": strategy, "space": jsonable(spec),
                            "parameters": call.parameters})
    return call.run(True)


def _live_lineage(searcher: Any, index: int, n_epochs: int, results: list,
                  live: list) -> Lineage | None:
    """The best member's lineage after a PBT call: from the log when there is one (a
    resumed run logged the early generations in an earlier process), else from this run."""
    from dendrax.search.log import trial_key

    if searcher.log_path is not None:
        return read_lineage(searcher.log_path, index)[0]
    outcomes = {trial_key(o.config): o for k, o in searcher._completed.items()}
    keys = {k for r in results for k in
            (trial_key(ModelConfig.from_dict({**r.config, "seed": s})) for s in r.seeds)}
    outcomes = {k: o for k, o in outcomes.items() if k in keys}

    def final(key):
        v = outcomes[key].final("val_accuracy")
        return -math.inf if outcomes[key].diverged or not math.isfinite(v) else v

    order = {trial_key(ModelConfig.from_dict({**r.config, "seed": s})): i
             for i, r in enumerate(results) for s in r.seeds}
    best = max(sorted(outcomes, key=lambda k: order[k]), key=final)
    initial = {k: o.config.to_dict() for k, o in outcomes.items()}
    return lineage(best, n_epochs, initial, live)


def replay(searcher: Any, schedule: Any, seeds: Sequence[int]):
    """See :meth:`HyperparameterSearcher.replay`."""
    if isinstance(schedule, Lineage):
        schedule = schedule.to_json()
    loaded = load_schedule(schedule)
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) < len(seeds):
        raise ConfigError("replay: seeds must be a non-empty list of distinct integers")
    n_epochs = int(loaded["n_epochs"] or searcher.n_epochs)
    base = {k: v for k, v in loaded["config"].items() if k != "seed"}
    sampled = [{**base, "seed": s} for s in seeds]
    strategy = ScheduleStrategy(loaded["changes"])
    spec = {"schedule": {"config": base, "n_epochs": n_epochs,
                         "changes": {str(e): v for e, v in sorted(loaded["changes"].items())}}}
    index = searcher._n_searches
    trainer = _pbt_trainer(searcher, index, strategy, n_epochs, [], None, None)
    results = _run_call(searcher, "replay", spec, sampled, trainer)
    searcher.results.extend(results)
    return results
