"""Separate seed streams: ``init_seed``, ``order_seed`` and ``rewire_seed``.

Unset, each stream is the one ``seed`` gave before the streams existed (the same keys, the
same trial keys, the same numbers: tests/test_golden.py pins a whole search); set, each
changes its own stream and nothing else, under jit and vmap in one population, and a
member trains the same alone as inside a population. Also the study-level ``split_seed``.
"""

from pathlib import Path

import jax
import numpy as np
import pytest

from dendrax import population as train
from dendrax.config import STREAM_SEED_FIELDS, ModelConfig
from dendrax.data import SAMPLE_DIR
from dendrax.errors import ConfigError
from dendrax.population import compile as compile_module
from dendrax.population import program as program_module
from dendrax.search import HyperparameterSearcher
from dendrax.search.log import _strict_digest, read_log, trial_key
from dendrax.search.record import read_search
from dendrax.spec import TrainSettings
from conftest import TINY_DATA, fake_data, make_searcher

DATA = TINY_DATA  # 256 training examples, 64 features
SETTINGS = TrainSettings(n_epochs=2, batch_size=32)  # 8 steps per epoch
# The first rewiring round comes before step 12: epoch 1 never rewires, epoch 2 does.
BASE = ModelConfig(n_neurons=3, n_dendrites=2, n_dendrite_inputs=8, lr=1e-2,
                   percentage_resample=0.5, steps_to_resample=12, seed=5)
OLD_FIELDS = ("architecture", "n_neurons", "n_dendrites", "n_dendrite_inputs", "soma_enabled",
              "hidden_dim", "strategy", "synaptic_resampling", "percentage_resample",
              "steps_to_resample", "lr", "weight_decay", "seed")


def _numpy(tree):
    def leaf(a):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        return np.asarray(a)

    return jax.tree_util.tree_map(leaf, tree)


def _member(tree, i):
    return jax.tree_util.tree_map(lambda a: a[i], _numpy(tree))


