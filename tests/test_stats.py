"""dendrax.stats against the libraries that define its statistics (rliable, SciPy,
statsmodels), against hand-computed ANOVAs, and against simulations with known answers."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from dendrax import stats

ROOT = Path(__file__).resolve().parents[1]
# Fixed arrays: accuracies of 10 runs on 3 tasks, and two configs of 12 runs (with ties).
SCORES = np.round(np.random.default_rng(7).normal(0.85, 0.02, size=(10, 3)), 4)
A = np.array([0.861, 0.857, 0.866, 0.850, 0.861, 0.872, 0.855, 0.863, 0.859, 0.868, 0.851, 0.864])
B = np.array([0.852, 0.857, 0.849, 0.861, 0.848, 0.866, 0.850, 0.853, 0.862, 0.855, 0.847, 0.858])


def _close(interval, reference, tolerance):
    assert abs(interval[0] - reference[0]) < tolerance, (interval, reference)
    assert abs(interval[1] - reference[1]) < tolerance, (interval, reference)


# ---- summaries and the bootstrap --------------------------------------------------------

def test_iqm_is_the_quarter_trimmed_mean():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])
    assert stats.iqm(x) == pytest.approx((2 + 3 + 4 + 5) / 4)
    assert stats.iqm(SCORES) == pytest.approx(scipy.stats.trim_mean(SCORES.ravel(), 0.25))


def test_summary_points_and_seeded_intervals():
    s = stats.summarize(A, n_boot=4000, seed=3)
    assert s.n == 12 and s.mean == pytest.approx(A.mean())
    assert s.std == pytest.approx(A.std(ddof=1)) and s.median == pytest.approx(np.median(A))
    for point, ci in ((s.mean, s.mean_ci), (s.median, s.median_ci), (s.iqm, s.iqm_ci)):
        assert ci[0] < point < ci[1]
    assert stats.summarize(A, n_boot=4000, seed=3) == s  # reproducible from the seed
    assert stats.summarize(A, n_boot=4000, seed=4).mean_ci != s.mean_ci
    assert math.isnan(stats.summarize([0.5]).std)


def test_bootstrap_ci_matches_scipy_percentile_bootstrap():
    ours = stats.stratified_bootstrap_ci(A, "mean", n_boot=40_000, seed=0)
    theirs = scipy.stats.bootstrap((A,), np.mean, n_resamples=40_000, method="percentile",
                                   random_state=np.random.default_rng(1)).confidence_interval
    _close(ours, (theirs.low, theirs.high), 0.0004)  # a CI ~0.007 wide; Monte Carlo error


def test_stratified_bootstrap_resamples_within_tasks():
    # Two tasks on very different scales: a resample that mixed tasks would move the mean
    # by whole units; within-task resampling keeps each task's weight, so only the
    # within-task spread shows.
    matrix = np.stack([np.linspace(0, 0.1, 8), 10 + np.linspace(0, 0.1, 8)], axis=1)
    low, high = stats.stratified_bootstrap_ci(matrix, "mean", n_boot=5000, seed=0)
    assert 5.0 < low < matrix.mean() < high < 5.1
    # A callable statistic gets each resampled runs × tasks matrix.
    shapes = set()
    stats.bootstrap_replicates(matrix, lambda m: shapes.add(m.shape) or 0.0, n_boot=5)
    assert shapes == {(8, 2)}


def _rliable_interval(scores, func, reps):
    """rliable's percentile interval of ``func`` (runs × tasks arrays; a list of two for
    its independent bootstrap), its indices drawn after ``np.random.seed(0)``.

    rliable 1.2 hands ``random_state=None`` to arch's bootstrap, which arch 8 (the first
    that imports with pandas 3) takes for a data array and refuses. Then rliable's own
    index code (``update_indices`` / ``_get_indices``) is driven by hand, and the interval
    taken as arch's ``conf_int(method="percentile")`` takes it: np.percentile at 2.5, 97.5.
    """
    rly = pytest.importorskip("rliable.library", reason="rliable is not installed")
    np.random.seed(0)  # rliable draws its indices from NumPy's global RandomState
    try:
        _, intervals = rly.get_interval_estimates({"x": scores}, func, reps=reps)
        return float(np.ravel(intervals["x"][0])[0]), float(np.ravel(intervals["x"][1])[0])
    except TypeError as error:
        if "random_state" not in str(error):
            raise
    np.random.seed(0)
    if isinstance(scores, np.ndarray):
        bs = object.__new__(rly.StratifiedBootstrap)
        bs._num_items, bs._args_shape = scores.shape[0], scores.shape
        bs._num_tasks, bs._task_bootstrap = scores.shape[1], False
        bs._strata_indices = bs._get_strata_indices()
        values = [float(np.ravel(func(scores[bs.update_indices()]))[0]) for _ in range(reps)]
    else:
        bs = object.__new__(rly.StratifiedIndependentBootstrap)
        strata = [bs._get_strata_indices(s.shape) for s in scores]
        values = [float(func(*(s[bs._get_indices(s.shape[0], s.shape, k)]
                               for s, k in zip(scores, strata)))) for _ in range(reps)]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


@pytest.mark.parametrize("name", ["mean", "median", "iqm"])
def test_stratified_bootstrap_matches_rliable(name):
    metrics = pytest.importorskip("rliable.metrics", reason="rliable is not installed")
    # rliable's aggregate_median is the median of per-task means (for one task, the mean);
    # ours is the pooled median, given to rliable's bootstrap as its statistic.
    func = {"mean": metrics.aggregate_mean, "median": lambda m: np.median(m),
            "iqm": metrics.aggregate_iqm}[name]
    summary = stats.summarize(SCORES, n_boot=20_000, seed=0)
    assert getattr(summary, name) == pytest.approx(float(func(SCORES)), abs=1e-12)
    reference = _rliable_interval(SCORES, lambda m: np.array([func(m)]), 20_000)
    # Same algorithm, other random draws: the endpoints agree to Monte Carlo error
    # (the intervals are ~0.012 wide).
    _close(getattr(summary, f"{name}_ci"), reference, 0.0003)


def test_binomial_noise_floor():
    assert stats.binomial_se(0.9, 10_000) == pytest.approx(0.003)
    assert stats.binomial_se(0.5, 100) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        stats.binomial_se(90.0, 10_000)  # a percentage, not a fraction


def test_performance_profile_counts_strictly_above():
    scores = np.array([0.1, 0.2, 0.2, 0.4])
    assert stats.performance_profile(scores, [0.0, 0.2, 0.3, 0.5]).tolist() == \
        [1.0, 0.25, 0.25, 0.0]


# ---- comparisons ------------------------------------------------------------------------

def test_paired_difference_matches_ttest_rel_and_the_bootstrap():
    result = stats.paired_difference(A, B, n_boot=40_000, seed=0)
    reference = scipy.stats.ttest_rel(A, B)
    ci = reference.confidence_interval(0.95)
    assert result.mean == pytest.approx((A - B).mean())
    assert result.std == pytest.approx((A - B).std(ddof=1))
    assert result.t_ci == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    boot = scipy.stats.bootstrap((A - B,), np.mean, n_resamples=40_000, method="percentile",
                                 random_state=np.random.default_rng(5)).confidence_interval
    _close(result.bootstrap_ci, (boot.low, boot.high), 0.0003)
    with pytest.raises(ValueError, match="equally many"):
        stats.paired_difference(A, B[:-1])


def test_probability_of_improvement_is_mann_whitney_u_over_nm():
    result = stats.probability_of_improvement(A, B, n_boot=2000)
    u = scipy.stats.mannwhitneyu(A, B, alternative="greater").statistic
    assert result.probability == pytest.approx(u / (A.size * B.size), abs=1e-12)
    assert result.ci[0] < result.probability < result.ci[1]
    # Ties count a half: equal distributions give exactly one half.
    assert stats.probability_of_improvement(A, A, n_boot=10).probability == 0.5
    # Several tasks: the mean of the per-task probabilities.
    x, y = np.stack([A, B], 1), np.stack([B, A], 1)
    per_task = [scipy.stats.mannwhitneyu(x[:, t], y[:, t]).statistic / 144 for t in (0, 1)]
    assert stats.probability_of_improvement(x, y, n_boot=10).probability == \
        pytest.approx(np.mean(per_task))


def test_probability_of_improvement_matches_rliable():
    metrics = pytest.importorskip("rliable.metrics", reason="rliable is not installed")
    x, y = np.stack([A, B], 1), np.stack([B - 0.004, A], 1)  # two tasks
    ours = stats.probability_of_improvement(x, y, n_boot=5000, seed=0)
    assert ours.probability == pytest.approx(metrics.probability_of_improvement(x, y),
                                             abs=1e-12)
    reference = _rliable_interval([x, y], metrics.probability_of_improvement, 5000)
    _close(ours.ci, reference, 0.01)  # an interval ~0.25 wide


def test_improvement_matrix_is_complementary():
    matrix = stats.improvement_matrix({"a": A, "b": B, "c": B - 0.01}, n_boot=500)
    p = np.array(matrix.probability)
    assert np.allclose(np.diag(p), 0.5) and np.allclose(p + p.T, 1.0)
    assert p[0, 1] == pytest.approx(stats.probability_of_improvement(A, B, n_boot=10)
                                    .probability)
    assert p[1, 2] > 0.8  # B against itself shifted down
    low, high = np.array(matrix.ci_low), np.array(matrix.ci_high)
    assert np.allclose(low + high.T, 1.0) and np.all(low <= p) and np.all(p <= high)


# ---- the seed-count planner -------------------------------------------------------------

@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("delta,std", [(0.005, 0.004), (0.005, 0.01), (0.01, 0.004)])
def test_seeds_needed_matches_statsmodels(paired, delta, std):
    power = pytest.importorskip("statsmodels.stats.power", reason="statsmodels not installed")
    solver = power.TTestPower() if paired else power.TTestIndPower()
    exact = solver.solve_power(effect_size=delta / std, alpha=0.05, power=0.8,
                               alternative="two-sided")
    n = stats.seeds_needed(delta, std, power=0.8, paired=paired)
    assert n == max(2, math.ceil(exact - 1e-9))
    assert stats.t_test_power(n, delta, std, paired=paired) == pytest.approx(
        solver.power(delta / std, n, 0.05), abs=1e-8)


def test_seeds_needed_reaches_its_power_in_simulation():
    # Paired, delta 0.5 points, differences with std 0.8 points.
    delta, std = 0.005, 0.008
    n = stats.seeds_needed(delta, std, power=0.8)
    assert stats.t_test_power(n, delta, std) >= 0.8 > stats.t_test_power(n - 1, delta, std)
    d = np.random.default_rng(0).normal(delta, std, size=(4000, n))
    rejected = scipy.stats.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05
    assert rejected.mean() == pytest.approx(stats.t_test_power(n, delta, std), abs=0.025)


# ---- variance components ----------------------------------------------------------------

def test_two_way_anova_by_hand():
    # Row means 2, 6, 7; column means 4, 5, 6; grand mean 5.
    # SS_init = 3·(9+1+4) = 42 (df 2), SS_order = 3·(1+0+1) = 6 (df 2), residual SS = 12
    # (df 4): MS 21, 3, 3. σ²_init = (21-3)/3 = 6, σ²_order = (3-3)/3 = 0, residual 3.
    y = np.array([[1.0, 2, 3], [4, 5, 9], [7, 8, 6]])
    vc = stats.variance_components(y, ["init", "order"], n_draws=100_000)
    assert [c.name for c in vc.components] == ["init", "order", "residual"]
    assert [c.mean_square for c in vc.components] == pytest.approx([21, 3, 3])
    assert [c.df for c in vc.components] == [2, 2, 4]
    assert [c.variance for c in vc.components] == pytest.approx([6, 0, 3], abs=1e-12)
    assert [c.share for c in vc.components] == pytest.approx([2 / 3, 0, 1 / 3])
    assert vc.grand_mean == 5 and vc.total == pytest.approx(9)
    # The residual's CI is the exact chi-square one: [4·3/χ²_.975(4), 4·3/χ²_.025(4)].
    exact = (12 / scipy.stats.chi2.ppf(0.975, 4), 12 / scipy.stats.chi2.ppf(0.025, 4))
    assert vc["residual"].ci == pytest.approx(exact, rel=0.03)


def test_three_way_mean_squares_by_direct_formula():
    y = np.array([3.0, 7, 1, 8, 2, 9, 4, 6]).reshape(2, 2, 2)
    vc = stats.variance_components(y, ["init", "order", "rewire"], n_draws=100)
    g = y.mean()
    a, b, c = y.mean((1, 2)), y.mean((0, 2)), y.mean((0, 1))
    ab, ac, bc = y.mean(2), y.mean(1), y.mean(0)
    cells = list(itertools.product(range(2), repeat=3))
    ms = {  # every df is 1 on a 2×2×2 design
        "init": 4 * sum((a[i] - g) ** 2 for i in range(2)),
        "order": 4 * sum((b[j] - g) ** 2 for j in range(2)),
        "rewire": 4 * sum((c[k] - g) ** 2 for k in range(2)),
        "init×order": 2 * sum((ab[i, j] - a[i] - b[j] + g) ** 2
                              for i, j in itertools.product(range(2), repeat=2)),
        "init×rewire": 2 * sum((ac[i, k] - a[i] - c[k] + g) ** 2
                               for i, k in itertools.product(range(2), repeat=2)),
        "order×rewire": 2 * sum((bc[j, k] - b[j] - c[k] + g) ** 2
                                for j, k in itertools.product(range(2), repeat=2)),
        "residual": sum((y[i, j, k] - ab[i, j] - ac[i, k] - bc[j, k] + a[i] + b[j] + c[k]
                         - g) ** 2 for i, j, k in cells),
    }
    assert {c.name: c.mean_square for c in vc.components} == pytest.approx(ms)
    assert sum(ms.values()) == pytest.approx(((y - g) ** 2).sum())  # SS add up (all df 1)
    # E[MS_init] = σ²_e + 2σ²_io + 2σ²_ir + 4σ²_i, so σ̂²_init = (MS_i - MS_io - MS_ir + MS_e)/4.
    raw = (ms["init"] - ms["init×order"] - ms["init×rewire"] + ms["residual"]) / 4
    assert vc["init"].raw == pytest.approx(raw)
    assert vc["init"].variance == pytest.approx(max(raw, 0.0))
    assert vc["init×order"].raw == pytest.approx((ms["init×order"] - ms["residual"]) / 2)
    assert vc["residual"].factors == ("init", "order", "rewire")  # confounded with it


def test_labelled_runs_give_the_same_anova_as_the_array():
    y = np.random.default_rng(1).normal(size=(3, 4, 2))
    cells = list(itertools.product(["i0", "i1", "i2"], range(4), [10, 20]))
    runs = list(range(len(cells)))
    np.random.default_rng(2).shuffle(runs)  # the order of runs does not matter
    labels = {name: [cells[r][axis] for r in runs]
              for axis, name in enumerate(["init", "order", "rewire"])}
    values = [y.reshape(-1)[r] for r in runs]
    from_runs = stats.variance_components(values, labels, n_draws=200)
    from_array = stats.variance_components(y, ["init", "order", "rewire"], n_draws=200)
    assert from_runs == from_array
    with pytest.raises(ValueError, match="not fully crossed"):
        stats.variance_components(values[:-1], {k: v[:-1] for k, v in labels.items()})


def _simulate(rng, sizes, sigma2, replicates=1):
    """A crossed design with random effects of the given variances (keys: axis tuples)."""
    shape = tuple(sizes) + (replicates,)
    y = np.zeros(shape)
    for axes, variance in sigma2.items():
        effect_shape = [n if a in axes else 1 for a, n in enumerate(shape)]
        y = y + rng.normal(0.0, math.sqrt(variance), size=effect_shape)
    return y


def test_estimators_are_unbiased_on_a_three_way_design():
    # Known components, 6 levels each, one run per cell, 300 simulated studies: each mean
    # estimate lies within 4 standard errors of the truth.
    sigma2 = {(0,): 1.0, (1,): 0.5, (2,): 0.25, (0, 1): 0.3, (0, 2): 0.0, (1, 2): 0.2,
              (0, 1, 2, 3): 1.0}
    names = ["init", "order", "rewire"]
    truth = {"init": 1.0, "order": 0.5, "rewire": 0.25, "init×order": 0.3,
             "init×rewire": 0.0, "order×rewire": 0.2, "residual": 1.0}
    rng = np.random.default_rng(11)
    raw = {k: [] for k in truth}
    for _ in range(300):
        vc = stats.variance_components(_simulate(rng, (6, 6, 6), sigma2)[..., 0], names,
                                       n_draws=1)
        for c in vc.components:
            raw[c.name].append(c.raw)
    for name, values in raw.items():
        values = np.array(values)
        assert abs(values.mean() - truth[name]) < 4 * values.std() / math.sqrt(values.size), \
            (name, values.mean(), truth[name])


def test_estimators_with_replicates_separate_the_full_interaction():
    # 2 replicates per cell: init×order is estimated apart from the residual.
    sigma2 = {(0,): 0.5, (1,): 0.25, (0, 1): 0.4, (0, 1, 2): 1.0}
    rng = np.random.default_rng(12)
    raw = {"init": [], "order": [], "init×order": [], "residual": []}
    for _ in range(200):
        vc = stats.variance_components(_simulate(rng, (8, 8), sigma2, replicates=2),
                                       ["init", "order"], n_draws=1)
        for c in vc.components:
            raw[c.name].append(c.raw)
    for name, truth in {"init": 0.5, "order": 0.25, "init×order": 0.4, "residual": 1.0}.items():
        values = np.array(raw[name])
        assert abs(values.mean() - truth) < 4 * values.std() / math.sqrt(values.size), name


def test_generalized_intervals_cover_roughly_nominally():
    # A 4×4×4 study (the design), 200 simulated studies: every 95% interval covers
    # its true component in 88-99.5% of them.
    sigma2 = {(0,): 1.0, (1,): 0.5, (2,): 0.1, (0, 1): 0.3, (0, 2): 0.05, (1, 2): 0.2,
              (0, 1, 2, 3): 1.0}
    truth = {"init": 1.0, "order": 0.5, "rewire": 0.1, "init×order": 0.3,
             "init×rewire": 0.05, "order×rewire": 0.2, "residual": 1.0}
    rng = np.random.default_rng(13)
    hits = dict.fromkeys(truth, 0)
    for study in range(200):
        y = _simulate(rng, (4, 4, 4), sigma2)[..., 0]
        vc = stats.variance_components(y, ["init", "order", "rewire"], n_draws=2000, seed=study)
        for c in vc.components:
            hits[c.name] += c.ci[0] <= truth[c.name] <= c.ci[1]
    coverage = {k: v / 200 for k, v in hits.items()}
    assert all(0.88 <= v <= 0.995 for v in coverage.values()), coverage


def test_shares_and_their_intervals():
    y = _simulate(np.random.default_rng(3), (5, 5, 5), {(0,): 2.0, (1,): 0.5, (0, 1, 2, 3): 1.0})
    vc = stats.variance_components(y[..., 0], ["init", "order", "rewire"], n_draws=4000)
    assert sum(c.share for c in vc.components) == pytest.approx(1.0)
    for c in vc.components:
        assert 0.0 <= c.share_ci[0] <= c.share_ci[1] <= 1.0
        assert c.ci[0] >= 0.0 and c.variance >= 0.0
    assert vc["init"].share > vc["rewire"].share


def test_importing_stats_loads_neither_jax_nor_scipy_stats():
    code = ("import sys, dendrax.stats, dendrax.robustness; "
            "assert 'jax' not in sys.modules, 'jax'; "
            "assert 'scipy.stats' not in sys.modules, 'scipy.stats'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.returncode == 0, done.stderr
