"""The dendritic layer (Flax) and its connectivity initialisers.

A layer has ``branches`` dendritic branches; branch ``b`` reads the k input features
``index[b]`` (distinct), so its pre-activation is ``w[b] · x[index[b]] + bias[b]``.
With a soma, branch ``n * n_dendrites + d`` is dendrite ``d`` of neuron ``n`` and

    soma[n] = LeakyReLU(Σ_d soma_w[n, d] · LeakyReLU(branch[n, d]) + soma_b[n])

(the original's block-diagonal soma, stored compactly as an (n_neurons, n_dendrites)
matrix). Without a soma the layer outputs the ``n_dendrites`` branch activations.

Connectivity is an int32 array ``index`` of shape (branches, k) in the variable
collection ``"connectivity"``, never in ``"params"``, so optimisers never see it.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

NEGATIVE_SLOPE = 0.1
LOWERINGS = ("gather", "dense")


def leaky_relu(x: jax.Array) -> jax.Array:
    """LeakyReLU with the original's slope of 0.1."""
    return jnp.where(x >= 0, x, NEGATIVE_SLOPE * x)


def he_normal(fan_in: int):
    """N(0, 2 / fan_in), untruncated, as the original initialises every weight."""
    std = math.sqrt(2.0 / fan_in)

    def init(key, shape, dtype=jnp.float32):
        return std * jax.random.normal(key, shape, dtype)

    return init


# ---- connectivity ------------------------------------------------------------------

def random_connectivity(key: jax.Array, branches: int, k: int, in_dim: int) -> jax.Array:
    """k distinct features per branch, uniformly without replacement."""
    # The k largest of in_dim iid uniforms form a uniform k-subset.
    scores = jax.random.uniform(key, (branches, in_dim))
    return jax.lax.top_k(scores, k)[1].astype(jnp.int32)


def full_connectivity(branches: int, in_dim: int) -> jax.Array:
    """Every branch reads every feature (k = in_dim)."""
    return jnp.broadcast_to(jnp.arange(in_dim, dtype=jnp.int32), (branches, in_dim))


def local_receptive_field_connectivity(key: jax.Array, branches: int, k: int,
                                       image_shape: Sequence[int]) -> jax.Array:
    """k distinct pixels around a random centre per branch.

    Offsets are Gaussian with std = sqrt(k), rounded and clipped to the image, and drawn
    until k distinct pixels are found. Multi-channel images draw the channel of each
    connection uniformly (features are laid out H, W, C). If a branch has not filled its
    k slots after 64·k draws (k close to the image size), the rest are filled with
    uniformly drawn unused features, so the result always has k distinct features.
    """
    height, width, channels = (tuple(image_shape) + (1,))[:3]
    in_dim = height * width * channels
    if k > in_dim:
        raise ValueError(f"n_dendrite_inputs={k} exceeds the {in_dim} pixels of a "
                         f"{height}×{width}×{channels} image")
    std = math.sqrt(k)
    max_draws = 64 * k

    def one_branch(branch_key):
        centre_key, loop_key, fill_key = jax.random.split(branch_key, 3)
        centre = jax.random.randint(centre_key, (2,), 0, jnp.array([height, width]))

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
            return (state[2] < k) & (state[3] < max_draws)

        init = (jnp.zeros(in_dim, bool), jnp.zeros(k, jnp.int32), jnp.int32(0), jnp.int32(0))
        taken, index, count, _ = jax.lax.while_loop(more, draw, init)
        # Fallback fill: unused features ranked by a random score, taken in order.
        scores = jnp.where(taken, -1.0, jax.random.uniform(fill_key, (in_dim,)))
        spare = jax.lax.top_k(scores, k)[1].astype(jnp.int32)
        slot = jnp.arange(k)
        return jnp.where(slot < count, index, spare[jnp.clip(slot - count, 0, k - 1)])

    return jax.vmap(one_branch)(jax.random.split(key, branches))


