"""HyperparameterSearcher's constructor arguments: the checks that run before anything slow
(data, log, training), and the limits on what a search may ask for.

Pure Python, no JAX: Ray is imported only for executor="ray", and only to build its
executor (which imports neither Ray nor JAX until it trains).
"""

from __future__ import annotations

import os
import types
from typing import Any, Mapping

from dendrax.checks import MAX_SEED, check_int, check_number
from dendrax.config import ModelConfig
from dendrax.errors import ConfigError
from dendrax.search.budget import Budget
from dendrax.search.results import RANK_BY
from dendrax.spec import TrainSettings

# Upper bounds that keep a typo from hanging the pure-Python planning: every seed and every
# random draw becomes a model to validate, plan and train.
MAX_SEEDS_PER_CONFIG = 10_000
MAX_RANDOM_TRIALS = 1_000_000
# A grid search without max_trials trains every combination; beyond this many it refuses.
MAX_FULL_GRID = 1_000_000
MAX_DRAWS_PER_TRIAL = 100  # fill_budget gives up after this many draws per wanted config


def check_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Check HyperparameterSearcher's arguments (given by name), each raising a ConfigError
    that names it; returns the budget, the trainer's settings, the trainer (a RayExecutor
    for executor="ray") and the numbers as checked (subset_size, seed, n_classes,
    seeds_per_config, validation_fraction)."""
    a = types.SimpleNamespace(**arguments)
    if not isinstance(a.dataset, str) or not a.dataset:
        raise ConfigError(f"dataset={a.dataset!r} must be a dataset name")
    checked: dict[str, Any] = {
        "subset_size": check_int("subset_size", a.subset_size, 1, allow_none=True),
        "budget": Budget(a.max_params, a.min_param_ratio),
        "seed": check_int("seed", a.seed, 0, MAX_SEED)}
    # lr, weight_decay, seed: the defaults of every trial, so ModelConfig's own checks.
    ModelConfig(lr=a.lr, weight_decay=a.weight_decay, seed=checked["seed"]).validate()
    checked["n_classes"] = check_int("n_classes", a.n_classes, 2, allow_none=True)
    checked["seeds_per_config"] = check_int("seeds_per_config", a.seeds_per_config, 1,
                                            MAX_SEEDS_PER_CONFIG)
    checked["validation_fraction"] = check_number(
        "validation_fraction", a.validation_fraction, 0.0, 1.0, open_low=True, open_high=True)
    for name in ("verbose", "resume"):
        if not isinstance(getattr(a, name), bool):
            raise ConfigError(f"{name}={getattr(a, name)!r} must be True or False")
    for name in ("data_dir", "log_path", "ray_address"):
        value = getattr(a, name)
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise ConfigError(f"{name}={value!r} must be None or a path string")
    # n_epochs, batch_size, data_order, lowering, chunk_size: the trainer's own checks.
    settings = TrainSettings(n_epochs=a.n_epochs, batch_size=a.batch_size,
                             data_order=a.data_order, data_seed=checked["seed"],
                             lowering=a.lowering, chunk_size=a.chunk_size,
                             matmul_dtype=a.matmul_dtype, padding=a.padding,
                             halving_eta=a.halving_eta,
                             halving_min_epochs=a.halving_min_epochs, devices=a.devices)
    settings.validate()
    checked["settings"] = settings
    if a.rank_by not in RANK_BY:
        raise ConfigError(f"rank_by={a.rank_by!r}; choose one of {', '.join(RANK_BY)}")
    if a.resume and a.log_path is None:
        raise ConfigError("resume=True needs a log_path to resume from")
    if a.trainer is not None and not callable(a.trainer):
        raise ConfigError(f"trainer={a.trainer!r} must be a function like "
                          f"dendrax.population.train_configs")
    if a.executor not in ("local", "ray"):
        raise ConfigError(f"executor={a.executor!r}; choose local or ray")
    if a.executor == "ray" and a.trainer is not None:
        raise ConfigError("pass either trainer= or executor='ray', not both")
    if a.ray_address is not None and a.executor != "ray":
        raise ConfigError(f"ray_address={a.ray_address!r} needs executor='ray'")
    checked["trainer"] = a.trainer
    if a.executor == "ray":
        from dendrax.search.executors import RayExecutor, ray_missing  # neither Ray nor JAX yet

        if ray_missing():
            raise ConfigError("executor='ray' needs Ray: pip install 'dendrax[ray]'")
        checked["trainer"] = RayExecutor(address=a.ray_address)
    return checked
