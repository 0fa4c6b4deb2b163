"""Figures of a search, written as PNG files (needs matplotlib: ``pip install 'dendrax[plot]'``).

Each figure is a function of a list of :class:`~dendrax.search.SearchResult` (a searcher's
``results``, or a log read back by ``dendrax plot``) and writes one file:

  accuracy_vs_params           accuracy (mean ± std over seeds) against parameter count, the
                               Pareto front highlighted
  training_curves              validation accuracy and training loss per epoch of the top n
  accuracy_by_hyperparameter   validation accuracy by value, one panel per searched parameter
  rewiring_swaps               accepted rewiring swaps per resampling round of the top n

:func:`plot_search` writes all four into a folder. The top n are ranked as the searcher
ranks (validation accuracy, never test). Figures are drawn on ``matplotlib.figure.Figure``
objects, never through pyplot, so no display or global state is involved.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Sequence

import numpy as np

from dendrax.search.results import SearchResult, pareto_front, rank_results

FIGURES = ("accuracy_vs_params", "training_curves", "accuracy_by_hyperparameter",
           "rewiring_swaps")
DPI = 120
_MAX_BOXES = 8         # a numeric parameter with more distinct values is drawn as a scatter
_LABEL_CHARS = 70
_METRIC_NAMES = {"val": "validation accuracy", "test": "test accuracy"}


def _figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (7.0, 4.5)):
    """A constrained-layout Figure and its 2-D array of axes."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("dendrax plots need matplotlib: pip install 'dendrax[plot]'") from None
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    return figure, figure.subplots(nrows, ncols, squeeze=False)


def _save(figure, path: str) -> str:
    figure.savefig(path, format="png")
    return path


def _alive(results: Sequence[SearchResult], metric: str) -> list[SearchResult]:
    return [r for r in results if not r.diverged and math.isfinite(_accuracy(r, metric))]


def _accuracy(result: SearchResult, metric: str) -> float:
    value = result.val_accuracy if metric == "val" else result.test_accuracy
    return math.nan if value is None else float(value)


def _spread(result: SearchResult, metric: str) -> float:
    stats = result.val_stats if metric == "val" else result.test_stats
    return stats.std if stats is not None else 0.0


def _check_metric(metric: str) -> None:
    if metric not in _METRIC_NAMES:
        raise ValueError(f"metric={metric!r}; choose val or test")


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _label(rank: int, result: SearchResult, names: Sequence[str]) -> str:
    """"#1 7,198 p: n_neurons=12, ..." with the searched parameters ``names``, cut to a
    legend-sized line."""
    values = result.config or result.params
    text = ", ".join(f"{k}={_format(values[k])}" for k in names if k in values)
    text = f"#{rank} {result.total_params:,} p" + (f": {text}" if text else "")
    return text if len(text) <= _LABEL_CHARS else text[:_LABEL_CHARS - 1] + "…"


def _per_epoch(result: SearchResult, metric: str) -> np.ndarray:
    """(seeds, epochs) array of one history metric; NaN where a seed's history is shorter."""
    rows = [h.get(metric) or [] for h in result.history]
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        out[i, :len(row)] = np.asarray(row, dtype=float)
    return out


