"""Robustness studies: which runs to train (the designs), and what their scores say (the
report). Pure Python over :mod:`dendrax.stats`; no JAX.

A design lists runs. Each run is one config with its seeds set, as the trainer takes them:
``seed``, and in a factorial design ``init_seed``, ``order_seed`` and ``rewire_seed``, one
per stream of randomness (initial weights, batch order, rewiring draws). A stream seed left
out of a run's params is derived from ``seed`` by the trainer, as before streams existed.
Each run also carries its coordinates in the design (which config, which level of each
factor), which is all the statistics need.

  replicate   N runs per config, all streams varied together; each config its own seeds
  paired      N seed tuples shared by every config: differences are taken seed by seed
  factorial   every combination of L_init init seeds × L_order order seeds × L_rewire
              rewire seeds (a crossed design), for the variance components

Every seed is a hash of the study's master seed and the run's coordinates (and, in a
replicate design, of the config's own params), so no seed depends on which other configs
are in the study or in what order they were given.

:class:`RobustnessReport` holds the raw scores (validation and test, every epoch) and
computes the statistics on demand. Test accuracy is what it reports; validation accuracy is
what any choice (the best config) is made on, so that the test figures stay unbiased.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from typing import Any, Mapping, Sequence

import numpy as np

from dendrax import stats

DESIGNS = ("replicate", "paired", "factorial")
STREAMS = ("init", "order", "rewire")
SEED_FIELDS = {stream: f"{stream}_seed" for stream in STREAMS}
METRICS = ("val", "test")
FORMAT_VERSION = 1
_SEED_MASK = 0x7FFFFFFF  # 31 bits, as the searcher's replicate seeds


# ---- seeds ---------------------------------------------------------------------------------

def _hash_seed(*parts: Any) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & _SEED_MASK


def shared_seed(master: int, replicate: int) -> int:
    """The ``seed`` of seed tuple ``replicate`` of a paired study: the formula of
    ``dendrax.search.pipeline.replicate_seed`` (the master seed itself for replicate 0),
    so a paired study draws the seeds a search with ``seeds_per_config`` draws."""
    if replicate == 0:
        return int(master)
    return _hash_seed("dendrax-seed", int(master), int(replicate))


def stream_seed(master: int, stream: str, level: int) -> int:
    """The seed of level ``level`` of stream ``stream`` ("init", "order", "rewire") in a
    factorial study with master seed ``master``: a SHA-256 hash, 31 bits."""
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; streams are {STREAMS}")
    return _hash_seed("dendrax-stream", int(master), stream, int(level))


def _config_key(params: Mapping[str, Any]) -> str:
    """The config's identity without its seeds: canonical JSON."""
    return json.dumps({k: v for k, v in params.items()
                       if k != "seed" and k not in SEED_FIELDS.values()},
                      sort_keys=True, default=str)


