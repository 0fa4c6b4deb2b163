"""Statistics of robustness studies: many runs of one or more configs, over seeds.

Pure NumPy, with ``scipy.stats`` imported inside the functions that need it (importing
it costs about half a second, and importing this module must stay cheap). No JAX.

  summarize                   mean, std, median, IQM, and percentile-bootstrap CIs
  stratified_bootstrap_ci     rliable's stratified bootstrap of a runs × tasks matrix
  binomial_se                 the test set's own noise floor, sqrt(p(1-p)/n) (Jordan 2024)
  variance_components         random-effects ANOVA of a crossed factorial design, with
                              generalized confidence intervals
  paired_difference           configs run on the same seeds: mean difference, paired t CI
                              and bootstrap CI
  probability_of_improvement  P(A > B) as rliable defines it, with a bootstrap CI
  improvement_matrix          P(row > column) for k configs
  seeds_needed, t_test_power  the seed-count planner (two-sided t-test, noncentral t)
  performance_profile         fraction of runs scoring above each threshold tau

Every random draw comes from ``numpy.random.default_rng(seed)``, so a result is a function
of its inputs and its seed. Accuracies are fractions (0.9 is 90%), as the trainer reports.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Callable, Mapping, Sequence

import numpy as np

N_BOOT = 10_000
STATISTICS = ("mean", "median", "iqm")
_CHUNK = 2_000_000  # elements of a resampled block held at once


# ---- point statistics and the stratified bootstrap ----------------------------------------

def iqm(scores) -> float:
    """Interquartile mean, as rliable's ``aggregate_iqm``: the mean of the middle 50% of
    all scores pooled, ``scipy.stats.trim_mean(x, 0.25)`` (a quarter cut from each end,
    rounded down to whole scores)."""
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(scores, dtype=float), 0.25, axis=None))


def _as_matrix(scores) -> np.ndarray:
    """A runs × tasks float matrix: a 1-D array is one task."""
    array = np.asarray(scores, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"scores must be a non-empty vector or runs × tasks matrix, "
                         f"got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("scores must be finite (drop diverged runs first)")
    return array


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} must lie in (0, 1)")
    return float(confidence)


def _statistic_rows(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """A named statistic of each row of a (replicates, scores) array, pooled over tasks."""
    if name == "mean":
        return lambda rows: rows.mean(axis=1)
    if name == "median":
        return lambda rows: np.median(rows, axis=1)
    if name == "iqm":
        from scipy.stats import trim_mean

        return lambda rows: trim_mean(rows, 0.25, axis=1)
    raise ValueError(f"statistic {name!r}: use one of {STATISTICS} or a callable")


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def bootstrap_replicates(score_matrix, statistic: str | Callable = "iqm", n_boot: int = N_BOOT,
                         seed: int = 0) -> np.ndarray:
    """``n_boot`` values of ``statistic`` on stratified resamples of ``score_matrix``
    (runs × tasks, or a vector of runs): each replicate draws, for every task (column)
    separately, as many runs as it has with replacement, so every task keeps its weight.

    ``statistic`` is "mean", "median", "iqm" (of all scores pooled, computed for all
    replicates at once) or a callable from a runs × tasks matrix to a number.
    """
    matrix = _as_matrix(score_matrix)
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r} must be >= 1")
    rng = np.random.default_rng(seed)
    runs, tasks = matrix.shape
    columns = np.arange(tasks)
    out = np.empty(n_boot)
    chunk = max(1, _CHUNK // (runs * tasks))
    rows = _statistic_rows(statistic) if isinstance(statistic, str) else None
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        index = rng.integers(0, runs, size=(size, runs, tasks))
        resampled = matrix[index, columns]  # (size, runs, tasks)
        if rows is not None:
            out[start:start + size] = rows(resampled.reshape(size, -1))
        else:
            out[start:start + size] = [float(statistic(r)) for r in resampled]
    return out


def stratified_bootstrap_ci(score_matrix, statistic: str | Callable = "iqm",
                            confidence: float = 0.95, n_boot: int = N_BOOT, seed: int = 0
                            ) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` over a runs × tasks matrix, resampling runs
    within each task, as rliable's ``get_interval_estimates(method="percentile",
    task_bootstrap=False)``: with replicates θ*_1..θ*_B (see :func:`bootstrap_replicates`),
    the interval is [q_{α/2}(θ*), q_{1-α/2}(θ*)], α = 1 - confidence, q NumPy's linear
    percentile. For one task (a vector) this is the plain percentile bootstrap."""
    confidence = _check_confidence(confidence)
    values = bootstrap_replicates(score_matrix, statistic, n_boot, seed)
    return _percentile_interval(values, confidence)


