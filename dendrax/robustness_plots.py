"""Figures of a robustness study (needs matplotlib: ``pip install 'dendrax[plot]'``).

Each function draws one figure of a :class:`~dendrax.robustness.RobustnessReport` on a
``matplotlib.figure.Figure`` (never pyplot: no display, no global state), saves it to
``path`` (PNG, PDF or SVG, from the extension) and returns ``path``:

  score_distributions   each run's score per config, with the IQM and its CI
  variance_components   the share of each source of variance, stacked bars per config
  improvement_matrix    P(row > column), with its CI in each cell
  performance_profiles  fraction of runs scoring above τ, against τ
  epoch_curves          the mean score against epoch, with its CI band

:func:`plot_report` writes every figure the study supports into a folder. Accuracies are
drawn in percent; test accuracy by default, as the report's tables.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from dendrax.plots import FORMATS, _figure, _finish

if TYPE_CHECKING:
    from dendrax.robustness import RobustnessReport

FIGURES = ("score_distributions", "variance_components", "improvement_matrix",
           "performance_profiles", "epoch_curves")
_NAMES = {"val": "validation accuracy (%)", "test": "test accuracy (%)"}


def _save(figure, path: str, caption: str | None) -> str:
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if extension not in FORMATS:
        raise ValueError(f"{path!r}: a figure is written as one of {FORMATS}")
    _finish(figure, path, caption)
    return path


def score_distributions(report: "RobustnessReport", path: str, metric: str = "test",
                        caption: str | None = None) -> str:
    """Each run's final score (jittered points) per config, with the IQM and its
    bootstrap CI drawn as a bar beside them."""
    scores, summaries = report.config_scores(metric), report.summaries(metric)
    figure, axes = _figure(size=(max(4.0, 1.2 * len(scores) + 2.5), 4.5))
    ax = axes[0, 0]
    rng = np.random.default_rng(0)  # the jitter only
    for x, (name, values) in enumerate(scores.items()):
        if not values.size:
            continue
        ax.scatter(x + rng.uniform(-0.15, 0.15, values.size), 100 * values, s=14,
                   alpha=0.6, color=f"C{x % 10}", linewidths=0)
        s = summaries[name]
        ax.errorbar(x + 0.3, 100 * s.iqm, yerr=[[100 * (s.iqm - s.iqm_ci[0])],
                                                [100 * (s.iqm_ci[1] - s.iqm)]],
                    fmt="D", color="black", markersize=5, capsize=4,
                    label=f"IQM, {round(100 * s.confidence)}% CI" if x == 0 else None)
    ax.set_xticks(range(len(scores)), list(scores), rotation=20 if len(scores) > 3 else 0)
    ax.set_ylabel(_NAMES[metric])
    ax.legend(loc="best", fontsize=8)
    return _save(figure, path, caption)


def variance_components(report: "RobustnessReport", path: str, metric: str = "test",
                        caption: str | None = None) -> str:
    """The share of each variance component (main effects, interactions, residual), one
    stacked bar per config of a factorial study. Raises ValueError for other designs."""
    tables = report.variance_components(metric)
    if not tables:
        raise ValueError("variance components need a factorial study with every run scored")
    names = list(tables)
    sources = [c.name for c in next(iter(tables.values())).components]
    figure, axes = _figure(size=(max(4.5, 1.2 * len(names) + 3.5), 4.5))
    ax = axes[0, 0]
    bottom = np.zeros(len(names))
    for k, source in enumerate(sources):
        shares = np.array([100 * tables[n][source].share for n in names])
        shares = np.nan_to_num(shares)
        ax.bar(range(len(names)), shares, bottom=bottom, label=source, color=f"C{k % 10}")
        bottom += shares
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(f"share of the variance of {_NAMES[metric].split(' (')[0]} (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _save(figure, path, caption)


def improvement_matrix(report: "RobustnessReport", path: str, metric: str = "test",
                       caption: str | None = None) -> str:
    """P(row > column) as a heat map (½ is white), each cell with its value and CI.
    Raises ValueError with fewer than two configs."""
    matrix = report.improvement(metric)
    if matrix is None:
        raise ValueError("P(A > B) needs at least two configs with scores")
    k = len(matrix.names)
    p = np.array(matrix.probability)
    figure, axes = _figure(size=(1.4 * k + 3.0, 1.1 * k + 2.0))
    ax = axes[0, 0]
    image = ax.imshow(p, cmap="RdBu", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            if i != j:
                ax.text(j, i, f"{p[i, j]:.2f}\n[{matrix.ci_low[i][j]:.2f}, "
                              f"{matrix.ci_high[i][j]:.2f}]",
                        ha="center", va="center", fontsize=7)
    ax.set_xticks(range(k), matrix.names, rotation=30 if k > 3 else 0)
    ax.set_yticks(range(k), matrix.names)
    ax.set_xlabel("B (column)")
    ax.set_ylabel("A (row)")
    figure.colorbar(image, ax=ax, label=f"P(A > B), {_NAMES[metric].split(' (')[0]}")
    return _save(figure, path, caption)


def performance_profiles(report: "RobustnessReport", path: str, metric: str = "test",
                         caption: str | None = None) -> str:
    """rliable's score distributions: per config, the fraction of runs scoring above τ,
    for τ across the range of all scores (:func:`dendrax.stats.performance_profile`)."""
    from dendrax.stats import performance_profile

    scores = {n: v for n, v in report.config_scores(metric).items() if v.size}
    if not scores:
        raise ValueError("no scores to draw")
    pooled = np.concatenate(list(scores.values()))
    span = max(float(np.ptp(pooled)), 1e-4)
    taus = np.linspace(pooled.min() - 0.05 * span, pooled.max() + 0.05 * span, 200)
    figure, axes = _figure()
    ax = axes[0, 0]
    for k, (name, values) in enumerate(scores.items()):
        ax.step(100 * taus, performance_profile(values, taus), where="post", label=name,
                color=f"C{k % 10}")
    ax.set_xlabel(f"τ, {_NAMES[metric]}")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _save(figure, path, caption)


def epoch_curves(report: "RobustnessReport", path: str, metric: str = "test",
                 caption: str | None = None) -> str:
    """The mean score per epoch of each config, with the bootstrap CI of the mean as a
    band (:meth:`RobustnessReport.epoch_curves`)."""
    curves = report.epoch_curves(metric)
    figure, axes = _figure()
    ax = axes[0, 0]
    for k, (name, curve) in enumerate(curves.items()):
        if not curve["epoch"]:
            continue
        color = f"C{k % 10}"
        ax.plot(curve["epoch"], 100 * np.array(curve["mean"]), label=name, color=color)
        ax.fill_between(curve["epoch"], 100 * np.array(curve["low"]),
                        100 * np.array(curve["high"]), color=color, alpha=0.2, linewidth=0)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{_NAMES[metric]}, mean and {round(100 * report.confidence)}% CI")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _save(figure, path, caption)


def plot_report(report: "RobustnessReport", folder: str, fmt: str = "png",
                metric: str = "test", caption: str | None = None) -> list[str]:
    """Write every figure the study supports into ``folder`` as ``NAME.fmt``: variance
    components need a factorial study, the P(A > B) matrix two configs. Returns the paths."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}: use one of {FORMATS}")
    os.makedirs(folder, exist_ok=True)
    draw = {"score_distributions": score_distributions,
            "variance_components": variance_components,
            "improvement_matrix": improvement_matrix,
            "performance_profiles": performance_profiles, "epoch_curves": epoch_curves}
    written = []
    for name in FIGURES:
        if name == "variance_components" and not report.variance_components(metric):
            continue
        if name == "improvement_matrix" and report.improvement(metric) is None:
            continue
        written.append(draw[name](report, os.path.join(folder, f"{name}.{fmt}"), metric,
                                  caption))
    return written
