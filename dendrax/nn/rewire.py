"""Functional synaptic resampling (the original's rule, with fixed shapes).

One round, for every branch independently:

1. Select the ``n_resample`` connections with the smallest |w| (stable order, weakest
   first); ``n_resample = int(k × percentage_resample)`` is computed on the host.
2. The j-th weakest connection draws one candidate feature uniformly from [0, in_dim).
3. A draw is rejected, and its connection kept, if the feature is already connected to
   the branch (before this round), or if the same feature was drawn more than once for
   the branch this round (every copy is rejected).
4. Each accepted swap points the connection at the new feature with a fresh
   N(0, 2/in_dim) weight, and its Adam moments are reset to zero.

Every branch keeps exactly k distinct inputs. ``n_resample`` is a traced per-model
value (masking by rank, never by shape), so models with different percentages, or with
resampling off (``n_resample = 0``), share one compiled program.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from dendrax.nn.layers import branch_coordinates, padding_masks, row_keys
from dendrax.spec import ModelShape, ModelSizes


class Draws(NamedTuple):
    """Random draws for one round: entry [b, j] serves the j-th weakest connection of b."""

    candidates: jax.Array  # int32 (branches, k)
    fresh_weights: jax.Array  # float (branches, k), already scaled by sqrt(2 / in_dim)


def draw_rewiring(key: jax.Array, coords, k: int, in_dim: int) -> Draws:
    """Uniform candidate features and N(0, 2/in_dim) weights for every rank slot.

    Row b is keyed by the branch's logical coordinates ``coords[b]`` (see
    :func:`dendrax.nn.layers.row_keys`), so a padded model draws the same numbers.
    """
    keys = row_keys(key, coords)

    def row(key):
        cand_key, weight_key = jax.random.split(key)
        return (jax.random.randint(cand_key, (k,), 0, in_dim, dtype=jnp.int32),
                jax.random.normal(weight_key, (k,)))

    candidates, fresh = jax.vmap(row)(keys)
    return Draws(candidates, math.sqrt(2.0 / in_dim) * fresh)


def apply_rewiring(kernel: jax.Array, index: jax.Array, draws: Draws,
                   n_resample: jax.Array, in_dim: int, connection_ok: jax.Array | None = None):
    """Apply one round with fixed draws.

    ``connection_ok`` marks the real connections of a padded model (None: all are real);
    padded slots are never selected, never count as connected and never change.
    Returns ``(kernel, index, swapped, n_accepted)`` where ``swapped`` is a bool
    (branches, k) mask of the connections that now read a new feature.
    """
    branches, k = kernel.shape
    rows = jnp.arange(branches)[:, None]
    strength = jnp.abs(kernel)
    if connection_ok is not None:
        strength = jnp.where(connection_ok, strength, jnp.inf)
    order = jnp.argsort(strength, axis=1, stable=True)  # weakest real connections first
    active = jnp.arange(k)[None, :] < n_resample
    if connection_ok is not None:
        active &= jnp.any(connection_ok, axis=1, keepdims=True)  # padded branches: never

    cand = draws.candidates
    real = jnp.ones_like(index) if connection_ok is None else connection_ok.astype(jnp.int32)
    connected = jnp.zeros((branches, in_dim), jnp.int32).at[rows, index].add(real) > 0
    conflict = connected[rows, cand]
    drawn = jnp.zeros((branches, in_dim), jnp.int32).at[rows, cand].add(active.astype(jnp.int32))
    duplicate = drawn[rows, cand] > 1
    accept = active & ~conflict & ~duplicate

    # Move decisions from rank order back to connection positions.
    swapped = jnp.zeros((branches, k), bool).at[rows, order].set(accept)
    new_feature = jnp.zeros_like(index).at[rows, order].set(cand)
    new_weight = jnp.zeros_like(kernel).at[rows, order].set(draws.fresh_weights.astype(kernel.dtype))
    index = jnp.where(swapped, new_feature, index)
    kernel = jnp.where(swapped, new_weight, kernel)
    return kernel, index, swapped, jnp.sum(accept)


def reset_adam_moments(opt_state, keep):
    """Zero the Adam moments where ``keep`` (a params-shaped pytree of 0/1) is 0."""

    def reset(state):
        if isinstance(state, optax.ScaleByAdamState):
            mul = lambda m, k: m * k.astype(m.dtype)
            return state._replace(mu=jax.tree_util.tree_map(mul, state.mu, keep),
                                  nu=jax.tree_util.tree_map(mul, state.nu, keep))
        return state

    return jax.tree_util.tree_map(reset, opt_state,
                                  is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))


def dendritic_layers(params) -> list[str]:
    """Names of the dendritic layers of a model's params (those with a "branch_kernel")."""
    return sorted(name for name, layer in params.items()
                  if isinstance(layer, dict) and "branch_kernel" in layer)


