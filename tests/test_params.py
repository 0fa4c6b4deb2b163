"""count_params equals the size of the built model's trainable pytree, for every flag."""

import random

import jax
import jax.numpy as jnp
import pytest

from dendrax.search.config import ARCHITECTURES, STRATEGIES, ModelConfig, count_params
from dendrax.nn.models import build_model, pytree_size


IMAGE_SHAPES = {64: (8, 8, 1), 784: (28, 28, 1), 3072: (32, 32, 3)}


def _built_size(config, in_dim, n_classes):
    model = build_model(config.shape(in_dim), n_classes=n_classes,
                        image_shape=IMAGE_SHAPES[in_dim])
    shapes = jax.eval_shape(
        lambda: model.init({"params": jax.random.PRNGKey(0),
                            "connectivity": jax.random.PRNGKey(1)}, jnp.zeros((1, in_dim))))
    return pytree_size(shapes["params"])


def _random_config(rng: random.Random, in_dim: int) -> ModelConfig:
    return ModelConfig(
        architecture=rng.choice(ARCHITECTURES), n_neurons=rng.randint(1, 20),
        n_dendrites=rng.randint(1, 15), n_dendrite_inputs=rng.randint(1, in_dim),
        soma_enabled=rng.random() < 0.5,
        hidden_dim=rng.choice([None, rng.randint(1, 30)]),
        strategy=rng.choice(STRATEGIES))


def test_count_matches_pytree_on_200_random_configs():
    rng = random.Random(0)
    for _ in range(200):
        in_dim = rng.choice([64, 784, 3072])
        n_classes = rng.choice([2, 10])
        config = _random_config(rng, in_dim)
        assert count_params(config, in_dim, n_classes) == _built_size(config, in_dim, n_classes), config


@pytest.mark.parametrize("config,expected", [
    (ModelConfig(n_neurons=12, n_dendrites=6, n_dendrite_inputs=96), 7198),
    (ModelConfig(architecture="soma_disabled", n_neurons=12, n_dendrites=25,
                 n_dendrite_inputs=64), 2067),
])
def test_reference_counts(config, expected):
    assert count_params(config, 784, 10) == expected
    assert _built_size(config, 784, 10) == expected


def test_connectivity_is_not_a_parameter():
    model = build_model(ModelConfig(n_neurons=2, n_dendrites=2, n_dendrite_inputs=5).shape(30))
    shapes = jax.eval_shape(lambda: model.init({"params": jax.random.PRNGKey(0),
                                                "connectivity": jax.random.PRNGKey(1)},
                                               jnp.zeros((1, 30))))
    assert "index" not in str(jax.tree_util.tree_structure(shapes["params"]))
    assert shapes["connectivity"]["dendrites"]["index"].dtype == jnp.int32
