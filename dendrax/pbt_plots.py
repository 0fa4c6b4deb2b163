"""Figures of a population-based training search, from its log alone (matplotlib; no JAX):

- ``pbt_schedules``: each hyperparameter PBT changed against the epoch, one line per
  member's model (its schedule through its ancestors), coloured by the member's final
  validation accuracy; the best member's line is drawn thick;
- ``pbt_family_tree``: members (rows) over epochs; each exploit is an arrow from the
  parent's row to the member's at the epoch it happened; the best member's ancestry is
  highlighted.
"""

from __future__ import annotations

import math
import os

from dendrax.plots import FORMATS, _epoch_axis, _figure, _finish
from dendrax.search.pbt import MUTABLE, read_pbt_log

PBT_FIGURES = ("pbt_schedules", "pbt_family_tree")
_LOG_SCALE = ("lr", "weight_decay")


def schedules(log, path: str | None = None):
    """Hyperparameter against epoch for every member's model, coloured by final score."""
    from matplotlib import cm, colors

    keys = sorted(log.initial, key=lambda k: log.slots.get(k, 0))
    lineages = {k: log.lineage(k) for k in keys}
    changing = [n for n in MUTABLE
                if len({repr(v[n]) for lin in lineages.values()
                        for v in lin.schedule().values()}) > 1] or ["lr"]
    figure, axes = _figure(len(changing), 1, (7.0, 2.2 * len(changing) + 0.6))
    finite = [s for s in log.scores.values() if math.isfinite(s)] or [0.0]
    norm = colors.Normalize(min(finite), max(finite) if max(finite) > min(finite)
                            else min(finite) + 1e-9)
    cmap = cm.get_cmap("viridis") if hasattr(cm, "get_cmap") else cm.viridis
    best = log.best
    for ax, name in zip(axes[:, 0], changing):
        for key in keys:
            schedule = lineages[key].schedule()
            epochs = sorted(schedule)
            values = [float(schedule[e][name]) for e in epochs]
            score = log.scores[key]
            color = cmap(norm(score)) if math.isfinite(score) else "0.7"
            # Epoch e trained during (e - 1, e]: the value changes at the generation.
            ax.stairs(values, [epochs[0] - 1] + epochs, baseline=None, color=color,
                      linewidth=2.6 if key == best else 1.0, alpha=1.0 if key == best else 0.7,
                      zorder=3 if key == best else 2)
        ax.set_ylabel(name, fontsize=8)
        if name in _LOG_SCALE:
            ax.set_yscale("log")
    axes[-1, 0].set_xlabel("epoch")
    for ax in axes[:, 0]:
        _epoch_axis(ax)
    figure.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[:, 0].tolist(),
                    label="final validation accuracy")
    axes[0, 0].set_title(f"PBT schedules of {len(keys)} members (thick: the best)",
                         fontsize=9)
    return _finish(figure, path, None)


def family_tree(log, path: str | None = None):
    """Members over epochs; an arrow for each exploit, parent → member."""
    n = max(log.slots.values(), default=0) + 1
    figure, axes = _figure(1, 1, (7.0, 0.3 * n + 1.5))
    ax = axes[0, 0]
    for slot in range(n):
        ax.plot([0, log.n_epochs], [slot, slot], color="0.85", linewidth=0.8, zorder=1)
    ancestry = log.lineage()
    on_path = set()
    for first, last, key, _ in ancestry.segments:
        slot = log.slots.get(key, 0)
        ax.plot([first - 1, last], [slot, slot], color="C3", linewidth=2.5, zorder=3)
        on_path.add((first - 1, key))
    for r in log.exploits:
        highlighted = (r["epoch"], r["member_key"]) in on_path
        ax.annotate("", xy=(r["epoch"], r["member"]), xytext=(r["epoch"], r["parent"]),
                    arrowprops={"arrowstyle": "->", "color": "C3" if highlighted else "0.45",
                                "linewidth": 1.6 if highlighted else 0.8}, zorder=4)
    ax.set_xlim(0, log.n_epochs)
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_xlabel("epoch")
    _epoch_axis(ax)
    ax.set_ylabel("member")
    ax.set_title(f"PBT family tree: {len(log.exploits)} exploits (red: the best member's "
                 f"ancestry)", fontsize=9)
    return _finish(figure, path, None)


def plot_pbt(log_path: str, out_dir: str, fmt: str = "png",
             search_index: int | None = None) -> dict[str, str]:
    """Write :data:`PBT_FIGURES` of the log's last PBT call (or ``search_index``) as
    ``<out_dir>/<name>.<fmt>``; returns {name: path}."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}; choose one of {', '.join(FORMATS)}")
    log = read_pbt_log(log_path, search_index)
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, f"{name}.{fmt}") for name in PBT_FIGURES}
    schedules(log, paths["pbt_schedules"])
    family_tree(log, paths["pbt_family_tree"])
    return paths
