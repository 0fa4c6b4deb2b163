"""dendrax: population-parallel hyperparameter search for dendritic neural networks.

The original toolkit's API under the same names::

    from dendrax import HyperparameterSearcher
    searcher = HyperparameterSearcher(dataset="fashion-mnist", max_params=8000, n_epochs=15)
    searcher.grid_search({"n_neurons": [8, 10, 12], "n_dendrites": [4, 6, 8]})
    searcher.print_results(5)

Importing this package loads nothing but the error types; each name below is imported
on first use (PEP 562), so ``import dendrax.config`` or ``dendrax.spec`` stays small, and
JAX is loaded only when a search first trains.
"""

from __future__ import annotations

import importlib
from typing import Any

from dendrax.errors import ConfigError, DendraxError, ModelTooLargeError

__version__ = "0.1.0"

_LAZY = {
    "HyperparameterSearcher": "dendrax.search.searcher",
    "SearchResult": "dendrax.search.results",
    "ModelConfig": "dendrax.config",
    "count_params": "dendrax.config",
    "TrainSettings": "dendrax.spec",
    "TrialOutcome": "dendrax.spec",
}

__all__ = ["HyperparameterSearcher", "SearchResult", "ModelConfig", "DendraxError", "ConfigError",
           "ModelTooLargeError", "count_params", "TrainSettings", "TrialOutcome", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'dendrax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
