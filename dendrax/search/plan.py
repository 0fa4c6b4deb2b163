"""The bucket plan: which configs train together as one compiled population.

Pure Python (no JAX). The trainer makes the plan for its real backend
(dendrax.population.sweep.plan_configs, or a Ray worker), and the searcher shows and logs
that same plan.

- ``"exact"``: configs of identical shapes share a bucket, so nearly every trial of a
  random search gets its own compiled program.
- ``"padded"``: each size (neurons, dendrites, inputs per branch, hidden width) is rounded
  up to one of a few levels; the trainer masks the padding so that every member computes
  exactly its own model. The number of levels per size is chosen to minimise the
  estimated compile time plus padded compute time of the sweep at hand.
- ``"pow2"``: sizes rounded up to powers of two (a fixed, simple alternative).
- ``"auto"``: "padded" when its estimate beats "exact" (it falls back to exact itself).

The costs behind the estimate (:data:`COST_MODEL`) are measured figures; see
docs/benchmarks.md ("Cost model of the bucket planner").
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Callable, Sequence

from dendrax.search.config import ModelConfig, ModelShape, ModelSizes, count_shape_params

POLICIES = ("auto", "exact", "padded", "pow2")

# (seconds to compile one population program, dense-lowering FLOP/s) per backend kind.
COST_MODEL = {"cpu": (5.0, 1.2e11), "gpu": (6.0, 2e13), "tpu": (6.0, 2e13)}


def group_by_shape(configs: Sequence[ModelConfig], in_dim: int) -> dict[ModelShape, list[int]]:
    """Map each config's :class:`ModelShape` to the indices of its configs, in input order.

    Buckets appear in order of their first member, so the grouping is deterministic.
    """
    buckets: dict[ModelShape, list[int]] = {}
    for i, config in enumerate(configs):
        buckets.setdefault(config.shape(in_dim), []).append(i)
    return buckets


@dataclasses.dataclass(frozen=True)
class Bucket:
    """One compiled population: its (padded) shape, its members and the padding cost."""

    shape: ModelShape
    members: tuple[int, ...]
    padded: bool  # some member is smaller than ``shape`` and runs masked inside it
    overhead: float  # padded compute ÷ the members' own compute, minus 1

    @property
    def label(self) -> str:
        return self.shape.label


def model_flops(shape: ModelShape, in_dim: int, n_classes: int = 10) -> float:
    """Dense-lowering FLOPs of one training sample (forward + weight gradients)."""
    dense = shape.n_branches * in_dim
    rest = count_shape_params(shape, n_classes) - shape.n_branches * shape.k
    return 4.0 * (dense + rest)


def _levels(values: Sequence[int], n_levels: int) -> list[int]:
    """n_levels sizes taken at quantiles of the distinct values; the largest is always kept."""
    distinct = sorted(set(values))
    m = len(distinct)
    n_levels = min(n_levels, m)
    return sorted({distinct[math.ceil((i + 1) * m / n_levels) - 1] for i in range(n_levels)})


def _round_up(value, levels):
    if not value:  # 0: no soma, or no hidden layer: nothing to pad
        return value
    return next(level for level in levels if level >= value)


def _pow2(value, cap=None):
    if not value:
        return value
    up = 1 << (int(value) - 1).bit_length()
    return min(up, cap) if cap else up


def _assign(shapes: Sequence[ModelShape], pad: Callable[[ModelSizes], ModelSizes]
            ) -> dict[ModelShape, list[int]]:
    """Group configs by their shape with padded sizes."""
    groups: dict[ModelShape, list[int]] = {}
    for i, shape in enumerate(shapes):
        groups.setdefault(shape.with_sizes(pad(shape.sizes)), []).append(i)
    return groups


def _buckets_from(groups: dict[ModelShape, list[int]], shapes: Sequence[ModelShape],
                  in_dim: int, n_classes: int) -> list[Bucket]:
    buckets = []
    for shape, members in groups.items():
        own = sum(model_flops(shapes[i], in_dim, n_classes) for i in members)
        padded_cost = model_flops(shape, in_dim, n_classes) * len(members)
        buckets.append(Bucket(shape=shape, members=tuple(members),
                              padded=any(shapes[i] != shape for i in members),
                              overhead=padded_cost / own - 1.0))
    return buckets


def estimated_seconds(buckets: Sequence[Bucket], in_dim: int, samples: float,
                      backend: str = "cpu", n_classes: int = 10) -> float:
    """Compile plus padded compute time of a sweep under :data:`COST_MODEL`."""
    compile_s, flops_per_s = COST_MODEL.get(backend, COST_MODEL["gpu"])
    compute = sum(model_flops(b.shape, in_dim, n_classes) * len(b.members) for b in buckets)
    return len(buckets) * compile_s + compute * samples / flops_per_s


def plan_buckets(configs: Sequence[ModelConfig], in_dim: int, policy: str = "auto", *,
                 n_classes: int = 10, samples: float = 15 * 54000,
                 backend: str = "cpu", max_levels: int = 6) -> list[Bucket]:
    """Buckets for ``configs`` under ``policy``; ``samples`` = epochs × training samples."""
    if policy not in POLICIES:
        raise ValueError(f"padding={policy!r}; choose one of {', '.join(POLICIES)}")
    shapes = [c.shape(in_dim) for c in configs]
    exact = _buckets_from(group_by_shape(configs, in_dim), shapes, in_dim, n_classes)
    if policy == "exact" or not configs:
        return exact
    if policy == "pow2":
        def pow2(sizes: ModelSizes) -> ModelSizes:
            return ModelSizes(_pow2(sizes.n_neurons), _pow2(sizes.n_dendrites),
                              _pow2(sizes.k, in_dim), _pow2(sizes.hidden))
        return _buckets_from(_assign(shapes, pow2), shapes, in_dim, n_classes)

    # "padded" and "auto": try a few levels per size and keep the plan with the least
    # estimated time; "auto" also weighs the exact plan.
    columns = list(zip(*(s.sizes for s in shapes)))
    options = []
    for column in columns:
        present = [v for v in column if v]
        distinct = len(set(present)) or 1
        options.append(range(1, min(distinct, max_levels) + 1) if present else [1])
    best, best_cost = exact, math.inf
    if policy == "auto":
        best_cost = estimated_seconds(exact, in_dim, samples, backend, n_classes)
    for counts in itertools.product(*options):
        levels = [_levels([v for v in col if v] or [0], n) for col, n in zip(columns, counts)]

        def pad(sizes: ModelSizes, levels=levels) -> ModelSizes:
            return ModelSizes(*(_round_up(v, lv) for v, lv in zip(sizes, levels)))

        buckets = _buckets_from(_assign(shapes, pad), shapes, in_dim, n_classes)
        cost = estimated_seconds(buckets, in_dim, samples, backend, n_classes)
        if cost < best_cost:
            best, best_cost = buckets, cost
    return best
