"""The dendritic layer (Flax) and its connectivity initialisers.

A layer has ``branches`` dendritic branches; branch ``b`` reads the k input features
``index[b]`` (distinct), so its pre-activation is ``w[b] · x[index[b]] + bias[b]``.
With a soma, branch ``n * n_dendrites + d`` is dendrite ``d`` of neuron ``n`` and

    soma[n] = LeakyReLU(Σ_d soma_w[n, d] · LeakyReLU(branch[n, d]) + soma_b[n])

(the original's block-diagonal soma, stored compactly as an (n_neurons, n_dendrites)
matrix). Without a soma the layer outputs the ``n_dendrites`` branch activations.

Connectivity is an int32 array ``index`` of shape (branches, k) in the variable
collection ``"connectivity"``, never in ``"params"``, so optimisers never see it. How the
branch contraction is computed (its lowering) is dendrax.nn.lowerings.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dendrax.nn.lowerings import sparse_branch_matmul
from dendrax.spec import ModelShape, ModelSizes

NEGATIVE_SLOPE = 0.1


def leaky_relu(x: jax.Array) -> jax.Array:
    """LeakyReLU with the original's slope of 0.1."""
    return jnp.where(x >= 0, x, NEGATIVE_SLOPE * x)


# ---- randomness keyed by logical position --------------------------------------------
#
# Every random draw of a row (a branch, a soma, an input unit) comes from a key folded from
# that row's *logical* coordinates, and each row draws a 1-D vector. With JAX's
# partitionable threefry (the default) a 1-D draw of length K starts with the draw of
# length k < K, so a model padded to larger shapes (dendrax.plan) gets exactly the same
# numbers as the same model built at its own size.

def branch_coordinates(n_neurons: int, n_dendrites: int, soma: bool) -> np.ndarray:
    """(branches, 2) int32 logical coordinates (neuron, dendrite); neuron 0 without soma."""
    if soma:
        neuron, dendrite = np.divmod(np.arange(n_neurons * n_dendrites), n_dendrites)
    else:
        neuron, dendrite = np.zeros(n_dendrites, int), np.arange(n_dendrites)
    return np.stack([neuron, dendrite], axis=1).astype(np.int32)


def row_keys(key: jax.Array, coords) -> jax.Array:
    """One key per row, folded from the row's coordinates (an int array (rows, c))."""
    coords = jnp.asarray(coords, jnp.int32)

    def fold(c):
        k = key
        for i in range(coords.shape[1]):
            k = jax.random.fold_in(k, c[i])
        return k

    return jax.vmap(fold)(coords)


def normal_rows(key: jax.Array, coords, width: int, std) -> jax.Array:
    """A (rows, width) matrix of N(0, std²) draws, row r keyed by ``coords[r]``."""
    return std * jax.vmap(lambda k: jax.random.normal(k, (width,)))(row_keys(key, coords))


# ---- connectivity ------------------------------------------------------------------

def random_connectivity(key: jax.Array, coords, k: int, in_dim: int) -> jax.Array:
    """k distinct features per branch, uniformly without replacement."""
    # The k largest of in_dim iid uniforms form a uniform k-subset; top_k is sorted, so
    # the first k' < k of them are the k'-subset drawn from the same key.
    def row(key):
        return jax.lax.top_k(jax.random.uniform(key, (in_dim,)), k)[1]

    return jax.vmap(row)(row_keys(key, coords)).astype(jnp.int32)


def full_connectivity(branches: int, in_dim: int) -> jax.Array:
    """Every branch reads every feature (k = in_dim)."""
    return jnp.broadcast_to(jnp.arange(in_dim, dtype=jnp.int32), (branches, in_dim))