# ---- designs -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Run:
    """One model to train: ``params`` (the config with its seeds set), the index of its
    config in the design, and its ``levels``: {"seed": j} in a replicate or paired design,
    {"init": i, "order": j, "rewire": k} in a factorial one."""

    index: int
    config_index: int
    levels: dict[str, int]
    params: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Design:
    """A robustness study's runs, with what produced them."""

    kind: str
    seed: int
    names: tuple[str, ...]
    configs: tuple[dict[str, Any], ...]
    factors: tuple[str, ...]
    runs: tuple[Run, ...]

    def __len__(self) -> int:
        return len(self.runs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Design":
        runs = tuple(Run(index=int(r["index"]), config_index=int(r["config_index"]),
                         levels={k: int(v) for k, v in r["levels"].items()},
                         params=dict(r["params"])) for r in data["runs"])
        return cls(kind=data["kind"], seed=int(data["seed"]), names=tuple(data["names"]),
                   configs=tuple(dict(c) for c in data["configs"]),
                   factors=tuple(data["factors"]), runs=runs)


def _params(config: Any) -> dict[str, Any]:
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    if not isinstance(config, Mapping):
        raise TypeError(f"a config is a mapping of params or a ModelConfig, got "
                        f"{type(config).__name__}")
    return {k: v for k, v in config.items() if k not in SEED_FIELDS.values()}


def _configs(configs: Any) -> tuple[tuple[str, ...], tuple[dict[str, Any], ...]]:
    """(names, params without stream seeds): a mapping gives its names; a sequence gets
    names from the params that differ between its configs."""
    named = isinstance(configs, Mapping) and bool(configs) and all(
        isinstance(v, Mapping) or hasattr(v, "to_dict") for v in configs.values())
    if named:
        names, params = tuple(str(n) for n in configs), tuple(map(_params, configs.values()))
    else:
        if isinstance(configs, Mapping) or hasattr(configs, "to_dict"):
            configs = [configs]  # one config
        params = tuple(_params(c) for c in configs)
        varying = sorted({k for p in params for k in p if k != "seed"
                          and len({json.dumps(q.get(k), default=str) for q in params}) > 1})
        names = tuple(", ".join(f"{k}={p.get(k)}" for k in varying) or f"config {i}"
                      for i, p in enumerate(params))
        if len(params) == 1:
            names = ("config",)
    if not params:
        raise ValueError("a robustness study needs at least one config")
    keys = [_config_key(p) for p in params]
    if len(set(keys)) != len(keys):
        raise ValueError("two configs of the study are the same apart from their seeds")
    if len(set(names)) != len(names):
        raise ValueError(f"config names must be distinct, got {names}")
    return names, params


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return value


def replicate(configs: Any, n_seeds: int, seed: int = 0) -> Design:
    """``n_seeds`` runs of each config with every stream varied together (only ``seed``
    set). Each config's seeds are hashed from the master ``seed``, the config's params and
    the replicate number: configs do not share seeds, so their runs are independent
    samples (for seed-by-seed comparisons use :func:`paired`)."""
    names, params = _configs(configs)
    _count("n_seeds", n_seeds)
    runs = []
    for c, p in enumerate(params):
        key = hashlib.sha256(_config_key(p).encode()).hexdigest()[:16]
        for j in range(n_seeds):
            runs.append(Run(len(runs), c, {"seed": j},
                            {**p, "seed": _hash_seed("dendrax-replicate", int(seed), key, j)}))
    return Design("replicate", int(seed), names, params, ("seed",), tuple(runs))


def paired(configs: Any, n_seeds: int, seed: int = 0) -> Design:
    """``n_seeds`` seed tuples shared by every config: run j of every config has ``seed`` =
    :func:`shared_seed` (seed, j), hence the same initial-weight, batch-order and rewiring
    streams wherever the configs' shapes agree. Differences between configs are then
    taken seed by seed (:func:`dendrax.stats.paired_difference`)."""
    names, params = _configs(configs)
    _count("n_seeds", n_seeds)
    runs = [Run(c * n_seeds + j, c, {"seed": j}, {**p, "seed": shared_seed(seed, j)})
            for c, p in enumerate(params) for j in range(n_seeds)]
    return Design("paired", int(seed), names, params, ("seed",), tuple(runs))


def factorial(config: Any, levels: Mapping[str, int] | None = None, seed: int = 0) -> Design:
    """A crossed design: one run for every combination of a level of each stream in
    ``levels`` (default 4 init × 4 order × 4 rewire = 64 runs), the level's seed from
    :func:`stream_seed`. ``seed`` (the master seed) is also every run's ``seed``, so a
    stream not in ``levels`` is held fixed at the stream derived from it. Several configs
    (a sequence or mapping) each get the same grid of seeds, which pairs them."""
    levels = dict(levels if levels is not None else {s: 4 for s in STREAMS})
    unknown = sorted(set(levels) - set(STREAMS))
    if unknown or not levels:
        raise ValueError(f"levels name streams among {STREAMS}, got {sorted(levels)}")
    for stream, count in levels.items():
        _count(f"levels[{stream!r}]", count)
    factors = tuple(s for s in STREAMS if s in levels)
    names, params = _configs(config)
    grid = list(itertools.product(*(range(levels[f]) for f in factors)))
    runs = []
    for c, p in enumerate(params):
        for cell in grid:
            seeds = {SEED_FIELDS[f]: stream_seed(seed, f, level) for f, level in zip(factors, cell)}
            runs.append(Run(len(runs), c, dict(zip(factors, cell)),
                            {**p, "seed": int(seed), **seeds}))
    return Design("factorial", int(seed), names, params, factors, tuple(runs))


def make_design(kind: str, configs: Any, n_seeds: int | None = None,
                levels: Mapping[str, int] | None = None, seed: int = 0) -> Design:
    """The design named ``kind`` ("replicate", "paired" or "factorial")."""
    if kind == "replicate":
        return replicate(configs, n_seeds, seed)
    if kind == "paired":
        return paired(configs, n_seeds, seed)
    if kind == "factorial":
        return factorial(configs, levels, seed)
    raise ValueError(f"design={kind!r}: use one of {DESIGNS}")


# ---- the report ----------------------------------------------------------------------------

def _curve(values: Any) -> list[float]:
    """A run's per-epoch scores as floats, NaN for missing or non-finite values."""
    out = []
    for v in values or ():
        v = math.nan if v is None else float(v)
        out.append(v if math.isfinite(v) else math.nan)
    return out


def _pct(x: float, digits: int = 2) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f}"