def init_connectivity(key: jax.Array, strategy: str, branches: int, k: int,
                      in_dim: int, image_shape: Sequence[int]) -> jax.Array:
    """The (branches, k) int32 index array for one of the three strategies."""
    if strategy == "random":
        return random_connectivity(key, branches, k, in_dim)
    if strategy == "local-receptive-fields":
        if math.prod(image_shape) != in_dim:
            raise ValueError(f"local-receptive-fields needs image_shape matching the input: "
                             f"{tuple(image_shape)} has {math.prod(image_shape)} features, "
                             f"the input has {in_dim}")
        return local_receptive_field_connectivity(key, branches, k, image_shape)
    if strategy == "fully-connected":
        return full_connectivity(branches, in_dim)
    raise ValueError(f"unknown strategy {strategy!r}")


# ---- the two lowerings of one sparse contraction -------------------------------------

def sparse_branch_matmul(x: jax.Array, kernel: jax.Array, index: jax.Array,
                         lowering: str = "dense", compute_dtype=jnp.float32) -> jax.Array:
    """out[n, b] = Σ_j kernel[b, j] · x[n, index[b, j]]  for x of shape (batch, in_dim).

    "gather" reads x[:, index] and contracts over j; "dense" scatters the kernel into a
    (branches, in_dim) matrix and does one matrix product. Both give the same function
    and the same gradients with respect to ``kernel``.
    """
    if lowering == "gather":
        # Gather rows of xᵀ: each row is one feature over the whole batch, so the
        # gather copies contiguous runs instead of single scattered floats (measured
        # 1.7× faster on CPU than x[:, index]).
        gathered = jnp.take(x.T, index, axis=0)  # (branches, k, batch)
        return jnp.einsum("bkn,bk->nb", gathered.astype(compute_dtype),
                          kernel.astype(compute_dtype), preferred_element_type=jnp.float32)
    if lowering == "dense":
        branches, _ = kernel.shape
        rows = jnp.arange(branches)[:, None]
        # Scatter in the compute dtype: with bfloat16 the (branches, in_dim) matrix, the
        # largest array of a step, moves half the bytes.
        dense = jnp.zeros((branches, x.shape[-1]), compute_dtype).at[rows, index].set(
            kernel.astype(compute_dtype))
        return jnp.dot(x.astype(compute_dtype), dense.T, preferred_element_type=jnp.float32)
    raise ValueError(f"unknown lowering {lowering!r}; choose one of {LOWERINGS}")


class DendriticLayer(nn.Module):
    """Sparse dendritic branches feeding block-diagonal somas (see module docstring)."""

    n_neurons: int
    n_dendrites: int
    n_dendrite_inputs: int
    soma_enabled: bool = True
    strategy: str = "random"
    image_shape: tuple = (28, 28, 1)
    lowering: str = "dense"
    compute_dtype: str = "float32"

    @property
    def branches(self) -> int:
        return self.n_neurons * self.n_dendrites if self.soma_enabled else self.n_dendrites

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        in_dim = x.shape[-1]
        branches = self.branches
        k = in_dim if self.strategy == "fully-connected" else self.n_dendrite_inputs
        index = self.variable(
            "connectivity", "index",
            lambda: init_connectivity(self.make_rng("connectivity"), self.strategy,
                                      branches, k, in_dim, self.image_shape)).value
        kernel = self.param("branch_kernel", he_normal(in_dim), (branches, k))
        bias = self.param("branch_bias", nn.initializers.zeros, (branches,))
        h = sparse_branch_matmul(x, kernel, index, self.lowering,
                                 jnp.dtype(self.compute_dtype)) + bias
        h = leaky_relu(h)
        if not self.soma_enabled:
            return h
        soma_kernel = self.param("soma_kernel", he_normal(branches),
                                 (self.n_neurons, self.n_dendrites))
        soma_bias = self.param("soma_bias", nn.initializers.zeros, (self.n_neurons,))
        h = h.reshape(h.shape[:-1] + (self.n_neurons, self.n_dendrites))
        return leaky_relu(jnp.sum(h * soma_kernel, axis=-1) + soma_bias)
