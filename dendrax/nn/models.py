"""The three architectures of the original toolkit, as Flax modules.

- ``dendritic_simple``:      Dendritic → Linear(out → classes)
- ``dendritic_with_hidden``: Dendritic → LeakyReLU → Linear(out → hidden) → LeakyReLU
                             → Linear(hidden → classes); hidden defaults to n_neurons
- ``soma_disabled``:         Dendritic(no soma) → Linear(n_dendrites → n_neurons)
                             → LeakyReLU → Linear(n_neurons → classes)

``soma_disabled`` is built as the original's own parameter formula describes it. The
original's code instead chains Linear(n_dendrites → classes) into Linear(n_neurons →
classes), which crashes unless n_neurons == 10.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dendrax.search.config import ModelConfig, count_params
from dendrax.nn.layers import (DendriticLayer, LayerDims, leaky_relu, masked_normal_rows,
                               matmul_settings)


class Linear(nn.Module):
    """y = x W + b with W ~ N(0, 2/fan_in) and b = 0, as the original's LinearLayer.

    ``in_used`` / ``out_used`` (ints or traced ints) are the model's own widths when the
    layer is built wider for padding; the padded rows and columns stay exactly 0.
    ``matmul_dtype`` sets the product's precision (its operands stay in the params' dtype).
    """

    features: int
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array, in_used=None, out_used=None) -> jax.Array:
        width = x.shape[-1]
        fan_in = width if in_used is None else in_used
        mask = None
        if in_used is not None or out_used is not None:
            rows = jnp.arange(width) < (width if in_used is None else in_used)
            cols = jnp.arange(self.features) < (self.features if out_used is None else out_used)
            mask = rows[:, None] & cols[None, :]
        std = jnp.sqrt(2.0 / jnp.asarray(fan_in, jnp.float32))
        kernel = self.param("kernel", masked_normal_rows(np.arange(width)[:, None], std, mask),
                            (width, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        precision = matmul_settings(self.matmul_dtype)[2]
        y = jnp.matmul(x, kernel if mask is None else kernel * mask, precision=precision) + bias
        if out_used is not None:
            y = y * (jnp.arange(self.features) < out_used)
        return y


class ModelDims(NamedTuple):
    """A member's own sizes inside a padded population (ints or traced int scalars)."""

    n_neurons: Any
    n_dendrites: Any
    n_inputs: Any
    hidden: Any


class DendriticModel(nn.Module):
    """One of the three architectures; fields mirror :class:`ModelConfig` shapes.

    ``dims`` (a :class:`ModelDims`) runs a smaller model inside these (padded) sizes.
    """

    architecture: str
    n_neurons: int
    n_dendrites: int
    n_dendrite_inputs: int
    soma_enabled: bool
    hidden_dim: int | None
    n_classes: int
    strategy: str = "random"
    image_shape: tuple = (28, 28, 1)
    lowering: str = "dense"
    compute_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array, dims: ModelDims | None = None) -> jax.Array:
        has_soma = self.soma_enabled and self.architecture != "soma_disabled"
        layer_dims = None if dims is None else LayerDims(dims.n_neurons, dims.n_dendrites,
                                                         dims.n_inputs)
        h = DendriticLayer(self.n_neurons, self.n_dendrites, self.n_dendrite_inputs,
                           soma_enabled=has_soma, strategy=self.strategy,
                           image_shape=self.image_shape, lowering=self.lowering,
                           compute_dtype=self.compute_dtype, name="dendrites")(x, layer_dims)
        width = None if dims is None else (dims.n_neurons if has_soma else dims.n_dendrites)
        hidden = None if dims is None else dims.hidden
        mm = self.compute_dtype
        if self.architecture == "dendritic_simple":
            return Linear(self.n_classes, mm, name="output")(h, width)
        if self.architecture == "dendritic_with_hidden":
            features = self.hidden_dim if self.hidden_dim is not None else self.n_neurons
            h = leaky_relu(Linear(features, mm, name="hidden")(leaky_relu(h), width, hidden))
            return Linear(self.n_classes, mm, name="output")(h, hidden)
        if self.architecture == "soma_disabled":
            h = leaky_relu(Linear(self.n_neurons, mm, name="hidden")(h, width, hidden))
            return Linear(self.n_classes, mm, name="output")(h, hidden)
        raise ValueError(f"unknown architecture {self.architecture!r}")


def build_model(config: ModelConfig, n_classes: int = 10, image_shape=(28, 28, 1),
                lowering: str = "dense", compute_dtype: str = "float32") -> DendriticModel:
    """The Flax module for a config (its shape fields only; seeds and rates live elsewhere)."""
    return DendriticModel(
        architecture=config.architecture, n_neurons=config.n_neurons,
        n_dendrites=config.n_dendrites, n_dendrite_inputs=config.n_dendrite_inputs,
        soma_enabled=config.has_soma, hidden_dim=config.hidden_width, n_classes=n_classes,
        strategy=config.strategy, image_shape=tuple(image_shape), lowering=lowering,
        compute_dtype=compute_dtype)


def init_model(model: DendriticModel, key: jax.Array, in_dim: int,
               dims: ModelDims | None = None):
    """(params, connectivity) for one model; params and connectivity use separate keys."""
    params_key, conn_key = jax.random.split(key)
    variables = model.init({"params": params_key, "connectivity": conn_key},
                           jnp.zeros((1, in_dim), jnp.float32), dims)
    return variables["params"], variables["connectivity"]


def pytree_size(tree) -> int:
    """Number of scalars in a pytree (the trainable-parameter count of ``params``)."""
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree)))


__all__ = ["DendriticModel", "Linear", "build_model", "init_model", "pytree_size",
           "count_params"]
