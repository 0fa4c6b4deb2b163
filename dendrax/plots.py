"""Figures of a search for papers: PNG, PDF or SVG (needs matplotlib:
``pip install 'dendrax[plot]'``).

Each figure is a function of a list of :class:`~dendrax.search.SearchResult` (a search
record's ``results``) that returns a ``matplotlib.figure.Figure`` and, given a ``path``,
saves it (the format follows the extension: .png, .pdf, .svg):

  accuracy_vs_params           accuracy (mean ± std over seeds) against parameter count, the
                               Pareto front highlighted
  training_curves              validation accuracy and training loss per epoch of the top n
  accuracy_by_hyperparameter   accuracy by value, one panel per searched parameter: a jittered
                               scatter for numeric parameters, boxes for categorical ones
  rewiring_swaps               accepted rewiring swaps per resampling round of the top n, as a
                               fraction of the model's connections (comparable across sizes)
  seed_robustness              each seed's accuracy of the top n, with mean and 95% interval
  halving                      validation accuracy per epoch of every model (config and
                               seed), and the rung at which successive halving stopped it

:func:`plot_search` writes all of them into a folder for a
:class:`~dendrax.search.record.SearchRecord` (``searcher.record()``, or a log read back by
``read_search``, as ``dendrax plot`` does). The top n are ranked as the search ranks
(validation accuracy, never test). Legends name only the hyperparameters that vary
among the configs shown, wrap rather than cut, and sit outside the axes. ``caption`` (see
:func:`caption_line`: dataset, epochs, subset, seeds) is printed under every figure.
Figures are drawn on ``Figure`` objects, never through pyplot, so no display or global state
is involved.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import textwrap
from typing import Any, Mapping, Sequence

import numpy as np

from dendrax.search.record import SearchRecord
from dendrax.search.results import (SearchResult, check_output, epoch_stats, format_value,
                                    pareto_front, prepare_folder, rank_results, write_atomic)
from dendrax.search.table import parameter_value, varying_parameters
from dendrax.spec import rewiring_rounds

FIGURES = ("accuracy_vs_params", "training_curves", "accuracy_by_hyperparameter",
           "rewiring_swaps", "seed_robustness", "halving")
FORMATS = ("png", "pdf", "svg")
DPI = 120
_LABEL_WIDTH = 48      # legend labels wrap at this many characters (never cut)
_MAX_TICKS = 8         # a numeric panel with at most this many values ticks each of them
_METRIC_NAMES = {"val": "validation accuracy", "test": "test accuracy"}


def _figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (7.0, 4.5)):
    """A constrained-layout Figure and its 2-D array of axes."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("dendrax plots need matplotlib: pip install 'dendrax[plot]'") from None
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    return figure, figure.subplots(nrows, ncols, squeeze=False)


def _finish(figure, path: str | None, caption: str | None):
    """Add the caption line under the figure, save it when ``path`` is given (format from
    the extension; :func:`~dendrax.search.results.write_atomic`), return the figure."""
    if caption:
        figure.supxlabel(caption, fontsize=7, color="0.35")
    if path is not None:
        # Drawn in memory, then written whole or not at all (write_atomic), so a full disk
        # or an interrupt never leaves a cut-short figure over the previous one.
        buffer = io.BytesIO()
        figure.savefig(buffer, format=os.path.splitext(os.fspath(path))[1][1:].lower() or None)
        write_atomic(path, buffer.getvalue(), "figure")
    return figure


def caption_line(settings: Mapping[str, Any] | None, results: Sequence[SearchResult] = ()
                 ) -> str:
    """"fashion-mnist · 6 epochs · 2,000 training examples · 2 seeds per config · 24
    configs": what a reader of the figure needs to judge it, from a log's or searcher's
    settings (dataset, n_epochs, subset_size, data.n_train, seeds)."""
    settings = settings or {}
    parts = []
    if settings.get("dataset"):
        parts.append(str(settings["dataset"]))
    if settings.get("n_epochs"):
        parts.append(f"{settings['n_epochs']} epochs")
    n_train = (settings.get("data") or {}).get("n_train")
    if settings.get("subset_size"):
        parts.append(f"subset of {settings['subset_size']:,} training examples")
    elif n_train:
        parts.append(f"{n_train:,} training examples")
    seeds = sorted({r.n_seeds for r in results})
    if seeds:
        count = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
        parts.append(f"{count} seed{'' if seeds == [1] else 's'} per config")
        parts.append(f"{len(results)} configs")
    return " · ".join(parts)


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