def local_receptive_field_connectivity(key: jax.Array, coords, k: int,
                                       image_shape: Sequence[int], k_used=None) -> jax.Array:
    """k distinct pixels around a random centre per branch.

    The centre pixel itself is the first connection, as in the original; then offsets are
    Gaussian with std = sqrt(k), rounded and clipped to the image, and drawn until k
    distinct pixels are found. Multi-channel images draw the channel of each connection
    (the centre's too) uniformly (features are laid out H, W, C). If a branch has not filled its
    k slots after 64·k draws (k close to the image size), the rest are filled with
    uniformly drawn unused features, so the result always has k distinct features.
    ``k_used`` (traced, ≤ k) is the model's own k when the array is padded to k slots.
    """
    height, width, channels = (tuple(image_shape) + (1,))[:3]
    in_dim = height * width * channels
    if k > in_dim:
        raise ValueError(f"n_dendrite_inputs={k} exceeds the {in_dim} pixels of a "
                         f"{height}×{width}×{channels} image")
    k_used = jnp.int32(k) if k_used is None else jnp.asarray(k_used, jnp.int32)
    std = jnp.sqrt(k_used.astype(jnp.float32))
    max_draws = 64 * k_used

    def one_branch(branch_key):
        centre_key, loop_key, fill_key = jax.random.split(branch_key, 3)
        centre = jax.random.randint(centre_key, (2,), 0, jnp.array([height, width]))
        centre_channel = jax.random.randint(jax.random.fold_in(centre_key, 1), (), 0, channels)
        first = ((centre[0] * width + centre[1]) * channels + centre_channel).astype(jnp.int32)

        def draw(state):
            taken, index, count, i = state
            k_off, k_ch = jax.random.split(jax.random.fold_in(loop_key, i))
            offset = jnp.round(std * jax.random.normal(k_off, (2,))).astype(jnp.int32)
            row = jnp.clip(centre[0] + offset[0], 0, height - 1)
            col = jnp.clip(centre[1] + offset[1], 0, width - 1)
            channel = jax.random.randint(k_ch, (), 0, channels)
            feature = (row * width + col) * channels + channel
            new = ~taken[feature]
            index = jnp.where(new, index.at[count].set(feature), index)
            return taken.at[feature].set(True), index, count + new, i + 1

        def more(state):
            return (state[2] < k_used) & (state[3] < max_draws)

        init = (jnp.zeros(in_dim, bool).at[first].set(True),
                jnp.zeros(k, jnp.int32).at[0].set(first), jnp.int32(1), jnp.int32(0))
        taken, index, count, _ = jax.lax.while_loop(more, draw, init)
        # Fallback fill: unused features ranked by a random score, taken in order.
        scores = jnp.where(taken, -1.0, jax.random.uniform(fill_key, (in_dim,)))
        spare = jax.lax.top_k(scores, k)[1].astype(jnp.int32)
        slot = jnp.arange(k)
        return jnp.where(slot < count, index, spare[jnp.clip(slot - count, 0, k - 1)])

    return jax.vmap(one_branch)(row_keys(key, coords))


def init_connectivity(key: jax.Array, strategy: str, coords, k: int, in_dim: int,
                      image_shape: Sequence[int], k_used=None) -> jax.Array:
    """The (branches, k) int32 index array for one of the three strategies.

    ``coords`` are the branches' logical coordinates (an int (branches, c) array, or just
    the number of branches).
    """
    if isinstance(coords, int):
        coords = np.arange(coords, dtype=np.int32)[:, None]
    branches = len(coords)
    if strategy == "random":
        return random_connectivity(key, coords, k, in_dim)
    if strategy == "local-receptive-fields":
        if math.prod(image_shape) != in_dim:
            raise ValueError(f"local-receptive-fields needs image_shape matching the input: "
                             f"{tuple(image_shape)} has {math.prod(image_shape)} features, "
                             f"the input has {in_dim}")
        return local_receptive_field_connectivity(key, coords, k, image_shape, k_used)
    if strategy == "fully-connected":
        return full_connectivity(branches, in_dim)
    raise ValueError(f"unknown strategy {strategy!r}")


class PaddingMasks(NamedTuple):
    """Which neurons, branches, connections and soma weights a model really has (None
    when it has all of them), with its own k and branch count."""

    neuron: Any
    branch: Any
    connection: Any
    soma: Any
    k_used: Any
    branches_used: Any


