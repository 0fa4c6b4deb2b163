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
- ``"auto"``: a greedy merge of exact buckets. Starting from one bucket per shape, it
  repeatedly merges the two buckets of one structure (:attr:`ModelShape.structure`)
  whose merge lowers the estimate most (one program fewer to compile, against the padded
  run time added), until no merge lowers it; so its estimate is never above the exact
  plan's. A random search over a wide space, where nearly every draw has its own shape,
  then trains in tens of programs instead of hundreds.

The estimate (:func:`estimated_seconds`) is compile time per program plus each member's
padded run time, under the :class:`CostModel` of the backend and lowering
(:data:`COST_MODELS`). Its figures are measured; see docs/benchmarks.md ("Cost model of
the bucket planner").
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from typing import Callable, Sequence

from dendrax.config import ModelConfig
from dendrax.spec import PADDINGS, ModelShape, ModelSizes, count_shape_params, lowering_named


@dataclasses.dataclass(frozen=True)
class CostModel:
    """Seconds the planner expects: ``compile`` per program, and per member and training
    sample ``member + connection·C + unit·B + linear·L``, where C is the synapses the
    lowering computes (:meth:`dendrax.spec.Lowering.synapses`: branches × k, or branches ×
    in_dim for "dense"), B the branches and L the other parameters (soma and Linear layers,
    XLA's GEMMs)."""

    compile: float  # one population program (init and epoch), cold
    member: float  # per model whatever its size: its own batch, optimiser, evaluation
    connection: float
    unit: float
    linear: float


LINEAR_CPU = 1.6e-10  # XLA's vmapped GEMMs on the CPU, per parameter and sample

# Measured rates per (backend kind, resolved lowering of dendrax.spec.LOWERINGS); a pair
# missing here uses its backend's "dense" row, and a backend missing here the "gpu" one.
COST_MODELS = {
    ("cpu", "sparse"): CostModel(compile=5.0, member=1.45e-6, connection=2.3e-10,
                                 unit=4.9e-9, linear=LINEAR_CPU),
    ("cpu", "dense"): CostModel(compile=5.0, member=1.45e-6, connection=3.3e-11,
                                unit=4.9e-9, linear=LINEAR_CPU),
    ("gpu", "dense"): CostModel(compile=6.0, member=0.0, connection=2e-13, unit=0.0,
                                linear=2e-13),
}


def cost_model(backend: str, lowering: str = "dense") -> CostModel:
    """The :class:`CostModel` of a backend kind ("cpu", "gpu", "tpu") and a resolved
    lowering ("dense", "sparse", "gather")."""
    return COST_MODELS.get((backend, lowering)) or COST_MODELS.get((backend, "dense")) \
        or COST_MODELS[("gpu", "dense")]


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


def cost_terms(shape: ModelShape, in_dim: int, n_classes: int = 10,
               lowering: str = "dense") -> tuple[int, int, int]:
    """What a member's run time scales with (:class:`CostModel`): the synapses the
    lowering computes (its entry of :data:`dendrax.spec.LOWERINGS` counts them), the
    branches, and the other parameters."""
    branches = shape.n_branches
    synapses = lowering_named(lowering).synapses(shape, in_dim)
    linear = count_shape_params(shape, n_classes) - branches * (shape.k + 1)
    return synapses, branches, linear


def model_seconds(shape: ModelShape, in_dim: int, n_classes: int, cost: CostModel,
                  lowering: str = "dense") -> float:
    """Expected run time of one member of this shape per training sample (:class:`CostModel`)."""
    synapses, branches, linear = cost_terms(shape, in_dim, n_classes, lowering)
    return (cost.member + cost.connection * synapses + cost.unit * branches
            + cost.linear * linear)


@dataclasses.dataclass(frozen=True)
class _Estimator:
    """The cost model of one plan: the sweep's data, samples, backend and lowering."""

    in_dim: int
    n_classes: int
    samples: float
    cost: CostModel
    lowering: str

    def member(self, shape: ModelShape) -> float:
        return model_seconds(shape, self.in_dim, self.n_classes, self.cost, self.lowering)

    def bucket(self, shape: ModelShape, n_members: int) -> float:
        """Compile plus run seconds of one bucket of ``n_members`` models of ``shape``."""
        return self.cost.compile + self.samples * n_members * self.member(shape)

    def buckets(self, groups: dict[ModelShape, list[int]], shapes: Sequence[ModelShape]
                ) -> list[Bucket]:
        out = []
        for shape, members in groups.items():
            own = sum(self.member(shapes[i]) for i in members)
            out.append(Bucket(shape=shape, members=tuple(members),
                              padded=any(shapes[i] != shape for i in members),
                              overhead=self.member(shape) * len(members) / own - 1.0))
        return out

    def seconds(self, buckets: Sequence[Bucket]) -> float:
        return sum(self.bucket(b.shape, len(b.members)) for b in buckets)


def estimated_seconds(buckets: Sequence[Bucket], in_dim: int, samples: float,
                      backend: str = "cpu", n_classes: int = 10,
                      lowering: str = "dense") -> float:
    """Compile plus padded run time of a sweep under :func:`cost_model`."""
    return _Estimator(in_dim, n_classes, samples, cost_model(backend, lowering),
                      lowering).seconds(buckets)


def _merge(groups: dict[ModelShape, list[int]], estimate: _Estimator
           ) -> dict[ModelShape, list[int]]:
    """Greedy agglomeration: merge the pair of buckets (of one structure) whose merge
    saves the most estimated seconds, until no merge saves any.

    A merged bucket's shape is the elementwise maximum of the two sizes. The pairs' savings
    sit in a heap; entries of buckets merged away are skipped when popped, so the whole
    merge costs O(n² log n) for n exact shapes.
    """
    alive: dict[int, tuple[ModelShape, list[int], float]] = {}
    by_structure: dict[tuple, list[int]] = {}
    for ident, (shape, members) in enumerate(groups.items()):
        alive[ident] = (shape, members, estimate.bucket(shape, len(members)))
        by_structure.setdefault(shape.structure, []).append(ident)
    heap: list[tuple[float, int, int, ModelShape]] = []

    def push(a: int, b: int) -> None:
        shape_a, members_a, cost_a = alive[a]
        shape_b, members_b, cost_b = alive[b]
        shape = shape_a.with_sizes(ModelSizes(*map(max, shape_a.sizes, shape_b.sizes)))
        saved = cost_a + cost_b - estimate.bucket(shape, len(members_a) + len(members_b))
        if saved > 0:
            heapq.heappush(heap, (-saved, a, b, shape))

    for idents in by_structure.values():
        for a, b in itertools.combinations(idents, 2):
            push(a, b)
    next_ident = len(alive)
    while heap:
        _, a, b, shape = heapq.heappop(heap)
        if a not in alive or b not in alive:
            continue
        members = sorted(alive.pop(a)[1] + alive.pop(b)[1])
        alive[next_ident] = (shape, members, estimate.bucket(shape, len(members)))
        structure = by_structure[shape.structure]
        structure[:] = [i for i in structure if i in alive]
        for other in structure:
            if other != next_ident:
                push(other, next_ident)
        structure.append(next_ident)
        next_ident += 1
    merged = sorted(alive.values(), key=lambda item: item[1][0])  # by first member
    return {shape: members for shape, members, _ in merged}


def plan_buckets(configs: Sequence[ModelConfig], in_dim: int, policy: str = "auto", *,
                 n_classes: int = 10, samples: float = 15 * 54000,
                 backend: str = "cpu", lowering: str = "dense",
                 max_levels: int = 6) -> list[Bucket]:
    """Buckets for ``configs`` under ``policy``.

    ``samples`` is the training samples each model sees (epochs × training set; under
    successive halving, the mean over models), ``backend`` and ``lowering`` select the
    :class:`CostModel`.
    """
    if policy not in PADDINGS:
        raise ValueError(f"padding={policy!r}; choose one of {', '.join(PADDINGS)}")
    estimate = _Estimator(in_dim, n_classes, samples, cost_model(backend, lowering), lowering)
    shapes = [c.shape(in_dim) for c in configs]
    exact_groups = group_by_shape(configs, in_dim)
    exact = estimate.buckets(exact_groups, shapes)
    if policy == "exact" or not configs:
        return exact
    if policy == "pow2":
        def pow2(sizes: ModelSizes) -> ModelSizes:
            return ModelSizes(_pow2(sizes.n_neurons), _pow2(sizes.n_dendrites),
                              _pow2(sizes.k, in_dim), _pow2(sizes.hidden))
        return estimate.buckets(_assign(shapes, pow2), shapes)

    if policy == "auto":  # never worse than exact: each merge lowers the estimate
        return estimate.buckets(_merge(exact_groups, estimate), shapes)

    # "padded": a few levels per size, the plan with the least estimated time.
    columns = list(zip(*(s.sizes for s in shapes)))
    options = []
    for column in columns:
        present = [v for v in column if v]
        distinct = len(set(present)) or 1
        options.append(range(1, min(distinct, max_levels) + 1) if present else [1])
    best, best_cost = exact, math.inf
    for counts in itertools.product(*options):
        levels = [_levels([v for v in col if v] or [0], n) for col, n in zip(columns, counts)]

        def pad(sizes: ModelSizes, levels=levels) -> ModelSizes:
            return ModelSizes(*(_round_up(v, lv) for v, lv in zip(sizes, levels)))

        buckets = estimate.buckets(_assign(shapes, pad), shapes)
        cost = estimate.seconds(buckets)
        if cost < best_cost:
            best, best_cost = buckets, cost
    return best