def _label(rank: int, result: SearchResult, names: Sequence[str]) -> str:
    """"#1 7,198 p: n_neurons=12, ..." with the hyperparameters ``names`` (those that vary
    among the configs shown), wrapped onto several lines rather than cut."""
    text = ", ".join(f"{k}={format_value(parameter_value(result, k))}" for k in names)
    text = f"#{rank} {result.total_params:,} p" + (f": {text}" if text else "")
    return "\n".join(textwrap.wrap(text, _LABEL_WIDTH, subsequent_indent="   ")) or text


def _legend(figure, ax) -> None:
    """A figure legend right of the axes: constrained layout makes room, nothing is cut."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside right upper", fontsize=7)


def _per_epoch(result: SearchResult, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof=0, the band) over seeds of one metric per epoch (epoch_stats)."""
    mean, std = epoch_stats(result, metric)
    return np.asarray(mean, dtype=float), np.asarray(std, dtype=float)


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


# ---- (a) accuracy against parameter count -------------------------------------------------

def accuracy_vs_params(results: Sequence[SearchResult], path: str | None = None,
                       metric: str = "val", caption: str | None = None):
    """Accuracy (``metric`` "val" or "test"; mean ± std over seeds as error bars) against
    parameter count, every non-diverged config, with the Pareto front (fewest parameters,
    highest mean validation accuracy) drawn as a step line. Returns the figure."""
    _check_metric(metric)
    figure, axes = _figure()
    ax = axes[0, 0]
    alive = _alive(results, metric)
    if not alive:
        _empty(ax, "no trained (non-diverged) configuration")
        return _finish(figure, path, caption)
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
    return _finish(figure, path, caption)


def _epoch_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _: f"{x:,.0f}")


# ---- (b) training curves --------------------------------------------------------------------

def training_curves(results: Sequence[SearchResult], path: str | None = None, top: int = 5,
                    rank_by: str = "val_mean", caption: str | None = None):
    """Validation accuracy and training loss per epoch of the ``top`` best configs (mean
    over seeds, a ± std band where there are several). Returns the figure."""
    best = rank_results(results, rank_by)[:top]
    figure, axes = _figure(1, 2, size=(12.0, 4.6))
    panels = ((axes[0, 0], "val_accuracy", "validation accuracy"),
              (axes[0, 1], "train_loss", "training loss"))
    if not best:
        for ax, _, name in panels:
            _empty(ax, f"{name}: no trained configuration")
        return _finish(figure, path, caption)
    names = varying_parameters(best)
    for ax, metric, name in panels:
        for rank, result in enumerate(best, 1):
            mean, std = _per_epoch(result, metric)
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
    _legend(figure, axes[0, 0])
    return _finish(figure, path, caption)


# ---- (c) accuracy by hyperparameter value ---------------------------------------------------

def _is_numeric(values: Sequence[Any]) -> bool:
    return bool(values) and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                for v in values)


def _jitter(xs: np.ndarray, log: bool, rng: np.random.Generator) -> np.ndarray:
    """Spread points of equal x apart by up to 15% of the smallest gap between
    distinct values (on the log scale when the axis is logarithmic)."""
    scaled = np.log(xs) if log else xs.astype(float)
    distinct = np.unique(scaled)
    gap = np.min(np.diff(distinct)) if len(distinct) > 1 else max(abs(distinct[0]), 1.0) * 0.1
    moved = scaled + rng.uniform(-0.15, 0.15, len(xs)) * gap
    return np.exp(moved) if log else moved


