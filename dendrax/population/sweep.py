"""The sweep: every config of a search trained bucket by bucket, one outcome per config.

``train_configs`` plans the buckets (dendrax.plan), then trains each one with the
runner (dendrax.population.runner), or, with ``settings.halving_eta``, hands the whole
sweep to successive halving (dendrax.population.halving).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import jax

from dendrax.nn.lowerings import matmul_settings, resolve_lowering
from dendrax.population.compile import prefetch_program
from dendrax.population.halving import mean_epochs, train_with_halving
from dendrax.population.memory import check_models_fit
from dendrax.population.runner import train_bucket
from dendrax.config import ModelConfig
from dendrax.errors import ConfigError
from dendrax.plan import Bucket, plan_buckets
from dendrax.spec import TrainSettings, TrialOutcome


def plan_configs(configs: Sequence[ModelConfig], data, settings: TrainSettings) -> list[Bucket]:
    """The buckets :func:`train_configs` will train, under ``settings.padding``, costed for
    this backend, the lowering it resolves to, and the epochs a model trains on average
    (under successive halving most stop at the first rung)."""
    backend = "cpu" if jax.default_backend() == "cpu" else "gpu"
    epochs = settings.n_epochs if settings.halving_eta is None else mean_epochs(
        settings.n_epochs, settings.halving_eta, settings.halving_min_epochs)
    return plan_buckets(configs, data.in_dim, settings.padding, n_classes=data.n_classes,
                        samples=epochs * len(data.x_train), backend=backend,
                        lowering=resolve_lowering(settings.lowering,
                                                  matmul_dtype=settings.matmul_dtype))


def train_configs(configs: Sequence[ModelConfig], data, settings: TrainSettings = TrainSettings(),
                  *, progress=None, on_bucket_done=None, on_plan=None,
                  log=print, replay=None) -> list[TrialOutcome]:
    """Train every config on ``data``; one outcome per config, in input order (the
    :class:`dendrax.spec.Trainer` contract).

    Configs are grouped into buckets (:func:`plan_configs`), the plan is handed to
    ``on_plan``, and each bucket trains as one vmapped population;
    ``on_bucket_done(outcomes)`` is called as each bucket finishes. ``replay`` (successive
    halving only): models of the sweep that already finished, {place: outcome}, ranked
    at every rung with the configs (dendrax.population.halving).
    """
    settings.validate()
    for config in configs:
        config.validate(data.in_dim)
    matmul_settings(settings.matmul_dtype)  # "float64" needs x64 mode: say so before compiling
    if settings.batch_size > len(data.x_train):
        raise ConfigError(f"batch_size={settings.batch_size} is larger than the "
                          f"{len(data.x_train):,} training examples; choose batch_size <= "
                          f"{len(data.x_train)}")
    # Decided once, here: what the plan costs, the memory check and every program run
    # (a lowering that cannot run here warns once and becomes the one that does).
    settings = dataclasses.replace(settings, lowering=resolve_lowering(
        settings.lowering, matmul_dtype=settings.matmul_dtype))
    plan = plan_configs(configs, data, settings)
    check_models_fit([bucket.shape for bucket in plan], data, settings)  # before compiling
    if on_plan is not None:
        on_plan(plan)
    if settings.halving_eta is not None:
        return train_with_halving(configs, plan, data, settings, progress=progress,
                                  on_bucket_done=on_bucket_done, log=log, replay=replay)
    results: list[Optional[TrialOutcome]] = [None] * len(configs)
    members = [[configs[i] for i in bucket.members] for bucket in plan]
    for b, bucket in enumerate(plan):
        # Queue this bucket's program, then the next one's: the next compiles on the
        # compile thread while this bucket trains.
        for ahead in range(b, min(b + 2, len(plan)) if settings.compile_ahead else b):
            prefetch_program(members[ahead], data, settings, shape=plan[ahead].shape)
        outcomes = train_bucket(members[b], data, settings, shape=bucket.shape,
                                overhead=bucket.overhead, progress=progress, log=log)
        for i, outcome in zip(bucket.members, outcomes):
            results[i] = outcome
        if on_bucket_done is not None:
            on_bucket_done(outcomes)
    return results  # type: ignore[return-value]