def _nan_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof=0 for the band; NaN-aware) over seeds, without warnings."""
    count = np.sum(np.isfinite(values), 0)
    total = np.nansum(values, 0)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    squares = np.nansum((values - mean) ** 2, 0)
    std = np.where(count > 1, np.sqrt(squares / np.maximum(count, 1)), 0.0)
    return mean, std


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


# ---- (a) accuracy against parameter count -------------------------------------------------

def accuracy_vs_params(results: Sequence[SearchResult], path: str, metric: str = "val") -> str:
    """Accuracy (``metric`` "val" or "test"; mean ± std over seeds as error bars) against
    parameter count, every non-diverged config, with the Pareto front (fewest parameters,
    highest mean validation accuracy) drawn as a step line. Returns ``path``."""
    _check_metric(metric)
    figure, axes = _figure()
    ax = axes[0, 0]
    alive = _alive(results, metric)
    if not alive:
        _empty(ax, "no trained (non-diverged) configuration")
        return _save(figure, path)
    ax.errorbar([r.total_params for r in alive], [_accuracy(r, metric) for r in alive],
                yerr=[_spread(r, metric) for r in alive], fmt="o", ms=4, alpha=0.55,
                color="tab:blue", ecolor="tab:blue", elinewidth=1, capsize=2,
                label="configuration" + (" (mean ± std over seeds)"
                                          if any(r.n_seeds > 1 for r in alive) else ""))
    front = [r for r in pareto_front(results) if math.isfinite(_accuracy(r, metric))]
    ax.plot([r.total_params for r in front], [_accuracy(r, metric) for r in front],
            "-o", drawstyle="steps-post", color="tab:red", ms=6, lw=1.5,
            label="Pareto front (by validation accuracy)")
    n_diverged = sum(r.diverged for r in results)
    ax.set_xlabel("parameters")
    ax.set_ylabel(_METRIC_NAMES[metric])
    ax.set_title(f"{_METRIC_NAMES[metric].capitalize()} against parameters: {len(alive)} "
                 f"configurations, {len(front)} on the front"
                 + (f", {n_diverged} diverged (not shown)" if n_diverged else ""), fontsize=10)
    ax.xaxis.set_major_formatter(_thousands())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(figure, path)


def _epoch_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _: f"{x:,.0f}")


# ---- (b) training curves --------------------------------------------------------------------

def training_curves(results: Sequence[SearchResult], path: str, top: int = 5,
                    rank_by: str = "val_mean") -> str:
    """Validation accuracy and training loss per epoch of the ``top`` best configs (mean
    over seeds, a ± std band where there are several). Returns ``path``."""
    best = rank_results(results, rank_by)[:top]
    figure, axes = _figure(1, 2, size=(11.0, 4.8))
    panels = ((axes[0, 0], "val_accuracy", "validation accuracy"),
              (axes[0, 1], "train_loss", "training loss"))
    if not best:
        for ax, _, name in panels:
            _empty(ax, f"{name}: no trained configuration")
        return _save(figure, path)
    names = searched_parameters(results)
    for ax, metric, name in panels:
        for rank, result in enumerate(best, 1):
            mean, std = _nan_stats(_per_epoch(result, metric))
            epochs = np.arange(1, len(mean) + 1)
            line, = ax.plot(epochs, mean, "-", marker="." if len(mean) < 30 else None,
                            label=_label(rank, result, names))
            if result.n_seeds > 1:
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(),
                                alpha=0.15, lw=0)
        _epoch_axis(ax)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(f"Top {len(best)}: validation accuracy per epoch", fontsize=10)
    axes[0, 1].set_title(f"Top {len(best)}: training loss per epoch", fontsize=10)
    figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center",
                  fontsize=7, ncols=1)
    return _save(figure, path)


# ---- (c) accuracy by hyperparameter value ---------------------------------------------------

def searched_parameters(results: Sequence[SearchResult]) -> list[str]:
    """Parameters whose value differs between results (the seed excepted), in the order of
    the results' configs."""
    names: dict[str, set] = {}
    for r in results:
        for k, v in (r.config or r.params).items():
            names.setdefault(k, set()).add(repr(v))
    return [k for k, values in names.items() if k != "seed" and len(values) > 1]


def _is_numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)


def _value_panel(ax, name: str, values: list[Any], accuracy: list[float],
                 rng: np.random.Generator) -> None:
    distinct = sorted(set(values), key=lambda v: (str(type(v)), v if v is not None else 0))
    numeric = [(v, a) for v, a in zip(values, accuracy) if v is not None]
    if _is_numeric([v for v, _ in numeric]) and len(distinct) > _MAX_BOXES:
        # Many values: a scatter. None (e.g. hidden_dim of an architecture without one)
        # has no place on a number line and is left out of this panel.
        xs = [v for v, _ in numeric]
        ax.scatter(xs, [a for _, a in numeric], s=14, alpha=0.7)
        if min(xs) > 0 and (name in ("lr", "weight_decay") or max(xs) / min(xs) > 100):
            ax.set_xscale("log")
    else:
        groups = [[a for v, a in zip(values, accuracy) if v == d] for d in distinct]
        ax.boxplot(groups, widths=0.5, showfliers=False)
        for i, group in enumerate(groups, 1):
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(group)), group, s=12, alpha=0.7,
                       color="tab:blue", zorder=3)
        ax.set_xticks(range(1, len(distinct) + 1), [_format(d) for d in distinct],
                      rotation=30 if len(distinct) > 4 else 0, fontsize=8)
    ax.set_title(name, fontsize=9)
    ax.grid(alpha=0.3)


