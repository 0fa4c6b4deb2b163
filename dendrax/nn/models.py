"""The three architectures of the original toolkit, and a dense baseline, as Flax modules.

- ``dendritic_simple``:      Dendritic → Linear(out → classes)
- ``dendritic_with_hidden``: Dendritic → LeakyReLU → Linear(out → hidden) → LeakyReLU
                             → Linear(hidden → classes); hidden defaults to n_neurons
- ``soma_disabled``:         Dendritic(no soma) → Linear(n_dendrites → n_neurons)
                             → LeakyReLU → Linear(n_neurons → classes)
- ``mlp``:                   Linear(in_dim → hidden) → LeakyReLU → Linear(hidden → classes),
                             or Linear(in_dim → classes) without a hidden layer

The ``mlp`` baseline is made of plain Linear layers, not of a fully-connected dendritic
layer with one branch per unit (the same function): the dendritic form's training steps
were measured slower (docs/benchmarks.md, "Lowerings"), and plain layers need no rewiring
exemption (the rewiring updater finds dendritic layers by their "branch_kernel").

``soma_disabled`` is built as the original's own parameter formula describes it. The
original's code instead chains Linear(n_dendrites → classes) into Linear(n_neurons →
classes), which crashes unless n_neurons == 10.
"""

from __future__ import annotations


import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dendrax.nn.layers import DendriticLayer, leaky_relu, masked_normal_rows
from dendrax.nn.lowerings import matmul_settings
from dendrax.spec import ModelShape, ModelSizes


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


class DendriticModel(nn.Module):
    """One of the architectures, of the given :class:`ModelShape`.

    ``sizes`` (a :class:`ModelSizes` of traced ints) runs a smaller model inside these
    (padded) sizes.
    """

    shape: ModelShape
    n_classes: int
    image_shape: tuple = (28, 28, 1)
    lowering: str = "dense"  # a resolved lowering (dendrax.nn.lowerings.resolve_lowering)
    matmul_dtype: str = "float32"  # a name of dendrax.spec.MATMUL_DTYPES

    @nn.compact
    def __call__(self, x: jax.Array, sizes: ModelSizes | None = None) -> jax.Array:
        shape = self.shape
        mm = self.matmul_dtype
        if shape.architecture == "mlp":
            hidden = None if sizes is None else sizes.hidden
            if shape.hidden is None:
                return Linear(self.n_classes, mm, name="output")(x)
            h = leaky_relu(Linear(shape.hidden, mm, name="hidden")(x, None, hidden))
            return Linear(self.n_classes, mm, name="output")(h, hidden)
        h = DendriticLayer(shape, image_shape=self.image_shape, lowering=self.lowering,
                           matmul_dtype=self.matmul_dtype, name="dendrites")(x, sizes)
        width = hidden = None
        if sizes is not None:
            width = sizes.n_neurons if shape.has_soma else sizes.n_dendrites
            hidden = sizes.hidden
        if shape.architecture == "dendritic_simple":
            return Linear(self.n_classes, mm, name="output")(h, width)
        if shape.architecture == "dendritic_with_hidden":
            h = leaky_relu(Linear(shape.hidden, mm, name="hidden")(leaky_relu(h), width, hidden))
            return Linear(self.n_classes, mm, name="output")(h, hidden)
        if shape.architecture == "soma_disabled":
            h = leaky_relu(Linear(shape.hidden, mm, name="hidden")(h, width, hidden))
            return Linear(self.n_classes, mm, name="output")(h, hidden)
        raise ValueError(f"unknown architecture {shape.architecture!r}")


def build_model(shape: ModelShape, n_classes: int = 10, image_shape=(28, 28, 1),
                lowering: str = "dense", matmul_dtype: str = "float32") -> DendriticModel:
    """The Flax module for a model shape (seeds and rates live elsewhere)."""
    return DendriticModel(shape=shape, n_classes=n_classes, image_shape=tuple(image_shape),
                          lowering=lowering, matmul_dtype=matmul_dtype)


def init_model(model: DendriticModel, key: jax.Array, in_dim: int,
               sizes: ModelSizes | None = None):
    """(params, connectivity) for one model; params and connectivity use separate keys."""
    params_key, conn_key = jax.random.split(key)
    variables = model.init({"params": params_key, "connectivity": conn_key},
                           jnp.zeros((1, in_dim), jnp.float32), sizes)
    # An "mlp" has no connectivity: its collection is then an empty dict.
    return variables["params"], variables.get("connectivity", {})


def pytree_size(tree) -> int:
    """Number of scalars in a pytree (the trainable-parameter count of ``params``)."""
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree)))


__all__ = ["DendriticModel", "Linear", "build_model", "init_model", "pytree_size"]
