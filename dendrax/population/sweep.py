"""The sweep: every config of a search trained bucket by bucket, one outcome per config.

``train_configs`` plans the buckets (dendrax.search.plan), then trains each one with the
runner (dendrax.population.runner), or, with ``settings.halving_eta``, hands the whole
sweep to successive halving (dendrax.population.halving).
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax

from dendrax.population.halving import train_with_halving
from dendrax.population.runner import check_models_fit, train_bucket
from dendrax.search.config import ConfigError, ModelConfig
from dendrax.search.plan import Bucket, plan_buckets
from dendrax.search.trial import TrainSettings, TrialOutcome


def plan_configs(configs: Sequence[ModelConfig], data, settings: TrainSettings) -> list[Bucket]:
    """The buckets :func:`train_configs` will train, under ``settings.padding``."""
    backend = "cpu" if jax.default_backend() == "cpu" else "gpu"
    return plan_buckets(configs, data.in_dim, settings.padding, n_classes=data.n_classes,
                        samples=settings.n_epochs * len(data.x_train), backend=backend)


def train_configs(configs: Sequence[ModelConfig], data, settings: TrainSettings = TrainSettings(),
                  *, progress=None, on_bucket_done=None, log=print) -> list[TrialOutcome]:
    """Train every config on ``data``; one outcome per config, in input order.

    Configs are grouped into buckets (by exact shape, or padded: ``settings.padding``,
    see :func:`dendrax.search.plan.plan_buckets`) and each bucket trains as one vmapped
    population; ``on_bucket_done(outcomes)`` is called as each bucket finishes.
    """
    settings.validate()
    for config in configs:
        config.validate(data.in_dim)
    if settings.batch_size > len(data.x_train):
        raise ConfigError(f"batch_size={settings.batch_size} is larger than the "
                          f"{len(data.x_train):,} training examples; choose batch_size <= "
                          f"{len(data.x_train)}")
    plan = plan_configs(configs, data, settings)
    check_models_fit([bucket.template for bucket in plan], data, settings)  # before compiling
    if settings.halving_eta is not None:
        return train_with_halving(configs, plan, data, settings, progress=progress,
                                  on_bucket_done=on_bucket_done, log=log)
    results: list[Optional[TrialOutcome]] = [None] * len(configs)
    for bucket in plan:
        indices = bucket.members
        outcomes = train_bucket([configs[i] for i in indices], data, settings,
                                template=bucket.template if bucket.padded else None,
                                overhead=bucket.overhead, progress=progress, log=log)
        for i, outcome in zip(indices, outcomes):
            results[i] = outcome
        if on_bucket_done is not None:
            on_bucket_done(outcomes)
    return results  # type: ignore[return-value]
