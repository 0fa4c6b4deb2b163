"""The configuration names under their search-side path, for code written against it.

Configurations live in :mod:`dendrax.config`, shapes and counts in :mod:`dendrax.spec`,
the argument checks in :mod:`dendrax.checks`; this module re-exports them and loads
nothing else (no searcher, no log, no JAX).
"""

from dendrax.checks import MAX_SEED, check_int, check_number, shown
from dendrax.config import INTEGER_FIELDS, ModelConfig, count_params
from dendrax.errors import ConfigError
from dendrax.spec import (ARCHITECTURES, STRATEGIES, ModelShape, ModelSizes,
                          count_shape_params)

__all__ = ["ARCHITECTURES", "STRATEGIES", "INTEGER_FIELDS", "MAX_SEED", "ConfigError",
           "ModelConfig", "ModelShape", "ModelSizes", "count_params", "count_shape_params",
           "check_int", "check_number", "shown"]