def _value_panel(ax, name: str, values: list[Any], accuracy: list[float],
                 rng: np.random.Generator) -> None:
    """A numeric parameter as a jittered scatter (None, as hidden_dim of an architecture
    without one, has no place on a number line and is left out); a categorical one (bool,
    text, mixed) as a box per value with its points overlaid."""
    numeric = [(v, a) for v, a in zip(values, accuracy) if v is not None]
    if _is_numeric([v for v, _ in numeric]):
        xs = np.asarray([v for v, _ in numeric], dtype=float)
        log = bool(xs.min() > 0 and (name in ("lr", "weight_decay")
                                     or xs.max() / xs.min() > 100))
        ax.scatter(_jitter(xs, log, rng), [a for _, a in numeric], s=14, alpha=0.7)
        if log:
            ax.set_xscale("log")
        distinct = np.unique(xs)
        if len(distinct) <= _MAX_TICKS:  # few values: tick exactly those, jitter is visible
            ax.set_xticks(distinct, [format_value(float(v)) if not float(v).is_integer()
                                     else f"{int(v)}" for v in distinct], fontsize=8)
    else:
        distinct = sorted(set(values), key=lambda v: (str(type(v)), str(v)))
        groups = [[a for v, a in zip(values, accuracy) if v == d] for d in distinct]
        ax.boxplot(groups, widths=0.5, showfliers=False)
        for i, group in enumerate(groups, 1):
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(group)), group, s=12, alpha=0.7,
                       color="tab:blue", zorder=3)
        ax.set_xticks(range(1, len(distinct) + 1), [format_value(d) for d in distinct],
                      rotation=30 if len(distinct) > 4 else 0, fontsize=8)
    ax.set_title(name, fontsize=9)
    ax.grid(alpha=0.3)