def accuracy_by_hyperparameter(results: Sequence[SearchResult], path: str,
                               metric: str = "val") -> str:
    """Accuracy (mean over seeds) by value of each searched parameter, one panel each: a
    box per value (points overlaid), or a scatter for a numeric parameter with many
    values. Diverged configs are left out. Returns ``path``."""
    _check_metric(metric)
    alive = _alive(results, metric)
    names = searched_parameters(alive)
    ncols = min(3, max(1, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    figure, axes = _figure(nrows, ncols, size=(3.8 * ncols, 3.0 * nrows + 0.6))
    if not names:
        _empty(axes[0, 0], "no searched parameter varies between the trained configurations")
        return _save(figure, path)
    rng = np.random.default_rng(0)  # the jitter, fixed so that reruns draw the same image
    accuracy = [_accuracy(r, metric) for r in alive]
    for ax, name in zip(axes.flat, names):
        values = [(r.config or r.params).get(name) for r in alive]
        _value_panel(ax, name, values, accuracy, rng)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel(_METRIC_NAMES[metric], fontsize=8)
    figure.suptitle(f"{_METRIC_NAMES[metric].capitalize()} by hyperparameter value "
                    f"({len(alive)} configurations)", fontsize=10)
    return _save(figure, path)


# ---- (d) rewiring swaps ----------------------------------------------------------------------

def rounds_per_epoch(steps_per_epoch: int, steps_to_resample: int, n_epochs: int) -> np.ndarray:
    """Resampling rounds in each epoch: the trainer rewires after every step whose global
    count is a multiple of ``steps_to_resample``, so epoch e (0-based) holds
    floor((e+1)·S/R) − floor(e·S/R) rounds for S steps per epoch."""
    ends = (np.arange(n_epochs + 1) * steps_per_epoch) // max(int(steps_to_resample), 1)
    return np.diff(ends)


def rewiring_swaps(results: Sequence[SearchResult], path: str, top: int = 5,
                   rank_by: str = "val_mean", steps_per_epoch: int | None = None) -> str:
    """Accepted rewiring swaps of the ``top`` best configs (mean over seeds), per
    resampling round when ``steps_per_epoch`` (training samples // batch size) is known,
    else per epoch. Configs without resampling are drawn at zero. Returns ``path``."""
    best = [r for r in rank_results(results, rank_by)[:top]
            if any(h.get("swaps") for h in r.history)]
    figure, axes = _figure(size=(8.0, 4.8))
    ax = axes[0, 0]
    unit = "per resampling round" if steps_per_epoch else "per epoch"
    if not best:
        _empty(ax, "no rewiring swap counts in these results")
        return _save(figure, path)
    names = searched_parameters(results)
    highest = 0.0
    for rank, result in enumerate(best, 1):
        swaps, _ = _nan_stats(_per_epoch(result, "swaps"))
        label = _label(rank, result, names)
        if not result.config.get("synaptic_resampling", True):
            label += " (no resampling)"
        if steps_per_epoch:
            rounds = rounds_per_epoch(steps_per_epoch,
                                      result.config.get("steps_to_resample", 128), len(swaps))
            swaps = np.where(rounds > 0, swaps / np.maximum(rounds, 1), np.nan)
        ax.plot(np.arange(1, len(swaps) + 1), swaps, "-", marker="." if len(swaps) < 30 else None,
                label=label)
        highest = max([highest, *swaps[np.isfinite(swaps)]])
    _epoch_axis(ax)
    ax.set_ylim(0, 1.08 * highest or 1.0)  # counts: from zero, so the scale stays honest
    ax.set_ylabel(f"accepted swaps {unit}")
    ax.set_title(f"Top {len(best)}: accepted rewiring swaps {unit} (mean over seeds)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize=7)
    return _save(figure, path)


# ---- all four ---------------------------------------------------------------------------------

def plot_search(results: Sequence[SearchResult], out_dir: str, *, top: int = 5,
                metric: str = "val", rank_by: str = "val_mean",
                steps_per_epoch: int | None = None) -> dict[str, str]:
    """Write the four figures as ``<out_dir>/<name>.png`` (names in :data:`FIGURES`;
    the folder is created). ``metric`` ("val" or "test") is the accuracy of figures (a) and
    (c); the top ``top`` by ``rank_by`` fill (b) and (d). Returns {name: path}."""
    _check_metric(metric)
    if not isinstance(top, int) or top < 1:
        raise ValueError(f"top={top!r} must be an integer >= 1")
    results = list(results)
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, f"{name}.png") for name in FIGURES}
    accuracy_vs_params(results, paths["accuracy_vs_params"], metric)
    training_curves(results, paths["training_curves"], top, rank_by)
    accuracy_by_hyperparameter(results, paths["accuracy_by_hyperparameter"], metric)
    rewiring_swaps(results, paths["rewiring_swaps"], top, rank_by, steps_per_epoch)
    return paths