def _interval(ci: tuple[float, float], digits: int = 2) -> str:
    return f"[{_pct(ci[0], digits)}, {_pct(ci[1], digits)}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


class RobustnessReport:
    """The outcome of a robustness study: its :class:`Design`, each run's scores
    (``scores[i]`` = {"val": [...], "test": [...]}, one value per epoch, for
    ``design.runs[i]``; None for a run without scores), and the statistics of
    :mod:`dendrax.stats`, computed on first use and kept.

    A run's score is its last epoch's. Runs whose score is missing or not finite (diverged)
    are left out of every statistic, and the tables say how many remain. ``n_test`` (the
    test set's size) gives the binomial noise floor. ``confidence``, ``n_boot`` and ``seed``
    apply to every interval. A report reads the same built live or loaded with
    :meth:`load`.
    """

    def __init__(self, design: Design, scores: Sequence[Mapping[str, Sequence[float]] | None],
                 n_test: int | None = None, confidence: float = 0.95,
                 n_boot: int = stats.N_BOOT, seed: int = 0):
        if len(scores) != len(design.runs):
            raise ValueError(f"{len(scores)} scores for the design's {len(design.runs)} runs")
        self.design = design
        self.scores = [None if s is None else {m: _curve(s.get(m)) for m in METRICS}
                       for s in scores]
        self.n_test = None if n_test is None else int(n_test)
        self.confidence, self.n_boot, self.seed = float(confidence), int(n_boot), int(seed)
        self._cache: dict[tuple, Any] = {}

    @classmethod
    def from_histories(cls, design: Design, histories: Sequence[Mapping[str, Sequence[float]]
                                                                 | None], **options: Any
                       ) -> "RobustnessReport":
        """From the trainer's per-run histories (``TrialOutcome.history``: val_accuracy and
        test_accuracy per epoch), in the order of ``design.runs``."""
        return cls(design, [None if h is None else {"val": h.get("val_accuracy"),
                                                    "test": h.get("test_accuracy")}
                            for h in histories], **options)

    def _cached(self, key: tuple, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @staticmethod
    def _check_metric(metric: str) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric={metric!r}: use one of {METRICS}")

    # ---- the data, per run and per config ------------------------------------------------

    def final(self, metric: str = "test") -> np.ndarray:
        """Each run's last-epoch score (NaN where missing), in run order."""
        self._check_metric(metric)
        return np.array([s[metric][-1] if s and s[metric] else math.nan for s in self.scores])

    def config_scores(self, metric: str = "test") -> dict[str, np.ndarray]:
        """Each config's finite final scores, in run order."""
        final = self.final(metric)
        out = {}
        for c, name in enumerate(self.design.names):
            values = [final[r.index] for r in self.design.runs if r.config_index == c]
            out[name] = np.array([v for v in values if math.isfinite(v)])
        return out

    def best(self) -> str | None:
        """The config with the highest mean validation score: the one a choice picks
        (never by test accuracy)."""
        means = {n: v.mean() for n, v in self.config_scores("val").items() if v.size}
        return max(means, key=means.get) if means else None

    # ---- statistics -----------------------------------------------------------------------

    def summaries(self, metric: str = "test") -> dict[str, stats.Summary]:
        """:func:`dendrax.stats.summarize` of each config with at least one score."""
        return self._cached(("summaries", metric), lambda: {
            name: stats.summarize(v, self.confidence, self.n_boot, self.seed)
            for name, v in self.config_scores(metric).items() if v.size})

    def noise_floor(self) -> dict[str, float]:
        """Each config's test-set binomial standard error at its mean test accuracy
        (:func:`dendrax.stats.binomial_se`); empty when ``n_test`` is unknown."""
        if not self.n_test:
            return {}
        return {name: stats.binomial_se(float(np.clip(v.mean(), 0, 1)), self.n_test)
                for name, v in self.config_scores("test").items() if v.size}

    def variance_components(self, metric: str = "test") -> dict[str, stats.VarianceComponents]:
        """Per config of a factorial design whose every run has a score, the random-effects
        ANOVA of :func:`dendrax.stats.variance_components` over its factors; empty for
        other designs (a replicate has no factors to tell apart)."""
        def compute():
            if self.design.kind != "factorial":
                return {}
            final, out = self.final(metric), {}
            for c, name in enumerate(self.design.names):
                runs = [r for r in self.design.runs if r.config_index == c]
                values = [final[r.index] for r in runs]
                if not all(math.isfinite(v) for v in values):
                    continue  # an incomplete grid is no longer crossed and balanced
                factors = {f: [r.levels[f] for r in runs] for f in self.design.factors
                           if len({r.levels[f] for r in runs}) > 1}
                if factors:
                    out[name] = stats.variance_components(values, factors, self.confidence,
                                                          self.n_boot, self.seed)
            return out
        return self._cached(("variance", metric), compute)

    def _pairs(self, metric: str) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        """For paired and factorial designs, each pair of configs' scores matched by their
        levels (seed tuple), keeping the tuples scored in both."""
        if self.design.kind == "replicate" or len(self.design.names) < 2:
            return {}
        final = self.final(metric)
        by_config = [{tuple(sorted(r.levels.items())): final[r.index] for r in self.design.runs
                      if r.config_index == c} for c in range(len(self.design.names))]
        out = {}
        for i, j in itertools.combinations(range(len(self.design.names)), 2):
            shared = [k for k in by_config[i] if k in by_config[j]
                      and math.isfinite(by_config[i][k]) and math.isfinite(by_config[j][k])]
            out[(self.design.names[i], self.design.names[j])] = (
                np.array([by_config[i][k] for k in shared]),
                np.array([by_config[j][k] for k in shared]))
        return out

    def paired_differences(self, metric: str = "test") -> dict[tuple[str, str],
                                                               stats.PairedDifference]:
        """(A, B) → :func:`dendrax.stats.paired_difference` of A − B over shared seed
        tuples, for every pair of configs of a paired or factorial design."""
        return self._cached(("paired", metric), lambda: {
            pair: stats.paired_difference(a, b, self.confidence, self.n_boot, self.seed)
            for pair, (a, b) in self._pairs(metric).items() if a.size >= 2})

    def improvement(self, metric: str = "test") -> stats.ImprovementMatrix | None:
        """P(row > column) for every pair of configs (:func:`dendrax.stats.
        improvement_matrix`); None with fewer than two configs with scores."""
        def compute():
            scores = {n: v for n, v in self.config_scores(metric).items() if v.size}
            if len(scores) < 2:
                return None
            return stats.improvement_matrix(scores, self.confidence, self.n_boot, self.seed)
        return self._cached(("improvement", metric), compute)

    def seed_plan(self, delta: float = 0.005, power: float = 0.8, alpha: float = 0.05,
                  metric: str = "test") -> list[dict[str, Any]]:
        """Seeds per config to detect a difference ``delta`` (0.005 = half a point) at
        ``power`` with a two-sided t-test (:func:`dendrax.stats.seeds_needed`): for each
        pair of a paired design from the std of its paired differences; otherwise for each
        config from its own std, as an unpaired comparison with a config as variable.
        ``seeds`` is None where the std could not be measured (fewer than two runs, or no
        spread)."""
        plan = []
        if self._pairs(metric):
            sources = [(f"{a} − {b}", True, d.std)
                       for (a, b), d in self.paired_differences(metric).items()]
        else:
            sources = [(name, False, s.std) for name, s in self.summaries(metric).items()]
        for label, is_paired, std in sources:
            seeds = (stats.seeds_needed(delta, std, power, alpha, paired=is_paired)
                     if math.isfinite(std) and std > 0 else None)
            plan.append({"comparison": label, "paired": is_paired, "std": std,
                         "delta": delta, "power": power, "alpha": alpha, "seeds": seeds})
        return plan

    def epoch_curves(self, metric: str = "test") -> dict[str, dict[str, list[float]]]:
        """Per config and epoch: the mean over the runs with a finite score at that epoch,
        and the percentile-bootstrap CI of that mean (NaN with fewer than two runs)."""
        def compute():
            out = {}
            for c, name in enumerate(self.design.names):
                curves = [s[metric] for r, s in zip(self.design.runs, self.scores)
                          if r.config_index == c and s]
                n_epochs = max((len(x) for x in curves), default=0)
                mean, low, high = [], [], []
                for e in range(n_epochs):
                    values = np.array([x[e] for x in curves if e < len(x)
                                       and math.isfinite(x[e])])
                    mean.append(float(values.mean()) if values.size else math.nan)
                    ci = (stats.stratified_bootstrap_ci(values, "mean", self.confidence,
                                                        min(self.n_boot, 2000), self.seed)
                          if values.size >= 2 else (math.nan, math.nan))
                    low.append(ci[0])
                    high.append(ci[1])
                out[name] = {"epoch": list(range(1, n_epochs + 1)), "mean": mean,
                             "low": low, "high": high}
            return out
        return self._cached(("curves", metric), compute)

    # ---- storage --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"format": "dendrax-robustness", "version": FORMAT_VERSION,
                "design": self.design.to_dict(), "scores": self.scores, "n_test": self.n_test,
                "confidence": self.confidence, "n_boot": self.n_boot, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RobustnessReport":
        if data.get("format") != "dendrax-robustness":
            raise ValueError("not a dendrax robustness report")
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"robustness report version {data.get('version')!r}; this "
                             f"dendrax reads version {FORMAT_VERSION}")
        return cls(Design.from_dict(data["design"]), data["scores"], n_test=data["n_test"],
                   confidence=data["confidence"], n_boot=data["n_boot"], seed=data["seed"])

    def save(self, path: str) -> str:
        """Write the report as JSON, whole or not at all (a new file, fsync'ed, renamed
        over ``path``); non-finite scores are stored as null. Returns ``path``."""
        from dendrax.search.results import write_json  # keeps importing this module light

        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: str) -> "RobustnessReport":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def to_dataframe(self):
        """One row per run and epoch: run, config, each design factor's level, the run's
        seeds, epoch (1-based), val, test. Needs pandas (``pip install 'dendrax[pandas]'``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("RobustnessReport.to_dataframe needs pandas: "
                              "pip install 'dendrax[pandas]'") from None
        seed_fields = ["seed", *SEED_FIELDS.values()]
        rows = []
        for run, s in zip(self.design.runs, self.scores):
            base = {"run": run.index, "config": self.design.names[run.config_index],
                    **run.levels, **{k: run.params[k] for k in seed_fields if k in run.params}}
            n_epochs = max((len(s[m]) for m in METRICS), default=0) if s else 0
            for e in range(n_epochs):
                rows.append({**base, "epoch": e + 1, **{
                    m: s[m][e] if e < len(s[m]) else math.nan for m in METRICS}})
        return pd.DataFrame(rows)

    # ---- text -----------------------------------------------------------------------------

    def format(self, delta: float = 0.005, power: float = 0.8) -> str:
        """The tables, as plain text: per config, variance components (factorial designs),
        paired comparisons and P(A > B) (several configs), and the seed planner."""
        pct = int(round(100 * self.confidence))
        best = self.best()
        lines = [f"Robustness study: {self.design.kind} design, {len(self.design)} runs, "
                 f"master seed {self.design.seed}",
                 "Test accuracy in %, each run's last epoch. Validation is what any choice "
                 "uses: * marks the best config by mean validation accuracy.", ""]
        floor = self.noise_floor()
        summaries, val = self.summaries("test"), self.config_scores("val")
        rows = []
        for c, name in enumerate(self.design.names):
            total = sum(1 for r in self.design.runs if r.config_index == c)
            s = summaries.get(name)
            if s is None:
                rows.append([name + (" *" if name == best else ""), f"0/{total}"] + ["–"] * 6)
                continue
            rows.append([name + (" *" if name == best else ""), f"{s.n}/{total}",
                         f"{_pct(s.mean)} ± {_pct(s.std)}",
                         _pct(floor[name]) if name in floor else "–", _pct(s.median),
                         f"{_pct(s.iqm)} {_interval(s.iqm_ci)}", _interval(s.mean_ci),
                         _pct(val[name].mean()) if val[name].size else "–"])
        lines += _table(["config", "runs", "mean ± std", "binomial SE", "median",
                         f"IQM [{pct}% CI]", f"mean {pct}% CI", "val mean"], rows)
        if floor:
            lines.append(f"binomial SE: sqrt(p(1-p)/n) with n = {self.n_test} test examples, "
                         "the spread a finite test set alone gives; compare it with the std.")
        for name, vc in self.variance_components("test").items():
            lines += ["", f"Variance components of test accuracy, {name} "
                      f"({' × '.join(str(vc.levels[f]) for f in vc.factors)} levels, "
                      f"{vc.replicates} run per cell):"]
            lines += _table(["source", "variance (pt²)", "std (pt)", "share",
                             f"share {pct}% CI", f"variance {pct}% CI (pt²)", "df"],
                            [[c.name, f"{1e4 * c.variance:.4f}", f"{100 * math.sqrt(c.variance):.3f}",
                              f"{100 * c.share:.1f}%" if math.isfinite(c.share) else "–",
                              f"[{100 * c.share_ci[0]:.1f}%, {100 * c.share_ci[1]:.1f}%]",
                              f"[{1e4 * c.ci[0]:.4f}, {1e4 * c.ci[1]:.4f}]", str(c.df)]
                             for c in vc.components])
            note = ("residual includes the highest-order interaction (one run per cell); "
                    if vc.replicates == 1 else "")
            lines.append(f"{note}negative estimates shown as 0; CIs are generalized "
                         "(Monte Carlo) intervals.")
            if name in floor:
                lines.append(f"test-set binomial variance at this accuracy: "
                             f"{1e4 * floor[name] ** 2:.4f} pt² (part of every run's score).")
        differences = self.paired_differences("test")
        if differences:
            lines += ["", "Paired differences of test accuracy (A − B, points, same seeds):"]
            lines += _table(["A − B", "pairs", "mean", f"paired t {pct}% CI",
                             f"bootstrap {pct}% CI", "p"],
                            [[f"{a} − {b}", str(d.n), _pct(d.mean, 3), _interval(d.t_ci, 3),
                              _interval(d.bootstrap_ci, 3), f"{d.p_value:.3g}"]
                             for (a, b), d in differences.items()])
        matrix = self.improvement("test")
        if matrix is not None:
            labels = [f"[{i}]" for i in range(len(matrix.names))]
            lines += ["", f"P(row > column) on test accuracy, [{pct}% CI]:"]
            lines += _table([""] + labels, [
                [f"{labels[i]} {name}"] + ["–" if i == j else
                                           f"{matrix.probability[i][j]:.2f} "
                                           f"[{matrix.ci_low[i][j]:.2f}, {matrix.ci_high[i][j]:.2f}]"
                                           for j in range(len(labels))]
                for i, name in enumerate(matrix.names)])
        plan = self.seed_plan(delta, power)
        if plan:
            lines += ["", f"Seeds per config to detect {100 * delta:.2f} points at "
                      f"{100 * power:.0f}% power (two-sided t-test, α = 0.05):"]
            lines += _table(["comparison", "design", "std (pt)", "seeds"],
                            [[p["comparison"], "paired" if p["paired"] else "unpaired",
                              _pct(p["std"], 3), str(p["seeds"]) if p["seeds"] else "–"]
                             for p in plan])
        return "\n".join(lines)