def accuracy_by_hyperparameter(results: Sequence[SearchResult], path: str | None = None,
                               metric: str = "val", caption: str | None = None):
    """Accuracy (mean over seeds) by value of each searched parameter, one panel each: a
    scatter, jittered, for a numeric parameter; a box per value (points overlaid) for a
    categorical one. Diverged configs are left out. Returns the figure."""
    _check_metric(metric)
    alive = _alive(results, metric)
    names = varying_parameters(alive)
    ncols = min(3, max(1, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    figure, axes = _figure(nrows, ncols, size=(3.8 * ncols, 3.0 * nrows + 0.8))
    if not names:
        _empty(axes[0, 0], "no searched parameter varies between the trained configurations")
        return _finish(figure, path, caption)
    rng = np.random.default_rng(0)  # the jitter, fixed so that reruns draw the same image
    accuracy = [_accuracy(r, metric) for r in alive]
    for ax, name in zip(axes.flat, names):
        values = [parameter_value(r, name) for r in alive]
        _value_panel(ax, name, values, accuracy, rng)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel(_METRIC_NAMES[metric], fontsize=8)
    figure.suptitle(f"{_METRIC_NAMES[metric].capitalize()} by hyperparameter value "
                    f"({len(alive)} configurations)", fontsize=10)
    return _finish(figure, path, caption)


# ---- (d) rewiring swaps ----------------------------------------------------------------------

def rounds_per_epoch(steps_per_epoch: int, steps_to_resample: int, n_epochs: int) -> np.ndarray:
    """Resampling rounds in each epoch under the trainer's schedule
    (:func:`dendrax.spec.rewiring_rounds`): epoch e (0-based) holds the rounds of steps
    e·S + 1 … (e+1)·S, for S steps per epoch."""
    ends = [rewiring_rounds(e * steps_per_epoch, steps_to_resample) for e in range(n_epochs + 1)]
    return np.diff(np.asarray(ends, dtype=np.int64))


def connections(config: Mapping[str, Any], in_dim: int) -> int:
    """Synapses a model can rewire: branches × inputs per branch."""
    from dendrax.config import ModelConfig

    shape = ModelConfig.from_dict(dict(config)).shape(in_dim)
    return shape.n_branches * shape.k


def rewiring_swaps(results: Sequence[SearchResult], path: str | None = None, top: int = 5,
                   rank_by: str = "val_mean", steps_per_epoch: int | None = None,
                   in_dim: int | None = None, caption: str | None = None):
    """Accepted rewiring swaps of the ``top`` best configs (mean over seeds), per
    resampling round when ``steps_per_epoch`` (training samples // batch size) is known,
    else per epoch; as a fraction of the model's connections (branches × inputs per
    branch) when ``in_dim`` is known, so models of different sizes compare. Configs
    without resampling are drawn at zero. Returns the figure."""
    best = [r for r in rank_results(results, rank_by)[:top]
            if any(h.get("swaps") for h in r.history)]
    figure, axes = _figure(size=(9.0, 4.6))
    ax = axes[0, 0]
    unit = "per resampling round" if steps_per_epoch else "per epoch"
    if not best:
        _empty(ax, "no rewiring swap counts in these results")
        return _finish(figure, path, caption)
    names = varying_parameters(best)
    highest = 0.0
    for rank, result in enumerate(best, 1):
        swaps, _ = _per_epoch(result, "swaps")
        label = _label(rank, result, names)
        if not result.config.get("synaptic_resampling", True):
            label += " (no resampling)"
        if steps_per_epoch:
            rounds = rounds_per_epoch(steps_per_epoch,
                                      result.config.get("steps_to_resample", 128), len(swaps))
            swaps = np.where(rounds > 0, swaps / np.maximum(rounds, 1), np.nan)
        if in_dim:
            swaps = swaps / connections(result.config, in_dim)
        ax.plot(np.arange(1, len(swaps) + 1), swaps, "-", marker="." if len(swaps) < 30 else None,
                label=label)
        highest = max([highest, *swaps[np.isfinite(swaps)]])
    _epoch_axis(ax)
    ax.set_ylim(0, 1.08 * highest or 1.0)  # counts: from zero, so the scale stays honest
    what = "fraction of connections rewired" if in_dim else "accepted swaps"
    ax.set_ylabel(f"{what} {unit}")
    if in_dim:
        from matplotlib.ticker import PercentFormatter

        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(f"Top {len(best)}: rewiring {unit}, mean over seeds", fontsize=10)
    ax.grid(alpha=0.3)
    _legend(figure, ax)
    return _finish(figure, path, caption)


# ---- (e) robustness over seeds -----------------------------------------------------------

def seed_robustness(results: Sequence[SearchResult], path: str | None = None, top: int = 10,
                    rank_by: str = "val_mean", metric: str = "val",
                    caption: str | None = None):
    """Each seed's final accuracy (``metric``) of the ``top`` best configs as points, with
    the mean (a bar) and the 95% t-interval over seeds (error bar) where there are two seeds
    or more: how much of a config's rank is its seed. Returns the figure."""
    _check_metric(metric)
    best = rank_results(results, rank_by)[:top]
    figure, axes = _figure(size=(max(6.0, 0.8 * len(best) + 3.5), 4.6))
    ax = axes[0, 0]
    if not best:
        _empty(ax, "no trained configuration")
        return _finish(figure, path, caption)
    key = "val_accuracy" if metric == "val" else "test_accuracy"
    rng = np.random.default_rng(0)
    names = varying_parameters(best)
    for rank, result in enumerate(best, 1):
        finals = np.array([h[key][-1] for h in result.history if h.get(key)], dtype=float)
        finals = finals[np.isfinite(finals)]
        ax.scatter(rank + rng.uniform(-0.12, 0.12, len(finals)), finals, s=16, alpha=0.8,
                   color="tab:blue", zorder=3, label="one seed" if rank == 1 else None)
        stats = result.val_stats if metric == "val" else result.test_stats
        mean = _accuracy(result, metric)
        if stats is not None:  # an accuracy lies in [0, 1]: so does its drawn interval
            low, high = max(0.0, stats.ci_low), min(1.0, stats.ci_high)
            ax.errorbar([rank], [mean], yerr=[[mean - low], [high - mean]],
                        fmt="_", ms=18, color="tab:red", capsize=4, zorder=4,
                        label="mean and 95% t-interval (within 0–1)" if rank == 1 else None)
        else:
            ax.plot([rank], [mean], "_", ms=18, color="tab:red", zorder=4)
        ax.plot([], [], " ", label=_label(rank, result, names))  # the legend's key to ranks
    ax.set_xticks(range(1, len(best) + 1), [f"#{i}" for i in range(1, len(best) + 1)])
    ax.set_xlabel(f"configuration (ranked by {rank_by})")
    ax.set_ylabel(_METRIC_NAMES[metric])
    ax.set_title(f"Robustness over seeds: top {len(best)}", fontsize=10)
    ax.grid(alpha=0.3)
    _legend(figure, ax)
    return _finish(figure, path, caption)


# ---- (f) successive halving --------------------------------------------------------------

def halving(results: Sequence[SearchResult], path: str | None = None,
            caption: str | None = None):
    """Validation accuracy per epoch of every trained model (each seed of each config):
    those successive halving stopped in grey, ending with a cross at their rung, those
    trained to the end in colour; dashed lines mark the rungs. Without halving every model
    is a full curve. Returns the figure."""
    figure, axes = _figure(size=(8.5, 4.6))
    ax = axes[0, 0]
    models = [(r.history[i].get("val_accuracy") or [],
               r.stopped_epochs[i] if i < len(r.stopped_epochs) else None)
              for r in results if not r.diverged for i in range(len(r.history))]
    models = [(np.asarray(curve, dtype=float), stop) for curve, stop in models if curve]
    if not models:
        _empty(ax, "no trained model")
        return _finish(figure, path, caption)
    rungs = sorted({stop for _, stop in models if stop is not None})
    for rung in rungs:
        ax.axvline(rung, color="0.5", ls="--", lw=0.8)
    n_stopped = 0
    for curve, stop in models:
        epochs = np.arange(1, len(curve) + 1)
        if stop is None:
            ax.plot(epochs, curve, "-", lw=1.4, color="tab:blue")
            continue
        n_stopped += 1
        ax.plot(epochs, curve, "-", color="0.6", lw=0.8, alpha=0.8)
        ax.plot(epochs[-1:], curve[-1:], "x", color="0.4", ms=5)
    ax.plot([], [], "-x", color="0.5", label=f"stopped by halving ({n_stopped} models)")
    ax.plot([], [], "-", color="tab:blue",
            label=f"trained to the end ({len(models) - n_stopped} models)")
    _epoch_axis(ax)
    ax.set_ylabel("validation accuracy")
    ax.set_title("Successive halving: " + (
        f"rungs at epoch {', '.join(map(str, rungs))}" if rungs
        else "no model was stopped early"), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _finish(figure, path, caption)


# ---- all of them ------------------------------------------------------------------------------

def plot_search(record: SearchRecord, out_dir: str, *, top: int = 5, metric: str = "val",
                fmt: str = "png", caption: bool = True) -> dict[str, str]:
    """Write every figure of :data:`FIGURES` for a search ``record`` as
    ``<out_dir>/<name>.<fmt>`` (png, pdf or svg; the folder is created). ``metric`` ("val"
    or "test") is the accuracy of the parameter, hyperparameter and seed figures; the top
    ``top`` by the record's ranking fill the curves, swaps and seeds. The record's steps
    per epoch and input size turn swaps into a fraction of the connections per round;
    ``caption`` puts :func:`caption_line` under every figure. Returns {name: path}.

    The folder and the figures' paths are checked before anything is drawn, and each
    figure is written whole or not at all: a file where the folder should be, a folder that
    cannot be created or written, or a full disk is an OutputError naming the path."""
    _check_metric(metric)
    if not isinstance(top, int) or top < 1:
        raise ValueError(f"top={top!r} must be an integer >= 1")
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}; choose one of {', '.join(FORMATS)}")
    # Every path checked before anything is drawn: the folder (created if missing) and each
    # figure's file, which must not be the log the record was read from.
    out_dir = prepare_folder(out_dir, "out_dir")
    paths = {name: check_output(os.path.join(out_dir, f"{name}.{fmt}"), "figure",
                                {"the search log": record.source}) for name in FIGURES}
    results, rank_by = list(record.results), record.rank_by
    text = caption_line(record.settings, results) if caption else None
    accuracy_vs_params(results, paths["accuracy_vs_params"], metric, text)
    training_curves(results, paths["training_curves"], top, rank_by, text)
    accuracy_by_hyperparameter(results, paths["accuracy_by_hyperparameter"], metric, text)
    rewiring_swaps(results, paths["rewiring_swaps"], top, rank_by, record.steps_per_epoch,
                   record.in_dim, text)
    seed_robustness(results, paths["seed_robustness"], top, rank_by, metric, text)
    halving(results, paths["halving"], text)
    return paths
