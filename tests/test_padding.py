"""Padded populations: a config trained inside a padded bucket equals the same config
trained alone, the padding never learns or rewires, and the bucket plan stays small."""

import random

import jax
import numpy as np
import pytest

from dendrax import population as train
from dendrax.population import compile as compile_module
from dendrax.plan import plan_buckets
from dendrax.config import ModelConfig, count_params
from dendrax.nn.layers import branch_coordinates
from dendrax.spec import TrainSettings
from conftest import SMALL_DATA

DATA = SMALL_DATA
SETTINGS = TrainSettings(n_epochs=1, batch_size=32)  # 20 steps


def _member(state, i):
    def pick(a):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        return np.asarray(a[i])

    return jax.tree_util.tree_map(pick, state)


def _unpad(params, index, config, template):
    """The padded arrays cut down to ``config``'s own sizes (rows in logical order)."""
    shape = config.shape(64)
    soma = shape.has_soma
    big = branch_coordinates(template.n_neurons, template.n_dendrites, soma)
    small = branch_coordinates(config.n_neurons, config.n_dendrites, soma)
    rows = [int(np.flatnonzero((big == c).all(1))[0]) for c in small]
    k = config.n_dendrite_inputs
    out = {"branch_kernel": params["dendrites"]["branch_kernel"][rows, :k],
           "branch_bias": params["dendrites"]["branch_bias"][rows],
           "index": index[rows, :k]}
    if soma:
        n, d = config.n_neurons, config.n_dendrites
        out["soma_kernel"] = params["dendrites"]["soma_kernel"][:n, :d]
        out["soma_bias"] = params["dendrites"]["soma_bias"][:n]
    width = shape.layer_width
    hidden = shape.hidden
    if hidden is None:
        out["output"] = params["output"]["kernel"][:width]
    else:
        out["hidden"] = params["hidden"]["kernel"][:width, :hidden]
        out["hidden_b"] = params["hidden"]["bias"][:hidden]
        out["output"] = params["output"]["kernel"][:hidden]
    out["output_b"] = params["output"]["bias"]
    return out


CASES = {
    "dendritic_simple": (ModelConfig(n_neurons=3, n_dendrites=2, n_dendrite_inputs=9),
                         ModelConfig(n_neurons=5, n_dendrites=4, n_dendrite_inputs=16)),
    "soma_disabled": (ModelConfig(architecture="soma_disabled", n_neurons=3, n_dendrites=4,
                                  n_dendrite_inputs=10),
                      ModelConfig(architecture="soma_disabled", n_neurons=6, n_dendrites=7,
                                  n_dendrite_inputs=12)),
    "dendritic_with_hidden": (
        ModelConfig(architecture="dendritic_with_hidden", n_neurons=2, n_dendrites=3,
                    n_dendrite_inputs=8, hidden_dim=3),
        ModelConfig(architecture="dendritic_with_hidden", n_neurons=4, n_dendrites=3,
                    n_dendrite_inputs=14, hidden_dim=6)),
}


@pytest.mark.parametrize("architecture", list(CASES))
def test_padded_member_equals_the_same_config_alone(architecture):
    small, large = CASES[architecture]
    small = small.replace(seed=11, steps_to_resample=4, percentage_resample=0.5)
    large = large.replace(seed=12, steps_to_resample=4)
    alone = train.train_population([small], DATA, SETTINGS).state
    padded = train.train_population([small, large], DATA, SETTINGS,
                                    shape=large.shape(64)).state
    a, p = _member(alone, 0), _member(padded, 0)
    assert int(p.step) == int(a.step) == 20
    got = _unpad(p.params, p.connectivity["dendrites"]["index"], small, large)
    want = _unpad(a.params, a.connectivity["dendrites"]["index"], small, small)
    np.testing.assert_array_equal(got.pop("index"), want.pop("index"))  # same rewiring
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5, err_msg=name)

    # The padding holds exactly zero weight after training: no gradient, no decay.
    params = p.params
    real = sum(np.count_nonzero(leaf) for leaf in jax.tree_util.tree_leaves(params))
    assert real <= count_params(small, 64, 10)
    # The padded slots' indices were never rewired.
    spec = compile_module.program_spec(large.shape(64), DATA, SETTINGS, members=1,
                                       padded=True, n_devices=1)
    start = _member(jax.jit(train.make_train(spec).init)(
        train.hyper_for([small], 64), train.member_keys([small])), 0)
    has_soma = small.shape(64).has_soma
    big = branch_coordinates(large.n_neurons, large.n_dendrites, has_soma)
    mask = np.zeros(p.connectivity["dendrites"]["index"].shape, bool)
    for r, (n, d) in enumerate(big):
        if (not has_soma or n < small.n_neurons) and d < small.n_dendrites:
            mask[r, :small.n_dendrite_inputs] = True
    np.testing.assert_array_equal(p.connectivity["dendrites"]["index"][~mask],
                                  start.connectivity["dendrites"]["index"][~mask])


def test_padded_search_trains_the_same_results_as_exact_buckets():
    configs = [ModelConfig(n_neurons=n, n_dendrites=d, n_dendrite_inputs=k, seed=n + d + k)
               for n, d, k in [(3, 3, 6), (4, 3, 8), (3, 4, 7)]]
    padded = train.train_configs(configs, DATA, TrainSettings(n_epochs=1, batch_size=32,
                                                              padding="pow2"), log=None)
    exact = train.train_configs(configs, DATA, TrainSettings(n_epochs=1, batch_size=32,
                                                             padding="exact"), log=None)
    assert len({o.bucket for o in padded}) == 1 and len({o.bucket for o in exact}) == 3
    for a, b in zip(padded, exact):
        assert a.total_params == b.total_params == count_params(a.config, 64)
        np.testing.assert_allclose(a.history["train_loss"], b.history["train_loss"], rtol=1e-5)
        np.testing.assert_allclose(a.history["val_accuracy"], b.history["val_accuracy"],
                                   atol=1e-6)
        assert a.history["swaps"] == b.history["swaps"]
    assert padded[0].padding_overhead > 0 and exact[0].padding_overhead == 0


def test_padding_plan_cuts_compiles_for_the_original_random_ranges():
    rng = random.Random(0)
    configs = [ModelConfig(n_neurons=rng.randint(5, 20), n_dendrites=rng.randint(3, 15),
                           n_dendrite_inputs=rng.randint(32, 256)) for _ in range(70)]
    exact = plan_buckets(configs, 784, "exact")
    padded = plan_buckets(configs, 784, "padded", samples=5 * 54000)
    pow2 = plan_buckets(configs, 784, "pow2")
    assert len(exact) >= 65
    assert len(padded) <= 12 and len(pow2) <= 40
    for plan in (padded, pow2):
        assert sorted(i for b in plan for i in b.members) == list(range(70))
        for b in plan:
            for i in b.members:
                assert configs[i].shape(784).fits_in(b.shape)
