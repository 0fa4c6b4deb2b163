"""What every exporter needs: a config's hyperparameters, its per-epoch means, a name."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from dendrax.search.results import SearchResult
from dendrax.search.table import hyperparameter_names


def require(module: str, extra: str, what: str):
    """Import ``module`` or raise ImportError naming the pip extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{what} needs {module.split('.')[0]}: "
                          f"pip install 'dendrax[{extra}]'") from None


def hyperparameters(result: SearchResult, names: Sequence[str]) -> dict[str, Any]:
    """The searched parameters of a result: its params, else its full config's value."""
    return {n: result.params[n] if n in result.params else result.config.get(n)
            for n in names}


def searched_names(results: Sequence[SearchResult]) -> list[str]:
    return hyperparameter_names(results)


def epoch_means(result: SearchResult, metric: str) -> list[float]:
    """Mean over the seeds that reached each epoch (NaN where none has a finite value)."""
    rows = [h.get(metric) or [] for h in result.history]
    width = max((len(r) for r in rows), default=0)
    out = []
    for e in range(width):
        values = [float(r[e]) for r in rows if e < len(r) and r[e] is not None
                  and math.isfinite(float(r[e]))]
        out.append(math.fsum(values) / len(values) if values else math.nan)
    return out


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def varying_names(results: Sequence[SearchResult]) -> list[str]:
    """The searched parameters whose value differs between results (for run names)."""
    names = searched_names(results)
    return [n for n in names
            if len({repr(hyperparameters(r, [n])[n]) for r in results}) > 1]


def run_name(index: int, result: SearchResult, names: Sequence[str]) -> str:
    """"003 n_neurons=12 n_dendrites=6": a sortable, readable run name from ``names`` (the
    parameters that vary, see varying_names)."""
    values = hyperparameters(result, names)
    text = " ".join(f"{k}={_short(v)}" for k, v in values.items())
    return f"{index:03d} {text}".strip()[:200]


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def export_settings(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The flat settings every exporter records: dataset, epochs, subset, budget, seed."""
    budget = spec.get("budget") or {}
    return {k: v for k, v in {
        "dataset": spec.get("dataset"), "n_epochs": spec.get("n_epochs"),
        "subset_size": spec.get("subset_size"), "batch_size": spec.get("batch_size"),
        "max_params": budget.get("max_params"),
        "min_param_ratio": budget.get("min_param_ratio"), "seed": spec.get("seed"),
        "validation_fraction": spec.get("validation_fraction"),
        "halving": spec.get("halving")}.items() if v is not None}
