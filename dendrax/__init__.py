"""dendrax: population-parallel hyperparameter search for dendritic neural networks.

The original toolkit's API under the same names::

    from dendrax import HyperparameterSearcher
    searcher = HyperparameterSearcher(dataset="fashion-mnist", max_params=8000, n_epochs=15)
    searcher.grid_search({"n_neurons": [8, 10, 12], "n_dendrites": [4, 6, 8]})
    searcher.print_results(5)

Importing this package does not import JAX; the trainer loads it on first use.
"""

from dendrax.errors import DendraxError, ModelTooLargeError
from dendrax.search.config import ConfigError, ModelConfig, count_params
from dendrax.search import HyperparameterSearcher, SearchResult
from dendrax.search.trial import TrainSettings, TrialOutcome

__version__ = "0.1.0"

__all__ = ["HyperparameterSearcher", "SearchResult", "ModelConfig", "DendraxError", "ConfigError",
           "ModelTooLargeError",
           "count_params", "TrainSettings", "TrialOutcome", "__version__"]