def padding_masks(shape: ModelShape, sizes: ModelSizes | None) -> PaddingMasks:
    """Masks of a model of ``sizes`` (ints or traced scalars) inside a layer of ``shape``
    (branch order as :func:`branch_coordinates`); no masks when ``sizes`` is None."""
    if sizes is None:
        return PaddingMasks(None, None, None, None, shape.k, shape.n_branches)
    coords = branch_coordinates(shape.n_neurons, shape.n_dendrites, shape.has_soma)
    neuron_ok = jnp.arange(shape.n_neurons) < sizes.n_neurons
    dendrite_ok = jnp.arange(shape.n_dendrites) < sizes.n_dendrites
    branch_ok = dendrite_ok[coords[:, 1]]
    if shape.has_soma:
        branch_ok &= neuron_ok[coords[:, 0]]
    conn_ok = branch_ok[:, None] & (jnp.arange(shape.k) < sizes.k)[None, :]
    soma_ok = neuron_ok[:, None] & dendrite_ok[None, :]
    branches_used = sizes.n_neurons * sizes.n_dendrites if shape.has_soma else sizes.n_dendrites
    return PaddingMasks(neuron_ok, branch_ok, conn_ok, soma_ok, sizes.k, branches_used)


def masked_normal_rows(coords, std, mask):
    """Initialiser: :func:`normal_rows` keyed by ``coords``, zero where ``mask`` is False."""

    def init(key, shape, dtype=jnp.float32):
        values = normal_rows(key, coords, shape[1], std).astype(dtype)
        return values if mask is None else jnp.where(mask, values, 0)

    return init


def _masked(value, mask):
    return value if mask is None else value * mask


class DendriticLayer(nn.Module):
    """Sparse dendritic branches feeding block-diagonal somas (see module docstring).

    ``shape`` gives the static sizes (its architecture and hidden width are not used
    here). Called with ``sizes`` (a :class:`ModelSizes` of traced ints), the layer computes
    exactly the model of those smaller sizes: padded connections, branches and somas hold
    weight 0, get no gradient and output 0.
    """

    shape: ModelShape
    image_shape: tuple = (28, 28, 1)
    lowering: str = "dense"  # a resolved lowering (dendrax.nn.lowerings.resolve_lowering)
    matmul_dtype: str = "float32"  # a name of dendrax.spec.MATMUL_DTYPES

    @nn.compact
    def __call__(self, x: jax.Array, sizes: ModelSizes | None = None) -> jax.Array:
        shape = self.shape
        in_dim = x.shape[-1]
        branches, k = shape.n_branches, shape.k
        coords = branch_coordinates(shape.n_neurons, shape.n_dendrites, shape.has_soma)
        m = padding_masks(shape, sizes)
        neuron_ok, branch_ok, conn_ok, soma_ok = m.neuron, m.branch, m.connection, m.soma

        index = self.variable(
            "connectivity", "index",
            lambda: init_connectivity(self.make_rng("connectivity"), shape.strategy, coords,
                                      k, in_dim, self.image_shape, m.k_used)).value
        kernel = self.param("branch_kernel",
                            masked_normal_rows(coords, math.sqrt(2.0 / in_dim), conn_ok),
                            (branches, k))
        bias = self.param("branch_bias", nn.initializers.zeros, (branches,))
        h = sparse_branch_matmul(x, _masked(kernel, conn_ok), index, self.lowering,
                                 self.matmul_dtype) + bias
        h = _masked(leaky_relu(h), branch_ok)
        if not shape.has_soma:
            return h
        soma_std = jnp.sqrt(2.0 / jnp.asarray(m.branches_used, jnp.float32))
        soma_kernel = self.param(
            "soma_kernel", masked_normal_rows(np.arange(shape.n_neurons)[:, None], soma_std,
                                              soma_ok), (shape.n_neurons, shape.n_dendrites))
        soma_bias = self.param("soma_bias", nn.initializers.zeros, (shape.n_neurons,))
        h = h.reshape(h.shape[:-1] + (shape.n_neurons, shape.n_dendrites))
        out = leaky_relu(jnp.sum(h * _masked(soma_kernel, soma_ok), axis=-1) + soma_bias)
        return _masked(out, neuron_ok)
