"""One search call, from its sampled params to its results: :class:`SearchCall`.

The searcher draws the params (a grid, a random space, Optuna's proposals, a list); a
SearchCall then runs these steps, each a method:
  plan     validate every config (ConfigError naming the parameter, before anything
           trains), check the budget (configs outside it become rejections), fold configs
           that differ only in seed together and expand each into its seeds;
  train    check the spec against the log, then hand every model the log does not hold to
           the trainer in ONE call (it trains them bucket by bucket);
  record   log each bucket as it finishes (the call's header goes in with the first one,
           so a call that fails before any model finished leaves the log as it was);
  finish   fold each config's seeds into one SearchResult as soon as all are done, and
           hand it to the on_result callbacks.
Callbacks run guarded (dendrax.search.callbacks.hooks); the time progress events take is
taken out of the trainer's timings. Under successive halving, the call's models finished
before (an interrupted run's, from the log) go to the trainer as ``replay``, so its rungs
rank every model of the call as the uninterrupted run did.
Pure Python: the trainer is the searcher's (imported lazily there).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import time
import warnings
from typing import Any, Mapping, Sequence

from dendrax.config import ModelConfig, count_params
from dendrax.plan import Bucket
from dendrax.search.budget import Rejection, no_fit_error
from dendrax.search.callbacks import hooks
from dendrax.search.log import config_key, outcome_record, trial_key
from dendrax.search.progress import SweepProgress, plural
from dendrax.search.record import call_parameters, labelled_params
from dendrax.search.results import SearchResult, aggregate, describe_params
from dendrax.spec import Progress, TrialOutcome, rewiring_rounds

MAX_REJECTIONS_SHOWN = 20  # the rest are counted; save_report lists them all


def replicate_seed(base: int, replicate: int) -> int:
    """Seed of replicate ``replicate`` of a config whose base seed is ``base``.

    Replicate 0 uses the base itself; later ones a hash of (base, replicate), so seeds do
    not depend on which other configs are in the search. Every config gets the same seeds,
    which makes comparisons between configs paired (same batch orders with data_order="own").
    """
    if replicate == 0:
        return int(base)
    digest = hashlib.sha256(f"dendrax-seed:{int(base)}:{replicate}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclasses.dataclass
class Candidate:
    """A config that fits the budget: its params (its values of the searched parameters),
    the validated config, and its models keyed by trial key, in seed order."""

    params: dict[str, Any]
    config: ModelConfig
    trials: dict[str, ModelConfig] = dataclasses.field(default_factory=dict)


class SearchCall:
    """Search call number ``index`` of ``searcher``: ``sampled`` params, logged under
    ``strategy`` and ``space``. :meth:`run` runs it; its fields hold where it stands:

      parameters  the searched parameters (:func:`~dendrax.search.record.call_parameters`),
                  which label the results
      candidates  the configs that fit the budget, in the order first sampled
      rejections  the configs outside the budget, each once
      positions   trial key -> its place in the call (the log keeps it, so a log reads
                  back in the same order)
      todo        the models to train: those the searcher has not finished before
      labels      trial key -> the bucket the trainer planned for it
      logged      trial keys this call has logged (a trainer may report a model twice)
      finished    candidate index -> its SearchResult, once all its seeds are done
    """

    trainer: Any = None  # None: the searcher's; a PBT call trains its own way (search/pbt.py)

    def __init__(self, searcher: Any, index: int, strategy: str, space: Mapping[str, Any],
                 sampled: Sequence[Mapping[str, Any]]):
        self.searcher = searcher
        self.index = index
        self.strategy = strategy
        self.space = dict(space)
        self.sampled = list(sampled)
        self.parameters = call_parameters(self.space, self.sampled)
        self.candidates: list[Candidate] = []
        self.rejections: list[Rejection] = []
        self.positions: dict[str, int] = {}
        self.todo: list[ModelConfig] = []
        self.labels: dict[str, str] = {}
        self.logged: set[str] = set()
        self.finished: dict[int, SearchResult] = {}
        self.display: SweepProgress | None = None
        # Time spent in progress events (display and on_epoch hooks) while models trained:
        # not training time, subtracted from what the trainer measured (see record).
        self.hook_seconds: dict[str, float] = {}  # bucket label -> seconds
        self.member_hook_seconds: dict[str, float] = {}  # trial key -> its share
        self.replay: dict[int, TrialOutcome] = {}
        self.on_epoch = hooks(searcher.callbacks, "on_epoch")
        self.on_result = hooks(searcher.callbacks, "on_result")

    def run(self, require_fit: bool = True) -> list[SearchResult]:
        """Plan, train what is missing, and return one result per candidate (in order).
        Adds the rejections to the searcher's ``rejected`` and every finished model to its
        finished models; with ``require_fit`` a call where nothing fits raises BudgetError."""
        searcher = self.searcher
        self.plan()
        searcher.rejected.extend(self.rejections)
        self.report_rejections()
        if not self.candidates:
            if require_fit:
                raise no_fit_error(searcher.budget, self.rejections)
            return []
        self.warn_no_rewiring()
        log = searcher._log
        if log is not None:  # refuses a foreign log
            log.begin(self.index, searcher.spec(self.strategy, self.space),
                      {"parameters": self.parameters,
                       "options": {**searcher.options(), "rank_by": searcher.rank_by}})
        self.todo = [t for c in self.candidates for key, t in c.trials.items()
                     if key not in searcher._completed]
        # Under successive halving the rungs rank every model of the call: those finished
        # already (an interrupted run's, in the log) are replayed from their histories,
        # so a resumed call keeps the survivors of the uninterrupted one.
        self.replay = {place: searcher._completed[key] for key, place in self.positions.items()
                       if key in searcher._completed} \
            if searcher.settings.halving_eta is not None and self.todo else {}
        if self.todo:
            self.train()
        if log is not None:
            log.finish()  # the header of a call that had nothing left to train
        # Counted only once trained: a call that failed (a crash in the trainer) and is
        # retried in the same process redraws the same samples and reuses the same header.
        searcher._n_searches += 1
        self.finish()
        results = [self.finished[i] for i in range(len(self.candidates))]
        if searcher.verbose:
            n_div = sum(r.diverged for r in results)
            print(f"Search completed: {len(results)} of {len(self.sampled)} configurations "
                  f"trained" + (f", {n_div} diverged" if n_div else "")
                  + (f", {len(self.rejections)} outside the budget" if self.rejections else ""))
        return results

    # ---- plan ---------------------------------------------------------------------------
    def plan(self) -> None:
        """Validate and budget-check the sampled params; group the configs that fit with
        their seeds.

        A 'seed' in the params is that config's base seed, so configs that differ only in
        seed become one candidate with several seeds; each base seed is expanded into
        ``seeds_per_config`` replicates. Repeated draws collapse into one.
        """
        searcher = self.searcher
        configs = [searcher._config(p) for p in self.sampled]  # every config validated first
        candidates: dict[str, Candidate] = {}
        rejections: dict[str, Rejection] = {}
        for params, config in zip(self.sampled, configs):
            key = config_key(config)
            total = count_params(config, in_dim=searcher.in_dim, n_classes=searcher.n_classes)
            reason = searcher.budget.reason(total)
            if reason is not None:
                rejections.setdefault(key, Rejection(
                    {k: v for k, v in params.items() if k != "seed"}, total, reason))
                continue
            candidate = candidates.setdefault(
                key, Candidate(labelled_params(config, self.parameters), config))
            for r in range(searcher.seeds_per_config):
                trial = config.replace(seed=replicate_seed(config.seed, r))
                candidate.trials.setdefault(trial_key(trial), trial)
        self.candidates = list(candidates.values())
        self.rejections = list(rejections.values())
        self.positions = {key: i for i, key in
                          enumerate(key for c in self.candidates for key in c.trials)}

    def report_rejections(self) -> None:
        searcher = self.searcher
        if not searcher.verbose or not self.rejections:
            return
        print(f"{len(self.rejections)} of {len(self.sampled)} configurations are outside the "
              f"budget of {searcher.budget.describe()} and will not be trained:")
        for r in self.rejections[:MAX_REJECTIONS_SHOWN]:
            print(f"  {r.reason}: {describe_params(r.params)}")
        if len(self.rejections) > MAX_REJECTIONS_SHOWN:
            print(f"  ... and {len(self.rejections) - MAX_REJECTIONS_SHOWN} more "
                  f"(all are listed by save_report)")

    def warn_no_rewiring(self) -> None:
        """Warn when resampling is on but the run ends before its first round: the trainer
        rewires after every ``steps_to_resample`` steps, and a run of n_epochs × (train
        examples // batch_size) steps shorter than that never rewires, so resampling on and
        off train identical models."""
        searcher = self.searcher
        per_epoch = (searcher.n_train or 0) // searcher.batch_size
        steps = searcher.n_epochs * per_epoch
        # An "mlp" has no dendritic layer: it never rewires, whatever its resampling field.
        idle = [c for c in self.candidates if c.config.architecture != "mlp"
                and c.config.synaptic_resampling
                and rewiring_rounds(steps, c.config.steps_to_resample) == 0]
        if idle:
            shortest = min(c.config.steps_to_resample for c in idle)
            searcher._warn(f"{len(idle)} of {len(self.candidates)} configurations have "
                           f"synaptic_resampling=True but the run has only {steps} steps "
                           f"({searcher.n_epochs} epochs of {per_epoch}), fewer "
                           f"than steps_to_resample (>= {shortest}): they never rewire and "
                           f"train exactly as without resampling. Train longer, on more "
                           f"data, or lower steps_to_resample")

    # ---- train --------------------------------------------------------------------------
    def train(self) -> None:
        """One trainer call for every model in ``todo``: its bucket plan is shown and kept
        (:meth:`planned`), each bucket is recorded as it ends (:meth:`record`), and the
        per-epoch events go to the display and the on_epoch callbacks (:meth:`progress`)."""
        searcher = self.searcher
        self.display = (SweepProgress(0, len(self.todo), searcher.n_epochs)
                        if searcher.verbose else None)
        reports = self.display is not None or bool(self.on_epoch)
        trainer = self.trainer or searcher.trainer
        extra = {}
        if self.replay:
            if _accepts(trainer, "replay"):
                extra["replay"] = self.replay
            else:
                warnings.warn(f"trainer {trainer!r} takes no replay= argument, so the rungs of "
                              f"successive halving rank only the {len(self.todo)} models left "
                              f"to train, not the {len(self.replay)} this call finished "
                              f"before", RuntimeWarning, stacklevel=4)
        try:
            outcomes = trainer(
                self.todo, searcher.data, searcher.settings,
                progress=self.progress if reports else None, on_bucket_done=self.record,
                on_plan=self.planned,
                log=self.display.message if self.display is not None else None, **extra)
        finally:
            if self.display is not None:
                self.display.close()
        if len(outcomes) != len(self.todo):
            raise RuntimeError(f"trainer returned {len(outcomes)} outcomes for "
                               f"{len(self.todo)} configs; it must return one per config, "
                               f"in input order")
        for i, (config, outcome) in enumerate(zip(self.todo, outcomes)):
            if trial_key(config) != trial_key(outcome.config):
                raise RuntimeError(f"trainer outcome {i} is for {outcome.config}, expected "
                                   f"{config}; outcomes must come back in input order")
        self.record(outcomes)  # a trainer that never called on_bucket_done still gets logged

    def planned(self, buckets: Sequence[Bucket]) -> None:
        """The trainer's bucket plan: kept in ``labels``, shown when verbose."""
        self.labels.update({trial_key(self.todo[i]): b.label for b in buckets
                            for i in b.members})
        if self.display is not None:
            self.display.set_plan([b.label for b in buckets])
        if self.searcher.verbose:
            padding = self.searcher.settings.padding
            kind = "shape" if padding == "exact" else padding
            n_done = len(self.positions) - len(self.todo)
            say = self.display.message if self.display is not None else print
            say(f"Training {plural(len(self.todo), 'model')} for "
                f"{plural(len(self.candidates), 'configuration')} in "
                f"{plural(len(buckets), kind + ' bucket')}"
                + (f" ({n_done} more already finished)" if n_done else ""))

    def progress(self, event: Progress) -> None:
        """A trainer event: to the display, and each epoch to on_epoch(bucket, epoch,
        members) with every member's params, seed and metrics."""
        t0 = time.perf_counter()
        try:
            if self.display is not None:
                self.display.update(event)
            if not self.on_epoch or event.phase != "train" or not event.metrics \
                    or not event.members:
                return
            params = {key: c.params for c in self.candidates for key in c.trials}
            for hook in self.on_epoch:
                # Fresh dicts for every hook: what one writes reaches neither the results
                # nor the next hook.
                members = [{"params": copy.deepcopy(params.get(trial_key(config), {})),
                            "seed": int(config.seed),
                            **{m: copy.deepcopy(values[i])
                               for m, values in event.metrics.items()}}
                           for i, config in enumerate(event.members)]
                hook(event.bucket, event.epoch, members)
        finally:
            # Events other than "compile" come from inside the trainer's timed epochs.
            if event.phase != "compile":
                spent = time.perf_counter() - t0
                self.hook_seconds[event.bucket] = self.hook_seconds.get(event.bucket, 0.0) + spent
                members = event.members or ()
                for config in members:
                    key = trial_key(config)
                    self.member_hook_seconds[key] = (self.member_hook_seconds.get(key, 0.0)
                                                     + spent / len(members))

    # ---- record and finish --------------------------------------------------------------
    def record(self, outcomes: Sequence[TrialOutcome]) -> None:
        """A finished bucket: its models not yet logged join the searcher's finished
        models and the log (with their place in the call), and every config whose seeds
        are now all done is finished."""
        searcher = self.searcher
        fresh = {}
        for o in outcomes:
            key = trial_key(o.config)
            if key not in self.logged and key not in fresh:
                fresh[key] = self.without_hook_time(key, o)
        for key, o in fresh.items():
            expected = count_params(o.config, in_dim=searcher.in_dim,
                                    n_classes=searcher.n_classes)
            if int(o.total_params) != expected:
                warnings.warn(f"trainer counted {o.total_params} parameters for "
                              f"{o.config}, count_params says {expected}", RuntimeWarning)
        log = searcher._log
        try:
            if log is not None:
                log.append([{**outcome_record(o, self.index),
                             "position": self.positions.get(key)}
                            for key, o in fresh.items()])
        finally:
            # With a log, a model is finished once the log holds it: after a failed write
            # the same call run again trains it again, and after an interrupted one what
            # reached the file counts (the log reads back what it appended).
            for key, o in fresh.items():
                if log is None or key in log.completed:
                    self.logged.add(key)
                    searcher._completed[key] = o
        if fresh:
            key, first = next(iter(fresh.items()))
            if self.display is not None:
                self.display.bucket_done(list(fresh.values()),
                                         first.bucket or self.labels.get(key, ""))
            self.finish()

    def without_hook_time(self, key: str, outcome: TrialOutcome) -> TrialOutcome:
        """``outcome`` with the time the progress display and the on_epoch hooks took
        during its epochs taken out of its train_time (its share) and its bucket's wall
        time (the bucket's total): the trainer's clock ran while they did."""
        own = self.member_hook_seconds.get(key, 0.0)
        bucket = self.hook_seconds.get(outcome.bucket or self.labels.get(key, ""), 0.0)
        if not own and not bucket:
            return outcome
        return dataclasses.replace(
            outcome, train_time=max(0.0, float(outcome.train_time) - own),
            bucket_wall_time=max(0.0, float(outcome.bucket_wall_time) - bucket))

    def finish(self) -> None:
        """Aggregate every candidate whose seeds have all finished and that is not in
        ``finished`` yet, and hand each new result to the on_result callbacks."""
        completed = self.searcher._completed
        for i, c in enumerate(self.candidates):
            if i in self.finished or any(k not in completed for k in c.trials):
                continue
            # Each config carries the bucket label its trainer reported (resumed ones too).
            self.finished[i] = aggregate(c.params, [completed[k] for k in c.trials],
                                         bucket=completed[next(iter(c.trials))].bucket)
            for hook in self.on_result:
                hook(self.finished[i])


def _accepts(function: Any, name: str) -> bool:
    """Whether ``function`` takes a keyword argument ``name`` (or any keyword)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
