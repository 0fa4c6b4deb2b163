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

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dendrax.config import ModelConfig, count_params
from dendrax.layers import DendriticLayer, he_normal, leaky_relu


class Linear(nn.Module):
    """y = x W + b with W ~ N(0, 2/fan_in) and b = 0, as the original's LinearLayer."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", he_normal(x.shape[-1]), (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return x @ kernel + bias


class DendriticModel(nn.Module):
    """One of the three architectures; fields mirror :class:`ModelConfig` shapes."""

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
    def __call__(self, x: jax.Array) -> jax.Array:
        has_soma = self.soma_enabled and self.architecture != "soma_disabled"
        h = DendriticLayer(self.n_neurons, self.n_dendrites, self.n_dendrite_inputs,
                           soma_enabled=has_soma, strategy=self.strategy,
                           image_shape=self.image_shape, lowering=self.lowering,
                           compute_dtype=self.compute_dtype, name="dendrites")(x)
        if self.architecture == "dendritic_simple":
            return Linear(self.n_classes, name="output")(h)
        if self.architecture == "dendritic_with_hidden":
            hidden = self.hidden_dim if self.hidden_dim is not None else self.n_neurons
            h = leaky_relu(Linear(hidden, name="hidden")(leaky_relu(h)))
            return Linear(self.n_classes, name="output")(h)
        if self.architecture == "soma_disabled":
            h = leaky_relu(Linear(self.n_neurons, name="hidden")(h))
            return Linear(self.n_classes, name="output")(h)
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


def init_model(model: DendriticModel, key: jax.Array, in_dim: int):
    """(params, connectivity) for one model; params and connectivity use separate keys."""
    params_key, conn_key = jax.random.split(key)
    variables = model.init({"params": params_key, "connectivity": conn_key},
                           jnp.zeros((1, in_dim), jnp.float32))
    return variables["params"], variables["connectivity"]


def pytree_size(tree) -> int:
    """Number of scalars in a pytree (the trainable-parameter count of ``params``)."""
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree)))


__all__ = ["DendriticModel", "Linear", "build_model", "init_model", "pytree_size",
           "count_params"]
