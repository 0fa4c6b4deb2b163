"""Shape buckets: which configs train together as one compiled population.

Pure Python (no JAX), shared by the trainer and the searcher so that both agree.

- ``"exact"``: configs of identical shapes share a bucket, so nearly every trial of a
  random search gets its own compiled program.
- ``"padded"``: each size (neurons, dendrites, inputs per branch, hidden width) is rounded
  up to one of a few levels; the trainer masks the padding so that every member computes
  exactly its own model. The number of levels per size is chosen to minimise the
  estimated compile time plus padded compute time of the sweep at hand.
- ``"pow2"``: sizes rounded up to powers of two (a fixed, simple alternative).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Optional, Sequence

from dendrax.search.config import ModelConfig, count_params

POLICIES = ("exact", "padded", "pow2")

# Rough costs used to choose padding levels: seconds to compile one population program,
# and dense-lowering FLOP/s. The CPU figures are this project's 2-core measurements; the
# accelerator ones are conservative H100/H200 figures (docs/benchmarks.md).
COST_MODEL = {"cpu": (8.0, 1.2e11), "gpu": (3.0, 2e13), "tpu": (3.0, 2e13)}


def group_by_shape(configs: Sequence[ModelConfig], in_dim: int) -> dict[tuple, list[int]]:
    """Map each ``config.shape_key(in_dim)`` to the indices of its configs, in input order.

    Buckets appear in order of their first member, so the grouping is deterministic.
    """
    buckets: dict[tuple, list[int]] = {}
    for i, config in enumerate(configs):
        buckets.setdefault(config.shape_key(in_dim), []).append(i)
    return buckets


def shape_label(key: tuple) -> str:
    """A short readable name for a shape key, e.g. "dendritic_simple|soma|n12|d6|k96|random"."""
    if len(key) != 7:  # a key layout this function does not know: still readable
        return "|".join(str(part) for part in key)
    architecture, has_soma, n_neurons, n_dendrites, k, hidden, strategy = key
    parts = [architecture, "soma" if has_soma else "nosoma"]
    if has_soma:
        parts.append(f"n{n_neurons}")
    parts += [f"d{n_dendrites}", f"k{k}"]
    if hidden is not None:
        parts.append(f"h{hidden}")
    parts.append(strategy)
    return "|".join(parts)


@dataclasses.dataclass(frozen=True)
class Bucket:
    """One compiled population: its (padded) shape, its members and the padding cost."""

    key: tuple
    members: tuple[int, ...]
    template: ModelConfig  # a config with the bucket's (padded) sizes
    padded: bool
    overhead: float  # padded compute ÷ the members' own compute, minus 1

    @property
    def label(self) -> str:
        return shape_label(self.key)


def _sizes(config: ModelConfig, in_dim: int) -> tuple[int, int, int, Optional[int]]:
    _, _, neurons, dendrites, k, hidden, _ = config.shape_key(in_dim)
    return neurons, dendrites, k, hidden


def padded_template(config: ModelConfig, sizes: tuple) -> ModelConfig:
    """``config`` with its shape sizes replaced by (neurons, dendrites, k, hidden)."""
    neurons, dendrites, k, hidden = sizes
    if config.architecture == "soma_disabled":
        return config.replace(n_neurons=hidden, n_dendrites=dendrites, n_dendrite_inputs=k)
    changes = dict(n_dendrites=dendrites, n_dendrite_inputs=k)
    if config.has_soma:
        changes["n_neurons"] = neurons
    if config.architecture == "dendritic_with_hidden":
        changes["hidden_dim"] = hidden
    return config.replace(**changes)


def model_flops(config: ModelConfig, in_dim: int, n_classes: int = 10) -> float:
    """Dense-lowering FLOPs of one training sample (forward + weight gradients)."""
    dense = config.n_branches * in_dim
    rest = count_params(config, in_dim, n_classes) - config.n_branches * config.inputs_per_branch(in_dim)
    return 4.0 * (dense + rest)


def _levels(values: Sequence[int], n_levels: int) -> list[int]:
    """n_levels sizes taken at quantiles of the distinct values; the largest is always kept."""
    distinct = sorted(set(values))
    m = len(distinct)
    n_levels = min(n_levels, m)
    return sorted({distinct[math.ceil((i + 1) * m / n_levels) - 1] for i in range(n_levels)})


def _round_up(value, levels):
    if not value:  # None (no hidden layer) or 0 (no soma): nothing to pad
        return value
    return next(level for level in levels if level >= value)


def _pow2(value, cap=None):
    if value is None or value == 0:
        return value
    up = 1 << (int(value) - 1).bit_length()
    return min(up, cap) if cap else up


def _assign(configs, in_dim, pad_fn):
    """Group configs by (exact key parts, padded sizes)."""
    groups: dict[tuple, list[int]] = {}
    for i, config in enumerate(configs):
        arch, soma, _, _, _, _, strategy = config.shape_key(in_dim)
        sizes = pad_fn(_sizes(config, in_dim), config)
        groups.setdefault((arch, soma, *sizes, strategy), []).append(i)
    return groups


def _buckets_from(groups, configs, in_dim, n_classes) -> list[Bucket]:
    buckets = []
    for key, members in groups.items():
        first = configs[members[0]]
        template = padded_template(first, key[2:6])
        own = sum(model_flops(configs[i], in_dim, n_classes) for i in members)
        padded_cost = model_flops(template, in_dim, n_classes) * len(members)
        padded = any(configs[i].shape_key(in_dim) != key for i in members)
        buckets.append(Bucket(key=key, members=tuple(members), template=template,
                              padded=padded, overhead=padded_cost / own - 1.0))
    return buckets


def estimated_seconds(buckets: Sequence[Bucket], in_dim: int, samples: float,
                      backend: str = "cpu", n_classes: int = 10) -> float:
    """Compile plus padded compute time of a sweep under :data:`COST_MODEL`."""
    compile_s, flops_per_s = COST_MODEL.get(backend, COST_MODEL["gpu"])
    compute = sum(model_flops(b.template, in_dim, n_classes) * len(b.members) for b in buckets)
    return len(buckets) * compile_s + compute * samples / flops_per_s


def plan_buckets(configs: Sequence[ModelConfig], in_dim: int, policy: str = "exact", *,
                 n_classes: int = 10, samples: float = 15 * 54000,
                 backend: str = "cpu", max_levels: int = 6) -> list[Bucket]:
    """Buckets for ``configs`` under ``policy``; ``samples`` = epochs × training samples."""
    if policy not in POLICIES:
        raise ValueError(f"padding={policy!r}; choose one of {', '.join(POLICIES)}")
    configs = list(configs)
    if policy == "exact" or not configs:
        return _buckets_from(group_by_shape(configs, in_dim), configs, in_dim, n_classes)
    if policy == "pow2":
        def pow2(sizes, config):
            n, d, k, h = sizes
            return (_pow2(n), _pow2(d), _pow2(k, in_dim), _pow2(h))
        return _buckets_from(_assign(configs, in_dim, pow2), configs, in_dim, n_classes)

    # "padded": try a few levels per size; keep the plan with the least estimated time.
    sizes = [_sizes(c, in_dim) for c in configs]
    columns = list(zip(*sizes))
    options = []
    for column in columns:
        present = [v for v in column if v]
        distinct = len(set(present)) or 1
        options.append(range(1, min(distinct, max_levels) + 1) if present else [1])
    best, best_cost = None, math.inf
    for counts in itertools.product(*options):
        levels = [_levels([v for v in col if v] or [0], n)
                  for col, n in zip(columns, counts)]

        def pad(s, config, levels=levels):
            return tuple(_round_up(v, lv) for v, lv in zip(s, levels))

        buckets = _buckets_from(_assign(configs, in_dim, pad), configs, in_dim, n_classes)
        cost = estimated_seconds(buckets, in_dim, samples, backend, n_classes)
        if cost < best_cost:
            best, best_cost = buckets, cost
    exact = _buckets_from(group_by_shape(configs, in_dim), configs, in_dim, n_classes)
    if estimated_seconds(exact, in_dim, samples, backend, n_classes) <= best_cost:
        return exact
    return best
