"""Population trainer: alone == inside a population, chunking and OOM retry,
divergence isolation, the fused jit(train) program, and the loss falling."""

import dataclasses

import jax
import numpy as np
import pytest

from dendrax import population as train
from dendrax.population import compile as compile_module, runner
from dendrax.population.program import seed_keys
from dendrax.plan import group_by_shape
from dendrax.config import ModelConfig
from dendrax.spec import TrainSettings
from conftest import SMALL_DATA

DATA = SMALL_DATA
SMALL = ModelConfig(n_neurons=4, n_dendrites=3, n_dendrite_inputs=16, steps_to_resample=5)
SETTINGS = TrainSettings(n_epochs=1, batch_size=32)  # 20 steps, resampling 4 times


def _leaves(state, member):
    return [np.asarray(x[member]) for x in jax.tree_util.tree_leaves(state.params)]


def test_a_model_trains_the_same_alone_and_inside_a_population_of_64():
    configs = [SMALL.replace(seed=s, lr=5e-4 * (1 + s % 3), percentage_resample=0.1 * (s % 4))
               for s in range(64)]
    population = train.train_population(configs, DATA, SETTINGS).state
    for member in (0, 17, 63):
        alone = train.train_population([configs[member]], DATA, SETTINGS).state
        assert int(population.step[member]) == 20
        np.testing.assert_array_equal(population.connectivity["dendrites"]["index"][member],
                                      alone.connectivity["dendrites"]["index"][0])
        for a, b in zip(_leaves(population, member), _leaves(alone, 0)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_chunking_and_out_of_memory_retry_give_the_same_results(monkeypatch):
    configs = [SMALL.replace(seed=s) for s in range(5)]
    whole = train.train_configs(configs, DATA, SETTINGS, log=None)
    chunked = train.train_configs(configs, DATA, dataclasses.replace(SETTINGS, chunk_size=2),
                                  log=None)
    messages = []
    real_prepare = runner.prepare_population

    def at_most_one_member_fits(configs, *args, **kwargs):
        if len(configs) > 1:
            raise MemoryError(f"RESOURCE_EXHAUSTED: {len(configs)} members do not fit")
        return real_prepare(configs, *args, **kwargs)

    monkeypatch.setattr(runner, "prepare_population", at_most_one_member_fits)
    retried = train.train_configs(configs, DATA, dataclasses.replace(SETTINGS, chunk_size=4),
                                  log=messages.append)
    assert any("out of memory" in m for m in messages)
    for a, b, c in zip(whole, chunked, retried):
        assert a.config == b.config == c.config
        for metric in ("train_loss", "val_accuracy", "test_loss"):
            np.testing.assert_allclose(a.history[metric], b.history[metric], rtol=1e-5)
            np.testing.assert_allclose(a.history[metric], c.history[metric], rtol=1e-5)


def test_a_diverging_member_is_frozen_and_does_not_touch_the_others():
    sane = [SMALL.replace(seed=s) for s in range(3)]
    wild = [c.replace(lr=50.0) if c.seed == 1 else c for c in sane]
    settings = dataclasses.replace(SETTINGS, n_epochs=2)
    ref_state = train.train_population(sane, DATA, settings).state
    hist, state, _ = train.train_population(wild, DATA, settings)
    assert not bool(state.alive[1]) and int(state.diverged_step[1]) > 0
    assert bool(state.alive[0]) and bool(state.alive[2])
    for leaf in jax.tree_util.tree_leaves(state.params):
        assert np.all(np.isfinite(np.asarray(leaf[1])))
    for member in (0, 2):  # bit-identical to the population without the wild member
        for a, b in zip(_leaves(state, member), _leaves(ref_state, member)):
            np.testing.assert_array_equal(a, b)
    outcomes = train.train_configs(wild, DATA, settings, log=None)
    assert [o.diverged for o in outcomes] == [False, True, False]
    assert outcomes[1].diverged_epoch == 1 and outcomes[1].diverged_step >= 1


def test_fused_program_under_jit_matches_the_epoch_driver():
    configs = [SMALL.replace(seed=s) for s in range(3)]
    settings = dataclasses.replace(SETTINGS, n_epochs=2, eval_batch_size=100)
    hist = train.train_population(configs, DATA, settings).histories
    program = train.make_train(compile_module.program_spec(SMALL.shape(64), DATA, settings,
                                                           members=3, padded=False,
                                                           n_devices=1))
    data = train.device_data(DATA, 100)
    fused = jax.jit(program.train, static_argnums=4)
    _, metrics = fused(train.hyper_for(configs, 64), train.member_keys(configs), data,
                       seed_keys([settings.data_seed])[0], 2)
    for metric in ("train_loss", "val_accuracy", "test_accuracy", "swaps"):
        np.testing.assert_allclose(np.asarray(metrics[metric]), hist[metric], rtol=1e-5)


@pytest.mark.parametrize("architecture", ["dendritic_simple", "soma_disabled",
                                          "dendritic_with_hidden"])
def test_loss_falls_on_generated_data(architecture):
    config = SMALL.replace(architecture=architecture, lr=1e-2)
    (outcome,) = train.train_configs([config], DATA, dataclasses.replace(SETTINGS, n_epochs=3),
                                     log=None)
    loss = outcome.history["train_loss"]
    assert loss[-1] < 0.8 * loss[0]
    assert outcome.history["val_accuracy"][-1] > 0.3  # chance is 0.1
    assert sum(outcome.history["swaps"]) > 0


def test_gather_lowering_trains_the_same_models_as_dense():
    configs = [SMALL.replace(seed=s) for s in range(2)]
    settings = dataclasses.replace(SETTINGS, n_epochs=2)
    dense = train.train_configs(configs, DATA, settings, log=None)
    gather = train.train_configs(configs, DATA, dataclasses.replace(settings, lowering="gather"),
                                 log=None)
    for d, g in zip(dense, gather):
        for metric in ("train_loss", "val_loss", "test_accuracy"):
            np.testing.assert_allclose(g.history[metric], d.history[metric], rtol=1e-5)


def test_a_shared_batch_order_does_not_depend_on_the_population():
    shared = dataclasses.replace(SETTINGS, n_epochs=2, data_order="shared")
    configs = [SMALL.replace(seed=s) for s in range(3)]
    together = train.train_configs(configs, DATA, shared, log=None)
    alone = train.train_configs(configs[1:2], DATA, shared, log=None)[0]
    np.testing.assert_allclose(together[1].history["train_loss"], alone.history["train_loss"],
                               rtol=1e-5)
    # Every member sees the same batches, not its own seed's order: the seed only changes
    # its initialisation, so it differs from the own-order run of the same config.
    own = train.train_configs(configs[1:2], DATA, dataclasses.replace(shared, data_order="own"),
                              log=None)[0]
    assert own.history["train_loss"] != alone.history["train_loss"]


def test_configs_are_grouped_by_shape_and_returned_in_input_order():
    configs = [SMALL.replace(seed=0), SMALL.replace(n_dendrites=2, seed=1), SMALL.replace(seed=2)]
    groups = group_by_shape(configs, 64)
    assert list(groups.values()) == [[0, 2], [1]]
    outcomes = train.train_configs(configs, DATA, dataclasses.replace(SETTINGS, padding="exact"),
                                   log=None)
    assert [o.config for o in outcomes] == configs
    assert outcomes[0].bucket == outcomes[2].bucket != outcomes[1].bucket
    assert outcomes[0].bucket_size == 2
