"""count_params equals the size of the built model's trainable pytree, for every flag."""

import random

import jax
import jax.numpy as jnp
import pytest

from dendrax.config import ModelConfig, count_params
from dendrax.spec import ARCHITECTURES, STRATEGIES
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
    architecture = rng.choice(ARCHITECTURES)
    hidden_dim = rng.choice([None, rng.randint(1, 30)])
    if architecture == "mlp":  # it needs a width; 0 is a linear classifier
        hidden_dim = rng.choice([0, rng.randint(1, 30)])
    config = ModelConfig(
        architecture=architecture, n_neurons=rng.randint(1, 20),
        n_dendrites=rng.randint(1, 15), n_dendrite_inputs=rng.randint(1, in_dim),
        soma_enabled=rng.random() < 0.5, hidden_dim=hidden_dim,
        strategy=rng.choice(STRATEGIES))
    config.validate(in_dim)
    return config


def test_count_matches_pytree_on_200_random_configs():
    rng = random.Random(0)
    seen = set()
    for _ in range(200):
        in_dim = rng.choice([64, 784, 3072])
        n_classes = rng.choice([2, 10])
        config = _random_config(rng, in_dim)
        seen.add((config.architecture, config.hidden_dim == 0))
        assert count_params(config, in_dim, n_classes) == _built_size(config, in_dim, n_classes), config
    assert {("mlp", True), ("mlp", False)} <= seen  # both forms of the baseline were drawn


@pytest.mark.parametrize("config,expected", [
    (ModelConfig(n_neurons=12, n_dendrites=6, n_dendrite_inputs=96), 7198),
    (ModelConfig(architecture="soma_disabled", n_neurons=12, n_dendrites=25,
                 n_dendrite_inputs=64), 2067),
    (ModelConfig(architecture="mlp", hidden_dim=10), 784 * 10 + 10 + 10 * 10 + 10),
    (ModelConfig(architecture="mlp", hidden_dim=0), 784 * 10 + 10),
    # The dendritic fields are ignored by an mlp, whatever they hold.
    (ModelConfig(architecture="mlp", hidden_dim=9, n_neurons=3, n_dendrites=2,
                 n_dendrite_inputs=5, strategy="local-receptive-fields"), 784 * 9 + 9 + 9 * 10 + 10),
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


def test_estimate_params_for_mlp_needs_only_hidden_dim():
    from dendrax.search.searcher import HyperparameterSearcher
    from dendrax.errors import ConfigError

    assert HyperparameterSearcher.estimate_params(784, architecture="mlp", hidden_dim=10) == 7960
    assert HyperparameterSearcher.estimate_params(784, architecture="mlp", hidden_dim=0) == 7850
    with pytest.raises(ConfigError, match="n_dendrites"):
        HyperparameterSearcher.estimate_params(784, n_neurons=3)
