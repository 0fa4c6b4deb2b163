"""Pure-Python hyperparameter search: spaces, budget, log, results, the record of a search,
the search call's pipeline, the searcher.

Nothing in this package imports JAX; the searcher is handed a trainer function (by default
``dendrax.population.train_configs``, imported only when a search first trains). Each name
below is imported on first use (PEP 562), so importing one module of the package (say
``dendrax.search.spaces``) does not load the searcher, the log or the results.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "dendrax.search.searcher": ("HyperparameterSearcher",),
    "dendrax.search.pipeline": ("SearchCall", "replicate_seed"),
    "dendrax.search.record": ("SearchRecord", "read_search"),
    "dendrax.search.results": ("SearchResult", "SeedStats", "load_results", "rank_results",
                               "seed_stats", "t_quantile", "pareto_front", "pareto_records",
                               "pareto_document", "write_json", "write_atomic",
                               "check_output", "OutputError"),
    "dendrax.search.table": ("format_results",),
    "dendrax.search.budget": ("Budget", "BudgetError", "Rejection"),
    "dendrax.search.log": ("LogError", "SearchLog", "read_log", "trial_key"),
    "dendrax.plan": ("group_by_shape",),
    "dendrax.search.spaces": ("Choice", "Fixed", "IntRange", "LogUniform", "Uniform",
                              "GridDraw", "expand_grid", "grid_combination", "grid_size",
                              "parse_distribution", "parse_space", "sample_grid",
                              "sample_space"),
}
_LAZY = {name: module for module, names in _HOMES.items() for name in names}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dendrax.search' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
