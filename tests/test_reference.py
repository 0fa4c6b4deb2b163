"""dendrax against the oracle (benchmarks/original_numpy.py, the original toolkit's training
written from its code): several training steps with rewiring rounds, every architecture and
every connection strategy, in float64 on both sides.

dendrax runs its real population program with float64 parameters and data
(``jax.enable_x64``, formerly ``jax.experimental.enable_x64``) and its "float64" matmul
setting; the oracle starts from dendrax's initial weights and connections and receives, for each rewiring round, the
draws that dendrax's program makes for that step. The oracle runs with
``fresh_moments=True``: dendrax resets the Adam moments of a rewired synapse, the original
keeps the stale moments of the dense position (a documented difference). Everything else
(the order of gradient, rewiring and update; the ranking on the weights from before the
update; the decay after the Adam step; the masks) must agree to float64 rounding.
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

try:  # older JAX
    from jax.experimental import enable_x64
except ImportError:  # JAX >= 0.8: a configuration context manager
    enable_x64 = jax.enable_x64

import dataclasses

from dendrax import population as train
from dendrax.nn.layers import branch_coordinates
from dendrax.nn.rewire import apply_rewiring, draw_rewiring
from dendrax.population import compile as compile_module, program as program_module
from dendrax.population.runner import device_data
from dendrax.config import ModelConfig
from dendrax.spec import TrainSettings
from conftest import prototype_data

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import original_numpy as ref  # noqa: E402

IMAGE, CLASSES, BATCH = (6, 8, 1), 4, 16
IN_DIM = 48
CHEAP = ({"xla_backend_optimization_level": 0}
         if jax.default_backend() == "cpu" else None)
STEPS, EVERY = 6, 2  # six steps, a rewiring round before steps 2, 4 and 6
# One batch per epoch (the whole training set), so one epoch is one step.
DATA = prototype_data(n_train=BATCH, n_val=8, n_test=8, in_dim=IN_DIM, n_classes=CLASSES,
                      image_shape=IMAGE)


def f64(tree):
    return jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def to_oracle_params(params, connectivity, config):
    """dendrax's compact layers as the original's dense matrices and masks."""
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    index = np.asarray(connectivity["dendrites"]["index"])
    branches = index.shape[0]
    rows = np.arange(branches)[:, None]
    dense, mask = np.zeros((branches, IN_DIM)), np.zeros((branches, IN_DIM))
    dense[rows, index] = p["dendrites"]["branch_kernel"]
    mask[rows, index] = 1.0
    out = {"dend_W": dense, "dend_b": p["dendrites"]["branch_bias"]}
    masks = {"dend": mask}
    if "soma_kernel" in p["dendrites"]:
        compact = p["dendrites"]["soma_kernel"]  # (N, D): soma n reads branches n*D .. n*D+D-1
        n, d = compact.shape
        out["soma_W"] = np.zeros((n, n * d))
        masks["soma"] = np.zeros((n, n * d))
        for i in range(n):
            out["soma_W"][i, i * d:(i + 1) * d] = compact[i]
            masks["soma"][i, i * d:(i + 1) * d] = 1.0
        out["soma_b"] = p["dendrites"]["soma_bias"]
    linears = ["output"] if config.architecture == "dendritic_simple" else ["hidden", "output"]
    for i, name in enumerate(linears):
        out[f"lin{i}_W"], out[f"lin{i}_b"] = p[name]["kernel"].T, p[name]["bias"]
    return out, masks


CASES = [(arch, strategy) for arch in ("dendritic_simple", "dendritic_with_hidden",
                                       "soma_disabled")
         for strategy in ("random", "local-receptive-fields", "fully-connected")]


@pytest.mark.parametrize("arch,strategy", CASES)
def test_training_steps_with_rewiring_equal_the_oracle(arch, strategy):
    k = IN_DIM if strategy == "fully-connected" else 8
    config = ModelConfig(architecture=arch, strategy=strategy,
                         # the original's soma_disabled runs only with n_neurons == classes
                         n_neurons=CLASSES if arch == "soma_disabled" else 3,
                         n_dendrites=3, n_dendrite_inputs=k, hidden_dim=5,
                         lr=2.0 ** -6, weight_decay=2.0 ** -3,  # exact in float32 and 64
                         percentage_resample=0.5, steps_to_resample=EVERY, seed=3)
    settings = TrainSettings(n_epochs=1, batch_size=BATCH, eval_batch_size=8)
    with enable_x64():
        shape = config.shape(IN_DIM)
        spec = compile_module.program_spec(shape, DATA, settings, members=1, padded=False,
                                           n_devices=1, lowering="dense")
        program = train.make_train(dataclasses.replace(spec, matmul_dtype="float64"))
        hyper = train.hyper_for([config], IN_DIM)
        hyper = hyper._replace(lr=hyper.lr.astype(jnp.float64),
                               weight_decay=hyper.weight_decay.astype(jnp.float64))
        keys = train.member_keys([config])
        state = jax.jit(program.init).lower(hyper, keys).compile(CHEAP)(hyper, keys)
        state = state._replace(params=f64(state.params), opt_state=f64(state.opt_state))
        dev = device_data(DATA, settings.eval_batch_size, 1)
        dev = dev._replace(x_train=dev.x_train.astype(jnp.float64),
                           x_eval=dev.x_eval.astype(jnp.float64))
        order_key = program_module.seed_keys([0])[0]
        # Tiny programs that run a few times: compile them cheaply (XLA's CPU optimisation
        # level changes speed only; measured 2× less compile time for the epoch here).
        epoch = jax.jit(program.epoch).lower(state, hyper, dev, jnp.int32(0),
                                             order_key).compile(CHEAP)

        member = jax.tree_util.tree_map(lambda a: a[0], state)
        params, masks = to_oracle_params(member.params, member.connectivity, config)
        net = ref.Net(params, masks, plan={"dendritic_simple": ("linear0",),
                                           "dendritic_with_hidden": ("leaky", "linear0",
                                                                     "leaky", "linear1"),
                                           "soma_disabled": ("linear0", "leaky", "linear1")}[arch],
                      k=k, strategy=strategy, resampling=True, percentage_resample=0.5,
                      steps_to_resample=EVERY)
        opt = ref.adam_init(net)
        coords = branch_coordinates(shape.n_neurons, shape.n_dendrites, shape.has_soma)
        n = net.n_resample
        x = np.asarray(DATA.x_train, np.float64)
        targets = ref.one_hot(np.asarray(DATA.y_train), CLASSES)

        rounds_with_swaps = 0
        for step in range(1, STEPS + 1):
            rewire_key = jax.random.fold_in(jax.random.fold_in(keys[0, program_module._REWIRE],
                                                              program_module._REWIRE),
                                            step)
            draws = draw_rewiring(rewire_key, coords, k, IN_DIM)

            def draw():
                return (np.asarray(draws.candidates)[:, :n],
                        np.asarray(draws.fresh_weights, np.float64)[:, :n])

            ref.train_step(net, opt, x, targets, lr=2.0 ** -6, weight_decay=2.0 ** -3,
                           draw=draw, fresh_moments=True)
            state, metrics = epoch(state, hyper, dev, jnp.int32(step - 1), order_key)
            member = jax.tree_util.tree_map(lambda a: a[0], state)
            got, got_masks = to_oracle_params(member.params, member.connectivity, config)
            assert int(metrics["swaps"][0]) == net.last_swaps[0].size, step
            rounds_with_swaps += net.last_swaps[0].size > 0
            for name in ("dend",) + (("soma",) if "soma" in masks else ()):
                np.testing.assert_array_equal(got_masks[name], net.masks[name], err_msg=name)
            assert set(got) == set(net.params)
            for name, value in net.params.items():
                np.testing.assert_allclose(got[name], value, rtol=1e-10, atol=1e-13,
                                           err_msg=f"{name} after step {step}")
        assert net.rounds == STEPS // EVERY
        if strategy != "fully-connected":
            assert rounds_with_swaps == STEPS // EVERY  # every round moved something
        else:
            assert rounds_with_swaps == 0  # k = in_dim: every draw is already connected


@pytest.mark.parametrize("percentage", [0.25, 0.5, 1.0])
def test_one_resampling_round_equals_the_oracle(percentage):
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
    net = ref.Net({"dend_W": np.zeros((branches, IN_DIM))}, {"dend": np.zeros((branches, IN_DIM))},
                  plan=(), k=k, strategy="random", resampling=True,
                  percentage_resample=percentage, steps_to_resample=1)
    net.params["dend_W"][rows, np.asarray(index)] = np.asarray(kernel)
    net.masks["dend"][rows, np.asarray(index)] = 1
    swapped, _ = ref.resample(net, np.asarray(draws.candidates)[:, :n],
                              np.asarray(draws.fresh_weights, np.float64)[:, :n])

    got_dense, got_mask = np.zeros((branches, IN_DIM)), np.zeros((branches, IN_DIM))
    got_dense[rows, np.asarray(new_index)] = np.asarray(new_kernel)
    got_mask[rows, np.asarray(new_index)] = 1
    assert int(accepted) == swapped.size > 0
    np.testing.assert_array_equal(got_mask, net.masks["dend"])
    np.testing.assert_allclose(got_dense, net.params["dend_W"], rtol=1e-6, atol=1e-7)
    assert np.all(got_mask.sum(1) == k)


def test_fully_connected_with_resampling_trains_where_the_original_fails():
    """A difference kept on purpose: with k below in_dim the original fails its own check at
    the first rewiring round; dendrax connects every feature and its rounds swap nothing."""
    config = ModelConfig(strategy="fully-connected", n_neurons=2, n_dendrites=2,
                         n_dendrite_inputs=8, steps_to_resample=1, seed=1)
    net = ref.init_net(config.to_dict(), IN_DIM, CLASSES, np.random.RandomState(1))
    targets = ref.one_hot(np.asarray(DATA.y_train), CLASSES)
    with pytest.raises(AssertionError, match="connections"):
        ref.train_step(net, ref.adam_init(net), np.asarray(DATA.x_train, np.float64), targets,
                       draw=ref.original_draw(net, np.random.RandomState(2)))

    settings = TrainSettings(n_epochs=3, batch_size=BATCH, eval_batch_size=8)
    history, final, _ = train.train_population([config], DATA, settings)
    assert np.all(history["swaps"] == 0) and np.all(np.isfinite(history["train_loss"]))
    index = np.asarray(final.connectivity["dendrites"]["index"][0])
    np.testing.assert_array_equal(index, np.tile(np.arange(IN_DIM), (4, 1)))