@dataclasses.dataclass(frozen=True)
class SynapticResampling:
    """Prune and regrow as an updater: it owns the schedule, the padding masks, the reset
    of the optimiser's moments and the masking of rewired synapses' gradients, and covers
    every dendritic layer of a model.

    Each member resamples after every ``steps_to_resample`` optimiser steps when its
    ``n_resample`` is above 0 (both traced per member); one round applies the rule of
    the module docstring to each dendritic layer, the first keyed by ``key`` itself and
    layer i > 0 by ``fold_in(key, i)``. Every dendritic layer is laid out as ``shape``
    says (branch order of :func:`dendrax.nn.layers.branch_coordinates`).
    """

    shape: ModelShape  # the (padded) shape the layers were built with
    in_dim: int

    def is_due(self, step: jax.Array, n_resample: jax.Array,
               steps_to_resample: jax.Array) -> jax.Array:
        """Whether a member that has taken ``step`` optimiser steps rewires now: after
        every ``steps_to_resample`` steps (a period below 1 counts as 1), when its
        ``n_resample`` is above 0. The same rule as :func:`dendrax.spec.rewires_after`, on
        traced values (tests/test_rewire.py pins the two together)."""
        return (n_resample > 0) & (step % jnp.maximum(steps_to_resample, 1) == 0)

    def __call__(self, params, connectivity, opt_state, key: jax.Array, n_resample: jax.Array,
                 sizes: ModelSizes | None = None):
        """One round; returns ``(params, connectivity, opt_state, n_accepted)``.

        ``sizes`` are the member's own sizes inside a padded population (None: all real).
        """
        shape = self.shape
        coords = branch_coordinates(shape.n_neurons, shape.n_dendrites, shape.has_soma)
        connection_ok = padding_masks(shape, sizes).connection
        keep = jax.tree_util.tree_map(jnp.ones_like, params)
        params, connectivity = dict(params), dict(connectivity)
        accepted = jnp.int32(0)
        for i, name in enumerate(dendritic_layers(params)):
            layer, links = dict(params[name]), dict(connectivity[name])
            kernel = layer["branch_kernel"]
            if kernel.shape != (shape.n_branches, shape.k):
                raise ValueError(f"dendritic layer {name!r} has a {kernel.shape} kernel; "
                                 f"{shape.label} has ({shape.n_branches}, {shape.k})")
            draws = draw_rewiring(key if i == 0 else jax.random.fold_in(key, i), coords,
                                  shape.k, self.in_dim)
            layer["branch_kernel"], links["index"], swapped, n = apply_rewiring(
                kernel, links["index"], draws, n_resample, self.in_dim, connection_ok)
            params[name], connectivity[name] = layer, links
            keep[name] = {**keep[name], "branch_kernel": (~swapped).astype(kernel.dtype)}
            accepted = accepted + n
        return params, connectivity, reset_adam_moments(opt_state, keep), accepted

    def mask_gradients(self, grads, before, after):
        """Zero the branch-kernel gradient of every connection whose feature changed
        between the connectivity ``before`` and ``after`` a round, in every dendritic
        layer: a rewired synapse gets no gradient in the step of its round (its gradient
        was taken for the old feature), as in the original, where the new dense position
        had none."""
        grads = dict(grads)
        for name in dendritic_layers(grads):
            same = before[name]["index"] == after[name]["index"]
            kernel = grads[name]["branch_kernel"]
            grads[name] = {**grads[name], "branch_kernel": kernel * same.astype(kernel.dtype)}
        return grads


def n_resample_for(k: int, percentage_resample: float, enabled: bool) -> int:
    """Connections replaced per branch and round: int(k × percentage), 0 when off."""
    return int(k * percentage_resample) if enabled else 0
