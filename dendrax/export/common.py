"""What every exporter needs: a config's hyperparameters, a run name, the search's settings."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from dendrax.search.record import SearchRecord
from dendrax.search.results import SearchResult, format_value
from dendrax.search.table import parameter_value


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
    return {n: parameter_value(result, n) for n in names}


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def run_name(index: int, result: SearchResult, names: Sequence[str]) -> str:
    """"003 n_neurons=12 n_dendrites=6": a sortable, readable run name from ``names`` (the
    parameters that vary, see dendrax.search.table.varying_parameters)."""
    values = hyperparameters(result, names)
    text = " ".join(f"{k}={format_value(v)}" for k, v in values.items())
    return f"{index:03d} {text}".strip()[:200]


def export_settings(record: SearchRecord) -> dict[str, Any]:
    """The flat settings every exporter records: dataset, epochs, subset, batch size,
    budget, seed, validation fraction, halving and seeds per config (those known)."""
    settings = record.settings
    budget = settings.get("budget") if isinstance(settings.get("budget"), Mapping) else {}
    return {k: v for k, v in {
        "dataset": settings.get("dataset"), "n_epochs": settings.get("n_epochs"),
        "subset_size": settings.get("subset_size"), "batch_size": settings.get("batch_size"),
        "max_params": budget.get("max_params"),
        "min_param_ratio": budget.get("min_param_ratio"), "seed": settings.get("seed"),
        "validation_fraction": settings.get("validation_fraction"),
        "halving": settings.get("halving"),
        "seeds_per_config": record.seeds_per_config}.items() if v is not None}
