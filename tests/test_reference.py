"""dendrax against the plain-NumPy re-implementation of the original algorithm
(benchmarks/original_numpy.py): one forward + backward + AdamW step of the real trainer,
and one resampling round on fixed draws, to 1e-5."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dendrax import population as train
from dendrax.population import runner
from dendrax.search.config import ModelConfig
from dendrax.nn.models import build_model
from dendrax.nn.rewire import apply_rewiring, draw_rewiring
from dendrax.search.trial import TrainSettings
from conftest import prototype_data

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import original_numpy as ref  # noqa: E402

IN_DIM, CLASSES, BATCH = 48, 5, 32
DATA = prototype_data(n_train=BATCH, n_val=8, n_test=8, in_dim=IN_DIM, n_classes=CLASSES,
                      image_shape=(6, 8, 1))


def to_reference(params, connectivity, config):
    """dendrax's compact (branches, k) layer as the original's dense masked matrices."""
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    index = np.asarray(connectivity["dendrites"]["index"])
    branches = index.shape[0]
    rows = np.arange(branches)[:, None]
    dense = np.zeros((branches, IN_DIM))
    mask = np.zeros((branches, IN_DIM))
    dense[rows, index] = p["dendrites"]["branch_kernel"]
    mask[rows, index] = 1.0
    out = {"dend_W": dense, "dend_mask": mask, "dend_b": p["dendrites"]["branch_bias"]}
    if "soma_kernel" in p["dendrites"]:
        out["soma_W"] = p["dendrites"]["soma_kernel"]
        out["soma_b"] = p["dendrites"]["soma_bias"]
    linears = ["output"] if config.architecture == "dendritic_simple" else ["hidden", "output"]
    for i, name in enumerate(linears):
        out[f"lin{i}_W"], out[f"lin{i}_b"] = p[name]["kernel"], p[name]["bias"]
    return out


@pytest.mark.parametrize("config", [
    ModelConfig(n_neurons=3, n_dendrites=4, n_dendrite_inputs=10),
    ModelConfig(n_neurons=3, n_dendrites=4, n_dendrite_inputs=10, soma_enabled=False),
    ModelConfig(architecture="soma_disabled", n_neurons=5, n_dendrites=6, n_dendrite_inputs=7),
    ModelConfig(architecture="dendritic_with_hidden", n_neurons=3, n_dendrites=2,
                n_dendrite_inputs=9, hidden_dim=4),
], ids=["simple", "simple-nosoma", "soma_disabled", "with_hidden"])
def test_one_training_step_equals_the_numpy_reference(config):
    config = config.replace(lr=1e-2, weight_decay=0.05, synaptic_resampling=False, seed=3)
    settings = TrainSettings(n_epochs=1, batch_size=BATCH)  # one step over every sample
    spec = runner.program_spec(config.shape(IN_DIM), DATA, settings, members=1, padded=False,
                               n_devices=1)
    program = train.make_train(spec)
    model = build_model(config.shape(IN_DIM), CLASSES, DATA.image_shape, spec.lowering)
    hyper, keys = train.hyper_for([config], IN_DIM), train.member_keys([config])
    start = jax.tree_util.tree_map(lambda a: a[0], program.init(hyper, keys))
    _, final, _ = train.train_population([config], DATA, settings)
    final = jax.tree_util.tree_map(lambda a: a[0], final)

    params = to_reference(start.params, start.connectivity, config)
    x, y = DATA.x_train.astype(np.float64), DATA.y_train
    loss, grads = ref.loss_and_grads(params, x, y, arch=config.architecture)
    expected, _ = ref.adamw_step(params, grads, ref.adamw_init(params), lr=1e-2,
                                 weight_decay=0.05)
    got = to_reference(final.params, final.connectivity, config)
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5, err_msg=name)

    # The forward pass and the loss match too.
    logits = model.apply({"params": start.params, "connectivity": start.connectivity},
                         jnp.asarray(DATA.x_train))
    np.testing.assert_allclose(logits, ref.forward(params, x, arch=config.architecture), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("percentage", [0.25, 0.5, 1.0])
def test_one_resampling_round_equals_the_numpy_reference(percentage):
    branches, k = 12, 16
    key_w, key_i, key_d = jax.random.split(jax.random.PRNGKey(7), 3)
    kernel = jax.random.normal(key_w, (branches, k))
    index = jax.random.permutation(key_i, jnp.tile(jnp.arange(IN_DIM), (branches, 1)),
                                   axis=1, independent=True)[:, :k].astype(jnp.int32)
    draws = draw_rewiring(key_d, np.arange(branches)[:, None], k, IN_DIM)
    n = int(k * percentage)
    new_kernel, new_index, _, accepted = jax.jit(apply_rewiring, static_argnums=4)(
        kernel, index, draws, n, IN_DIM)

    rows = np.arange(branches)[:, None]
    dense = np.zeros((branches, IN_DIM))
    mask = np.zeros((branches, IN_DIM))
    dense[rows, np.asarray(index)] = np.asarray(kernel)
    mask[rows, np.asarray(index)] = 1
    params = {"dend_W": dense, "dend_mask": mask}
    expected, _, expected_accepted = ref.resample(
        params, None, n, np.asarray(draws.candidates)[:, :n],
        np.asarray(draws.fresh_weights, np.float64)[:, :n])

    got_dense = np.zeros((branches, IN_DIM))
    got_mask = np.zeros((branches, IN_DIM))
    got_dense[rows, np.asarray(new_index)] = np.asarray(new_kernel)
    got_mask[rows, np.asarray(new_index)] = 1
    assert int(accepted) == expected_accepted > 0
    np.testing.assert_array_equal(got_mask, expected["dend_mask"])
    np.testing.assert_allclose(got_dense, expected["dend_W"], rtol=1e-6, atol=1e-7)
    assert np.all(got_mask.sum(1) == k)