@dataclasses.dataclass(frozen=True)
class Summary:
    """Statistics of one config's runs (or of several tasks pooled, stratified)."""

    n: int
    mean: float
    std: float              # ddof=1; NaN with one run
    median: float
    iqm: float
    mean_ci: tuple[float, float]
    median_ci: tuple[float, float]
    iqm_ci: tuple[float, float]
    confidence: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def summarize(scores, confidence: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> Summary:
    """Mean, std (ddof=1: sqrt(Σ(x-x̄)²/(n-1))), median, IQM (:func:`iqm`) of ``scores``
    (a vector of runs, or a runs × tasks matrix, pooled), and a percentile bootstrap CI
    for the mean, the median and the IQM (:func:`stratified_bootstrap_ci`, each from the
    same ``seed``).

    The median is of all scores pooled: the middle run. rliable's ``aggregate_median`` is
    another statistic, the median over tasks of each task's mean, which for one config is
    its mean; for a config's spread over seeds the pooled median is the one that reads."""
    matrix = _as_matrix(scores)
    confidence = _check_confidence(confidence)
    pooled = matrix.ravel()
    cis = {name: stratified_bootstrap_ci(matrix, name, confidence, n_boot, seed)
           for name in STATISTICS}
    return Summary(n=int(matrix.shape[0]), mean=float(pooled.mean()),
                   std=float(pooled.std(ddof=1)) if pooled.size > 1 else math.nan,
                   median=float(np.median(pooled)), iqm=iqm(pooled),
                   mean_ci=cis["mean"], median_ci=cis["median"], iqm_ci=cis["iqm"],
                   confidence=confidence)


def binomial_se(accuracy: float, n_test: int) -> float:
    """The test set's own noise floor: the standard error sqrt(p(1-p)/n) of an accuracy p
    measured on n independent test examples (Jordan 2024, "Calibrated Chaos"). A seed std
    near it means the spread between seeds is about what a finite test set alone gives."""
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy={accuracy!r} must be a fraction in [0, 1]")
    if n_test < 1:
        raise ValueError(f"n_test={n_test!r} must be >= 1")
    return math.sqrt(accuracy * (1.0 - accuracy) / n_test)


def performance_profile(scores, taus) -> np.ndarray:
    """rliable's score distribution: for each τ in ``taus``, the fraction of runs (all
    scores pooled) with score > τ."""
    pooled = _as_matrix(scores).ravel()
    taus = np.asarray(taus, dtype=float)
    return (pooled[None, :] > taus.ravel()[:, None]).mean(axis=1).reshape(taus.shape)


# ---- variance components of a crossed factorial design -------------------------------------

@dataclasses.dataclass(frozen=True)
class VarianceComponent:
    """One source of variance: a main effect ("init"), an interaction ("init×order") or
    the residual. ``variance`` is the estimate truncated at 0, ``raw`` the unbiased one
    before truncation; ``share`` is variance / the sum of all variances; ``ci`` and
    ``share_ci`` are generalized confidence intervals; ``df`` and ``mean_square`` are the
    ANOVA line of the term (for the residual, of the error term)."""

    name: str
    factors: tuple[str, ...]
    variance: float
    raw: float
    share: float
    ci: tuple[float, float]
    share_ci: tuple[float, float]
    df: int
    mean_square: float


@dataclasses.dataclass(frozen=True)
class VarianceComponents:
    """The random-effects ANOVA of a crossed design (see :func:`variance_components`)."""

    factors: tuple[str, ...]
    levels: dict[str, int]
    replicates: int                   # observations per cell
    grand_mean: float
    total: float                      # sum of the truncated components
    components: tuple[VarianceComponent, ...]
    confidence: float
    method: str = "generalized confidence intervals (Weerahandi 1993), Monte Carlo"

    def __getitem__(self, name: str) -> VarianceComponent:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(f"no component {name!r}; there are "
                       f"{[c.name for c in self.components]}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _design_array(scores, factors) -> tuple[np.ndarray, tuple[str, ...]]:
    """(array with one axis per factor and a last axis of replicates, factor names)."""
    if isinstance(factors, Mapping):
        names = tuple(str(n) for n in factors)
        values = np.asarray(scores, dtype=float).ravel()
        codes, sizes = [], []
        for name in factors:
            labels = list(factors[name])
            if len(labels) != values.size:
                raise ValueError(f"factor {name!r} has {len(labels)} labels for "
                                 f"{values.size} scores")
            try:  # levels in sorted order, so the array does not depend on run order
                order = {label: i for i, label in enumerate(sorted(set(labels)))}
            except TypeError:  # labels of mixed types: order of first appearance
                order = {}
                for label in labels:
                    order.setdefault(label, len(order))
            codes.append([order[label] for label in labels])
            sizes.append(len(order))
        counts = np.zeros(sizes, dtype=int)
        for cell in zip(*codes):
            counts[cell] += 1
        replicates = int(counts.flat[0])
        if replicates == 0 or np.any(counts != replicates):
            raise ValueError("the design is not fully crossed and balanced: cells hold "
                             f"between {counts.min()} and {counts.max()} runs")
        array = np.empty(sizes + [replicates])
        filled = np.zeros(sizes, dtype=int)
        for value, cell in zip(values, zip(*codes)):
            array[cell + (filled[cell],)] = value
            filled[cell] += 1
    else:
        names = tuple(str(n) for n in factors)
        array = np.asarray(scores, dtype=float)
        if array.ndim == len(names):
            array = array[..., None]
        elif array.ndim != len(names) + 1:
            raise ValueError(f"scores of shape {array.shape} do not have one axis per "
                             f"factor {names} (and an optional last axis of replicates)")
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"factors must be distinct names, got {names}")
    if any(size < 2 for size in array.shape[:-1]):
        raise ValueError(f"every factor needs at least two levels, got "
                         f"{dict(zip(names, array.shape[:-1]))}")
    if not np.all(np.isfinite(array)):
        raise ValueError("scores must be finite (drop or replace diverged runs first)")
    return array, names


def variance_components(scores, factors, confidence: float = 0.95, n_draws: int = N_BOOT,
                        seed: int = 0) -> VarianceComponents:
    """Random-effects ANOVA of a balanced, fully crossed design: the variance of each main
    effect, each interaction and the residual, with its share and a CI.

    ``scores`` is an array with one axis per factor in ``factors`` (names) and optionally a
    last axis of replicates; or a vector with ``factors`` a mapping from name to each
    run's level (labels of any hashable type; every combination must occur equally often).

    Model: y = μ + Σ_S a_S + e, a sum over every non-empty set S of factors of independent
    random effects a_S ~ N(0, σ²_S) (one per combination of levels of S), e ~ N(0, σ²_e).
    With n_f levels of factor f, r replicates and N = r·Π n_f observations:

      effect estimate   â_S = Σ_{T⊆S} (-1)^{|S|-|T|} ȳ_T   (ȳ_T: means over the factors not in T)
      sum of squares    SS_S = c_S Σ â_S²,  c_S = N / Π_{f∈S} n_f  (observations per cell of S)
      df_S = Π_{f∈S} (n_f - 1),  MS_S = SS_S / df_S
      E[MS_S] = σ²_e + Σ_{T⊇S} c_T σ²_T

    so σ̂²_S = (1/c_S) Σ_{T⊇S} (-1)^{|T|-|S|} MS_T, unbiased (the expected-mean-squares
    or ANOVA estimator), and σ̂²_e = MS_E = Σ(y - cell mean)² / (Π n_f (r - 1)).

    With ONE observation per cell (r = 1, the usual seed design) the highest-order
    interaction is confounded with the residual: its mean square estimates σ²_e + σ²_F.
    It is reported as "residual", and holds that interaction too.

    Negative estimates (a mean square below the one it is tested against, common with few
    levels) are truncated at 0 in ``variance``; ``raw`` keeps the unbiased value. Shares
    are truncated variance / their sum.

    CIs are generalized confidence intervals (Weerahandi 1993; Burdick, Borror &
    Montgomery 2005 recommend them for such designs): under normality the mean squares are
    independent with df_T·MS_T/E[MS_T] ~ χ²(df_T), so with W_T ~ χ²(df_T) drawn
    ``n_draws`` times the generalized pivot of σ²_S is max(0, Σ_T a_T·df_T·ms_T/W_T) (the
    same linear combination, each expected mean square replaced by its pivot); the CI is
    its α/2 and 1-α/2 quantiles, and a share's CI comes from the same draws. Unlike
    Satterthwaite's interval, this handles the negative coefficients, and coverage is
    close to nominal in simulation (tests/test_stats.py). A bootstrap over levels is not
    used: no resampling of a crossed design estimates its variance without bias
    (McCullagh 2000). For the residual the interval is the exact chi-square one.
    """
    confidence = _check_confidence(confidence)
    if n_draws < 1:
        raise ValueError(f"n_draws={n_draws!r} must be >= 1")
    y, names = _design_array(scores, factors)
    k, r = len(names), y.shape[-1]
    sizes = y.shape[:-1]
    n_total = y.size
    axes = tuple(range(k))
    subsets = [s for size in range(1, k + 1) for s in itertools.combinations(axes, size)]

    def marginal(kept: tuple[int, ...]) -> np.ndarray:
        drop = tuple(a for a in range(k + 1) if a not in kept)
        return y.mean(axis=drop, keepdims=True)

    means = {kept: marginal(kept) for size in range(k + 1)
             for kept in itertools.combinations(axes, size)}
    mean_square, df, cell_count = {}, {}, {}
    for s in subsets:
        effect = sum((-1) ** (len(s) - len(t)) * means[t]
                     for size in range(len(s) + 1) for t in itertools.combinations(s, size))
        cell_count[s] = n_total // math.prod(sizes[a] for a in s)
        df[s] = math.prod(sizes[a] - 1 for a in s)
        mean_square[s] = cell_count[s] * float(np.sum(effect ** 2)) / df[s]
    full = axes
    if r > 1:
        error = "error"
        df[error] = math.prod(sizes) * (r - 1)
        mean_square[error] = float(np.sum((y - means[full]) ** 2)) / df[error]
        terms = subsets
    else:
        error = full  # the full interaction's mean square is the residual's
        terms = subsets[:-1]

    # Each component as a linear combination {term: coefficient} of mean squares.
    combos = {}
    for s in terms:
        combo = {t: (-1) ** (len(t) - len(s)) / cell_count[s]
                 for t in subsets if set(s) <= set(t)}
        if r > 1 and s == full:
            combo[error] = -1.0 / cell_count[s]
        combos[s] = combo
    combos[error] = {error: 1.0}

    rng = np.random.default_rng(seed)
    order = list(mean_square)
    pivots = {t: df[t] * mean_square[t] / rng.chisquare(df[t], size=n_draws) for t in order}
    raw, drawn = {}, {}
    for s, combo in combos.items():
        raw[s] = sum(a * mean_square[t] for t, a in combo.items())
        drawn[s] = np.maximum(0.0, sum(a * pivots[t] for t, a in combo.items()))
    variance = {s: max(0.0, raw[s]) for s in combos}
    total = sum(variance.values())
    drawn_total = sum(drawn.values())
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = {s: drawn[s] / drawn_total for s in combos}

    components = []
    for s in combos:
        is_error = s == error
        name = "residual" if is_error else "×".join(names[a] for a in s)
        share_draws = shares[s][np.isfinite(shares[s])]
        components.append(VarianceComponent(
            name=name,
            factors=names if is_error and r == 1 else (() if is_error else
                                                      tuple(names[a] for a in s)),
            variance=variance[s], raw=raw[s],
            share=variance[s] / total if total > 0 else math.nan,
            ci=_percentile_interval(drawn[s], confidence),
            share_ci=(_percentile_interval(share_draws, confidence) if share_draws.size
                      else (math.nan, math.nan)),
            df=int(df[s]), mean_square=mean_square[s]))
    return VarianceComponents(factors=names, levels=dict(zip(names, map(int, sizes))),
                              replicates=int(r), grand_mean=float(y.mean()), total=total,
                              components=tuple(components), confidence=confidence)


# ---- comparing configs ----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """A − B over runs paired by seed tuple."""

    n: int
    mean: float                       # mean of the differences d_i = a_i - b_i
    std: float                        # their std (ddof=1): the planner's input
    t_ci: tuple[float, float]         # paired t interval
    bootstrap_ci: tuple[float, float]  # percentile bootstrap of the mean difference
    p_value: float                    # two-sided paired t-test of mean 0
    confidence: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def paired_difference(a, b, confidence: float = 0.95, n_boot: int = N_BOOT, seed: int = 0
                      ) -> PairedDifference:
    """Mean difference of two configs run on the same seed tuples (``a[i]`` and ``b[i]``
    share seeds), with d_i = a_i - b_i, d̄ its mean, s_d its std (ddof=1):

      paired t CI   d̄ ± t_{1-α/2, n-1} · s_d / sqrt(n)   (scipy.stats.ttest_rel's)
      bootstrap CI  percentile bootstrap of d̄, resampling the pairs
      p_value       two-sided, t = d̄ / (s_d / sqrt(n)) on n - 1 df

    Pairing removes the variance the seeds share, so it needs fewer seeds than comparing
    two independent samples whenever the runs of one seed tuple are correlated.
    """
    from scipy.stats import t as student_t

    confidence = _check_confidence(confidence)
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired runs need equally many scores, got {a.size} and {b.size}")
    if a.size < 2:
        raise ValueError("a paired comparison needs at least two seed tuples")
    d = _as_matrix(a - b)[:, 0]
    n, mean, std = d.size, float(d.mean()), float(d.std(ddof=1))
    se = std / math.sqrt(n)
    if se > 0:
        half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * se
        p_value = float(2 * student_t.sf(abs(mean) / se, n - 1))
    else:  # identical differences: no spread, the CI is the point
        half, p_value = 0.0, (1.0 if mean == 0 else 0.0)
    return PairedDifference(n=n, mean=mean, std=std, t_ci=(mean - half, mean + half),
                            bootstrap_ci=stratified_bootstrap_ci(d, "mean", confidence,
                                                                 n_boot, seed),
                            p_value=p_value, confidence=confidence)


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) per leading batch axis: x (..., n, tasks), y (..., m, tasks) → (...),
    the mean over tasks of the fraction of pairs with x > y, ties counting one half."""
    greater = (x[..., :, None, :] > y[..., None, :, :]).mean(axis=(-3, -2))
    ties = (x[..., :, None, :] == y[..., None, :, :]).mean(axis=(-3, -2))
    return (greater + 0.5 * ties).mean(axis=-1)


@dataclasses.dataclass(frozen=True)
class Improvement:
    """P(A > B) with its bootstrap CI."""

    probability: float
    ci: tuple[float, float]
    confidence: float


def probability_of_improvement(a, b, confidence: float = 0.95, n_boot: int = N_BOOT,
                               seed: int = 0) -> Improvement:
    """P(A > B) as rliable's ``probability_of_improvement``: for each task (column; a
    vector is one task) the Mann-Whitney U statistic of A over B divided by n·m,

      P_task = (1/(n·m)) Σ_i Σ_j [a_i > b_j] + ½[a_i = b_j],

    averaged over tasks. The CI is a percentile bootstrap that resamples A's and B's runs
    independently within each task (rliable's ``StratifiedIndependentBootstrap``). It
    ignores pairing: P(A > B) compares the two distributions of scores, not seed by seed
    (for that, see :func:`paired_difference`).
    """
    confidence = _check_confidence(confidence)
    x, y = _as_matrix(a), _as_matrix(b)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"A has {x.shape[1]} tasks and B {y.shape[1]}")
    point = float(_improvement(x, y))
    rng = np.random.default_rng(seed)
    (n, tasks), m = x.shape, y.shape[0]
    columns = np.arange(tasks)
    values = np.empty(n_boot)
    chunk = max(1, _CHUNK // (n * m * tasks))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        xs = x[rng.integers(0, n, size=(size, n, tasks)), columns]
        ys = y[rng.integers(0, m, size=(size, m, tasks)), columns]
        values[start:start + size] = _improvement(xs, ys)
    return Improvement(probability=point, ci=_percentile_interval(values, confidence),
                       confidence=confidence)


@dataclasses.dataclass(frozen=True)
class ImprovementMatrix:
    """``probability[i][j]`` = P(config i > config j), with ``ci_low``/``ci_high``;
    the diagonal is ½ and P(j > i) = 1 - P(i > j)."""

    names: tuple[str, ...]
    probability: tuple[tuple[float, ...], ...]
    ci_low: tuple[tuple[float, ...], ...]
    ci_high: tuple[tuple[float, ...], ...]
    confidence: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def improvement_matrix(scores_by_config: Mapping[str, Sequence[float]],
                       confidence: float = 0.95, n_boot: int = N_BOOT, seed: int = 0
                       ) -> ImprovementMatrix:
    """:func:`probability_of_improvement` of every config over every other, each pair from
    the same ``seed`` (a pair's result does not depend on which other configs are shown)."""
    names = tuple(str(name) for name in scores_by_config)
    arrays = list(scores_by_config.values())
    k = len(names)
    p = np.full((k, k), 0.5)
    low, high = np.full((k, k), 0.5), np.full((k, k), 0.5)
    for i, j in itertools.combinations(range(k), 2):
        result = probability_of_improvement(arrays[i], arrays[j], confidence, n_boot, seed)
        p[i, j], p[j, i] = result.probability, 1.0 - result.probability
        (low[i, j], high[i, j]) = result.ci
        (low[j, i], high[j, i]) = (1.0 - result.ci[1], 1.0 - result.ci[0])

    def rows(matrix):
        return tuple(tuple(float(v) for v in row) for row in matrix)

    return ImprovementMatrix(names=names, probability=rows(p), ci_low=rows(low),
                             ci_high=rows(high), confidence=confidence)


# ---- the seed-count planner -----------------------------------------------------------------

def t_test_power(n: int, delta: float, std: float, alpha: float = 0.05,
                 paired: bool = True) -> float:
    """Power of a two-sided t-test at level ``alpha`` to detect a true difference ``delta``
    with ``n`` seeds per config:

      paired (one-sample t on the differences, ``std`` = their std):
          df = n - 1,   λ = δ·sqrt(n)/σ_d
      unpaired (two samples of n, equal variances, ``std`` = each config's std):
          df = 2n - 2,  λ = δ·sqrt(n/2)/σ

      power = P(T' > t_{1-α/2, df}) + P(T' < -t_{1-α/2, df}),  T' ~ noncentral t(df, λ)

    (scipy.stats.nct; the formula of statsmodels' TTestPower / TTestIndPower).
    """
    from scipy.stats import nct, t as student_t

    if n < 2:
        return math.nan
    df = n - 1 if paired else 2 * n - 2
    effect = abs(delta) / std
    nc = effect * math.sqrt(n if paired else n / 2)
    critical = float(student_t.ppf(1 - alpha / 2, df))
    return float(nct.sf(critical, df, nc) + nct.cdf(-critical, df, nc))


def seeds_needed(delta: float, std: float, power: float = 0.8, alpha: float = 0.05,
                 paired: bool = True, max_seeds: int = 1_000_000) -> int:
    """The fewest seeds per config (at least 2) for which :func:`t_test_power` reaches
    ``power``: found by doubling n then bisecting, since power grows with n. ``std`` is
    the measured std of the paired differences when ``paired``, else of one config's
    scores. Raises ValueError when even ``max_seeds`` do not suffice."""
    if not delta or not math.isfinite(delta):
        raise ValueError(f"delta={delta!r} must be a non-zero difference")
    if not std > 0 or not math.isfinite(std):
        raise ValueError(f"std={std!r} must be > 0")
    if not 0.0 < power < 1.0 or not 0.0 < alpha < 1.0:
        raise ValueError(f"power={power!r} and alpha={alpha!r} must lie in (0, 1)")

    def enough(n: int) -> bool:
        return t_test_power(n, delta, std, alpha, paired) >= power

    low, high = 1, 2  # enough(low) is False by convention (n=1 has no test)
    while not enough(high):
        low, high = high, high * 2
        if low >= max_seeds:
            raise ValueError(f"more than {max_seeds} seeds would be needed")
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high