def _equal(a, b) -> bool:
    return all(np.array_equal(x, y, equal_nan=True) for x, y in
               zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


# ---- the config ------------------------------------------------------------------------

def test_unset_stream_seeds_keep_the_config_dict_and_the_trial_key():
    config = ModelConfig(seed=5)
    assert tuple(config.to_dict()) == OLD_FIELDS
    assert trial_key(config) == _strict_digest({name: getattr(config, name)
                                                for name in OLD_FIELDS})
    assert ModelConfig.from_dict(config.to_dict()) == config  # the fields may be absent
    assert config.stream_seeds() == (5, 5, 5)
    set_ = ModelConfig.from_dict({"seed": 5, "order_seed": 9})
    assert set_.to_dict()["order_seed"] == 9 and "init_seed" not in set_.to_dict()
    assert set_.stream_seeds() == (5, 9, 5)
    assert trial_key(set_) != trial_key(config)
    # Set to the value seed gives, a stream seed is still a different (explicit) trial.
    assert trial_key(config.replace(init_seed=5)) != trial_key(config)


@pytest.mark.parametrize("name", STREAM_SEED_FIELDS)
@pytest.mark.parametrize("value", [-1, 2 ** 63, 1.5, True, "3"])
def test_a_bad_stream_seed_is_a_config_error_naming_it(name, value):
    with pytest.raises(ConfigError, match=name):
        ModelConfig.from_dict({name: value})


def test_member_keys_are_todays_keys_when_unset_and_their_own_when_set():
    configs = [ModelConfig(seed=5), ModelConfig(seed=5, init_seed=7, rewire_seed=123_456)]
    keys = jax.random.key_data(train.member_keys(configs))
    assert keys.shape[:2] == (2, 3)
    today = jax.random.key_data(jax.random.key(5))
    for stream in range(3):
        np.testing.assert_array_equal(keys[0, stream], today)
    np.testing.assert_array_equal(keys[1, program_module._INIT],
                                  jax.random.key_data(jax.random.key(7)))
    np.testing.assert_array_equal(keys[1, program_module._ORDER], today)
    np.testing.assert_array_equal(keys[1, program_module._REWIRE],
                                  jax.random.key_data(jax.random.key(123_456)))


# ---- training ----------------------------------------------------------------------------

def _program(members: int):
    spec = compile_module.program_spec(BASE.shape(DATA.in_dim), DATA, SETTINGS,
                                       members=members, padded=False, n_devices=1)
    program = train.make_train(spec)
    return program, train.device_data(DATA, spec.eval_batch_size, 1)


def test_each_stream_seed_changes_only_its_own_stream_in_one_population():
    a = BASE
    configs = [a, a.replace(order_seed=11), a.replace(init_seed=11), a.replace(rewire_seed=11),
               a.replace(init_seed=5, order_seed=5, rewire_seed=5)]  # = a, explicitly
    A, O, I, R, X = range(len(configs))
    program, dev = _program(len(configs))
    init, epoch = jax.jit(program.init), jax.jit(program.epoch)
    hyper, keys = train.hyper_for(configs, DATA.in_dim), train.member_keys(configs)
    order_key = program_module.seed_keys([0])[0]
    start = init(hyper, keys)
    weights = lambda s, i: _member((s.params, s.connectivity, s.opt_state), i)

    # Initial weights: only init_seed moves them.
    assert _equal(weights(start, A), weights(start, O))
    assert _equal(weights(start, A), weights(start, R))
    assert _equal(weights(start, A), weights(start, X))
    assert not _equal(weights(start, A)[0], weights(start, I)[0])

    # Give I the initial weights of A: the same batch order then trains the same model.
    transplant = jax.tree_util.tree_map(
        lambda leaf: leaf.at[I].set(leaf[A]), (start.params, start.connectivity,
                                               start.opt_state))
    start = start._replace(params=transplant[0], connectivity=transplant[1],
                           opt_state=transplant[2])

    one, m1 = epoch(start, hyper, dev, np.int32(0), order_key)  # 8 steps, no rewiring round
    m1 = _numpy(m1)
    assert int(m1["swaps"].sum()) == 0
    assert _equal(weights(one, A), weights(one, I)), "init_seed moved the batch order"
    assert _equal(weights(one, A), weights(one, R)), "rewire_seed acted before a round"
    assert _equal(weights(one, A), weights(one, X))
    assert not _equal(weights(one, A)[0], weights(one, O)[0]), "order_seed changed nothing"
    for name, values in m1.items():
        assert values[A] == values[R] == values[X] == values[I] or name == "swaps", name

    two, m2 = epoch(one, hyper, dev, np.int32(1), order_key)  # a round before step 12
    m2 = _numpy(m2)
    assert m2["swaps"][A] > 0 and m2["swaps"][R] > 0
    assert not np.array_equal(weights(two, A)[1]["dendrites"]["index"],
                              weights(two, R)[1]["dendrites"]["index"]), \
        "rewire_seed did not change the rewiring draws"
    assert _equal(weights(two, A), weights(two, X))
    assert _equal(weights(two, A), weights(two, I))


def test_a_member_trains_the_same_alone_and_inside_a_population():
    configs = [BASE.replace(order_seed=11), BASE.replace(init_seed=11, rewire_seed=3),
               BASE, BASE.replace(init_seed=5, order_seed=5, rewire_seed=5)]
    together = train.train_population(configs, DATA, SETTINGS)
    for i, config in enumerate(configs):
        alone = train.train_population([config], DATA, SETTINGS)
        # What is drawn is the same to the bit: the connectivity (initial draw and every
        # rewiring round) and the swaps. Floats agree to rounding: XLA may sum a batch in
        # another order for another population size.
        assert _equal(_member(alone.state.connectivity, 0),
                      _member(together.state.connectivity, i)), f"member {i}"
        np.testing.assert_array_equal(alone.histories["swaps"][:, 0],
                                      together.histories["swaps"][:, i])
        for name, values in alone.histories.items():
            np.testing.assert_allclose(values[:, 0], together.histories[name][:, i],
                                       rtol=1e-5, atol=1e-6, err_msg=f"{name} of member {i}")
    # Unset stream seeds and stream seeds set to the seed train bit-identical models.
    for name, values in together.histories.items():
        np.testing.assert_array_equal(values[:, 2], values[:, 3], err_msg=name)


# ---- the data split --------------------------------------------------------------------

def _loaded(**kwargs):
    return HyperparameterSearcher(dataset="fashion-mnist", data_dir=str(SAMPLE_DIR),
                                  subset_size=512, verbose=False, trainer=lambda *a, **k: [],
                                  **kwargs)


def test_split_seed_sets_the_validation_split_and_only_it():
    default, split7, seed7 = _loaded(seed=0), _loaded(seed=0, split_seed=7), _loaded(seed=7)
    np.testing.assert_array_equal(split7.data.x_val, seed7.data.x_val)
    assert not np.array_equal(split7.data.x_val, default.data.x_val)
    assert split7.seed == 0  # trial seeds still come from the master seed
    assert "split_seed" not in default.search_settings()  # old logs keep their spec
    assert split7.search_settings()["split_seed"] == 7
    assert _loaded(seed=0, split_seed=None).search_settings() == default.search_settings()


def test_split_seed_is_checked_and_refused_with_data_given():
    with pytest.raises(ConfigError, match="split_seed"):
        make_searcher(split_seed=3)  # make_searcher passes data=
    with pytest.raises(ConfigError, match="split_seed"):
        HyperparameterSearcher(split_seed=-1, data=fake_data(), verbose=False)


COMMITTED_LOGS = sorted(str(p) for p in
                        (Path(__file__).parent.parent / "docs" / "results").rglob("*.jsonl"))


@pytest.mark.parametrize("path", COMMITTED_LOGS or [None])
def test_committed_logs_still_read_with_their_trial_keys(path):
    """The log reader refuses a trial whose key is not trial_key(its config): every
    committed log still reading whole shows the keys did not move."""
    if path is None:
        pytest.skip("no committed logs")
    contents = read_log(path)
    assert contents.trials and len(contents.outcomes) == len(contents.trials)
    for key, outcome in contents.outcomes.items():
        assert trial_key(outcome.config) == key
        assert outcome.config.stream_seeds() == (outcome.config.seed,) * 3
    assert read_search(path).results
