"""Pure-Python hyperparameter search: spaces, budget, buckets, log, results, searcher.

Nothing in this package imports JAX; the searcher is handed a trainer function (by default
``dendrax.population.train_configs``, imported only when a search first trains).
"""

from dendrax.search.plan import group_by_shape
from dendrax.search.budget import Budget, BudgetError, Rejection
from dendrax.search.log import LogError, SearchLog, read_log, trial_key
from dendrax.search.results import (SearchResult, SeedStats, format_results, load_results,
                                    pareto_front, pareto_records, rank_results, save_pareto,
                                    seed_stats, t_quantile)
from dendrax.search.searcher import HyperparameterSearcher, replicate_seed
from dendrax.search.spaces import (Choice, Fixed, GridDraw, IntRange, LogUniform, Uniform,
                                   expand_grid, grid_combination, grid_size,
                                   parse_distribution, parse_space, sample_grid, sample_space)

__all__ = [
    "HyperparameterSearcher", "SearchResult", "SeedStats",
    "Budget", "BudgetError", "Rejection",
    "LogError", "SearchLog", "read_log", "trial_key",
    "group_by_shape", "replicate_seed",
    "format_results", "load_results", "rank_results", "seed_stats", "t_quantile",
    "pareto_front", "pareto_records", "save_pareto",
    "Choice", "Fixed", "IntRange", "LogUniform", "Uniform",
    "GridDraw", "expand_grid", "grid_combination", "grid_size",
    "parse_distribution", "parse_space", "sample_grid", "sample_space",
]
