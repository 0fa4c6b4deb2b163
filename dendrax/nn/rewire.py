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

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from dendrax.nn.layers import row_keys


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


def rewire(params, connectivity, opt_state, key: jax.Array, n_resample: jax.Array,
           in_dim: int, coords, connection_ok: jax.Array | None = None,
           layer: str = "dendrites"):
    """One resampling round of the dendritic layer named ``layer``.

    A pure function of (params, connectivity, optimiser state, key, n_resample); returns
    ``(params, connectivity, opt_state, n_accepted)``. Jit-able and vmappable. ``coords``
    are the layer's branch coordinates (:func:`dendrax.nn.layers.branch_coordinates`) and
    ``connection_ok`` its padding mask, if any.
    """
    kernel = params[layer]["branch_kernel"]
    index = connectivity[layer]["index"]
    draws = draw_rewiring(key, coords, kernel.shape[1], in_dim)
    kernel, index, swapped, accepted = apply_rewiring(kernel, index, draws, n_resample, in_dim,
                                                      connection_ok)

    params = {**params, layer: {**params[layer], "branch_kernel": kernel}}
    connectivity = {**connectivity, layer: {**connectivity[layer], "index": index}}
    keep = jax.tree_util.tree_map(jnp.ones_like, params)
    keep[layer]["branch_kernel"] = (~swapped).astype(kernel.dtype)
    return params, connectivity, reset_adam_moments(opt_state, keep), accepted


def n_resample_for(k: int, percentage_resample: float, enabled: bool) -> int:
    """Connections replaced per branch and round: int(k × percentage), 0 when off."""
    return int(k * percentage_resample) if enabled else 0
