"""Issue 29, causes 3 and 7 in the data layer and the settings checks: one test per case of
docs/shared reliability-round2 (named after its id), each asserting the error type and
that the message names the field, or the exact behaviour that replaced the silent one.

No training: datasets come from dendrax.data.from_arrays (or small IDX files), searchers
use conftest's fake trainer, or a trainer that fails the test if it is called.
"""

from __future__ import annotations

import json
import random
import time
import warnings

import numpy as np
import pytest

from dendrax.config import ModelConfig
from dendrax.data import DataError, from_arrays, load_dataset
from dendrax.errors import ConfigError
from dendrax.search import HyperparameterSearcher, trial_key
from dendrax.search import spaces
from dendrax.spec import TrainSettings
from conftest import FakeTrainer, make_searcher
from test_data import write_idx_set


class NeverCalled:
    """A trainer that fails the test if any model reaches it."""

    def __call__(self, *args, **kwargs):
        raise AssertionError("the trainer was called for an invalid search")


# The report's searcher settings for own data (pre.py's OWN): a budget every config fits.
OWN = dict(max_params=10**6, min_param_ratio=1e-6, batch_size=16)
OWN_GRID = {"n_neurons": [2], "n_dendrites": [2], "n_dendrite_inputs": [8]}


def arrays(shift=2.0, n=600, d=16, k=3, seed=0):
    """The report's fixture (pre.py): n x d Gaussian features, k classes, class c shifted
    by ``shift`` in feature c; 200 test examples."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    x[np.arange(n), y] += shift
    xt = rng.normal(size=(200, d)).astype(np.float32)
    yt = rng.integers(0, k, 200)
    xt[np.arange(200), yt] += shift
    return x, y, xt, yt


# ---- cause 3: an empty validation split is an error at every entry point -------------------

def test_D18_empty_validation_split_is_refused():
    with pytest.raises(DataError) as err:
        from_arrays(*arrays(), validation_fraction=0.0)
    message = str(err.value)
    assert "validation_fraction=0.0 holds out no validation examples" in message
    assert "NaN" in message and "at least 0.00167" in message  # 1 / 600: what to pass
    assert "validation_fraction=None" in message  # the deliberate way to have no split


def test_D18_no_split_only_on_purpose_with_none():
    ds = from_arrays(*arrays(), validation_fraction=None)
    assert ds.n_val == 0 and ds.x_val.shape == (0, 16) and ds.n_train == 600
    assert ds.validation_fraction is None


def test_D18_searcher_refuses_a_dataset_without_validation_examples():
    ds = from_arrays(*arrays(), validation_fraction=None)
    with pytest.raises((DataError, ConfigError), match="validation"):
        HyperparameterSearcher(data=ds, trainer=NeverCalled(), verbose=False, **OWN)


def test_D16_one_example_per_class_is_refused():
    x, y, xt, yt = arrays(n=3)
    y = np.arange(3)  # one example of each of 3 classes; round(0.1 * 3) = 0
    with pytest.raises(DataError) as err:
        from_arrays(x, y, xt, yt)
    message = str(err.value)
    assert "validation_fraction=0.1 of 3 training examples rounds to 0" in message
    assert "at least 0.333" in message and "more data" in message


@pytest.mark.parametrize("fraction", [1e-6, 5e-324])
def test_N11_a_fraction_that_rounds_to_no_examples_is_refused(fraction):
    with pytest.raises(DataError, match=rf"validation_fraction={fraction!r} of 600 training "
                                        rf"examples rounds to 0 validation examples"):
        from_arrays(*arrays(), validation_fraction=fraction)


def test_N11_load_dataset_and_the_searcher_refuse_it_too(tmp_path):
    write_idx_set(tmp_path, gz=True)  # 200 MNIST-shaped training images
    with pytest.raises(DataError, match=r"validation_fraction=1e-06 of 200 training"):
        load_dataset("mnist", data_dir=tmp_path, validation_fraction=1e-6)
    with pytest.raises(DataError, match=r"validation_fraction=5e-324 of 200 training"):
        HyperparameterSearcher(dataset="mnist", data_dir=str(tmp_path), trainer=NeverCalled(),
                               validation_fraction=5e-324, verbose=False)
    with pytest.raises(DataError, match=r"validation_fraction=0 holds out no validation"):
        load_dataset("mnist", data_dir=tmp_path, validation_fraction=0)
    assert load_dataset("mnist", data_dir=tmp_path, validation_fraction=None).n_val == 0


# ---- cause 7: own data ---------------------------------------------------------------------

def test_D4_a_single_class_is_refused():
    x, y, xt, yt = arrays()
    with pytest.raises(DataError) as err:
        from_arrays(x, np.zeros_like(y), xt, np.zeros_like(yt), name="one-class")
    message = str(err.value)
    assert "y_train holds a single class (0)" in message and "at least 2 classes" in message
    # With class names for two classes, one of them never seen in training: still refused.
    with pytest.raises(DataError, match=r"y_train holds a single class"):
        from_arrays(x, np.zeros_like(y), xt, yt % 2, class_names=["a", "b", "c"])


def test_D6_labels_with_empty_classes_are_refused_with_the_remapping():
    x, y, xt, yt = arrays()
    labels = np.array([0, 5, 100])
    with pytest.raises(DataError) as err:
        from_arrays(x, labels[y], xt, labels[yt])
    message = str(err.value)
    assert "y_train and y_test use 3 distinct labels (0, 5, 100)" in message
    assert "K = max label + 1 = 101" in message and "98 outputs" in message
    assert "np.unique(y, return_inverse=True)" in message and "class_names" in message
    # Remapped as the message says: 3 classes.
    classes, both = np.unique(np.concatenate([labels[y], labels[yt]]), return_inverse=True)
    ds = from_arrays(x, both[:600], xt, both[600:])
    assert ds.n_classes == 3 and classes.tolist() == [0, 5, 100]
    # Empty classes kept on purpose: name all 101.
    kept = from_arrays(x, labels[y], xt, labels[yt], class_names=[str(k) for k in range(101)])
    assert kept.n_classes == 101


def test_D6_a_test_label_absent_from_training_is_still_a_class():
    """D-20 stays handled: classes come from y_train and y_test together."""
    x, y, xt, yt = arrays()
    y = y % 2  # training holds classes 0 and 1; the test set also has class 2
    assert from_arrays(x, y, xt, yt).n_classes == 3


def test_D11_features_near_1e300_standardise_instead_of_becoming_zero():
    x, y, xt, yt = arrays()
    big = [a.astype(np.float64) * 1e300 for a in (x, xt)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        ds = from_arrays(big[0], y, big[1], yt, normalise="standardise")
    small = from_arrays(x.astype(np.float64), y, xt.astype(np.float64), yt,
                        normalise="standardise")
    assert np.isfinite(ds.x_train).all() and not np.all(ds.x_train == 0)
    np.testing.assert_allclose(ds.x_train.std(0), 1, atol=1e-5)
    np.testing.assert_allclose(ds.x_train, small.x_train, atol=1e-5)
    np.testing.assert_allclose(ds.x_test, small.x_test, atol=1e-5)


def test_D11_standardising_is_unchanged_for_ordinary_features():
    """The power-of-two scaling is exact: ordinary features standardise bit for bit as
    (x - mean) / std in float64 did before."""
    rng = np.random.default_rng(3)
    x = rng.normal([5.0, -300.0, 0.0], [2.0, 50.0, 1e-3], size=(400, 3))
    x[:, 2] = 7.0  # constant: only centred
    ds = from_arrays(x, np.arange(400) % 4, x[:50], np.arange(50) % 4, normalise="standardise",
                     validation_fraction=None)
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1.0
    np.testing.assert_array_equal(ds.x_train, ((x - mean) / std).astype(np.float32))


def test_D11_test_features_far_outside_the_training_range_are_refused():
    x, y, xt, yt = arrays()
    xt = xt.astype(np.float64)
    xt[0, 3] = 1e300  # 1e300 training standard deviations away: inf in float32
    with pytest.raises(DataError, match=r"x_test holds values beyond float32's range .*"
                                        r"after standardisation"):
        from_arrays(x, y, xt, yt, normalise="standardise")


@pytest.mark.parametrize("where", ["x_train", "x_test"])
def test_D12_features_beyond_float32_with_normalise_none_are_refused(where):
    x, y, xt, yt = (a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays())
    (x if where == "x_train" else xt)[0, 0] = 1e39
    with pytest.raises(DataError) as err:
        from_arrays(x, y, xt, yt, normalise="none")
    message = str(err.value)
    assert message.startswith(f"{where} holds values beyond float32's range")
    assert "largest |x| = 1e+39" in message and "3.403e+38" in message
    assert "diverged" in message  # says what would have happened instead


def test_D19_an_empty_test_set_is_a_data_error():
    x, y, xt, yt = arrays()
    with pytest.raises(DataError, match=r"x_test is empty \(0 examples\)"):
        from_arrays(x, y, x[:0], y[:0])
    with pytest.raises(DataError, match=r"x_test is empty"):
        from_arrays(x.reshape(600, 4, 4), y, x[:0].reshape(0, 4, 4), y[:0])


# ---- D-23 / D-24, R-18 / R-19: the data says what it is --------------------------------------

def test_D23_D24_the_dataset_carries_its_real_name_split_and_sizes():
    ds = from_arrays(*arrays(), name="my-task", subset_size=50, seed=4)
    assert (ds.name, ds.n_train, ds.n_val, ds.n_test) == ("my-task", 50, 60, 200)
    assert (ds.validation_fraction, ds.subset_size, ds.seed, ds.normalise) == \
        (0.1, 50, 4, "standardise")
    identity = ds.identity
    assert json.loads(json.dumps(identity)) == identity  # JSON-able, for the log header
    assert identity["name"] == "my-task" and identity["n_train"] == 50
    assert identity["fingerprint"] == ds.fingerprint and "source" not in identity


def test_D23_D24_built_in_datasets_carry_theirs(tmp_path):
    write_idx_set(tmp_path, gz=True)
    ds = load_dataset("mnist", data_dir=tmp_path, subset_size=100, validation_fraction=0.2,
                      seed=1)
    assert (ds.name, ds.n_train, ds.n_val, ds.subset_size, ds.validation_fraction,
            ds.normalise) == ("mnist", 100, 40, 100, 0.2, "pixels")


def test_D23_D24_the_log_records_the_data_really_used(tmp_path):
    ds = from_arrays(*arrays(), name="my-task")
    log = tmp_path / "own.jsonl"
    make_searcher(data=ds, subset_size=50, log_path=str(log), **OWN).grid_search(OWN_GRID)
    spec = json.dumps(json.loads(log.read_text().splitlines()[0])["spec"])
    assert "my-task" in spec and ds.fingerprint in spec and "fashion-mnist" not in spec


def test_R18_R19_the_fingerprint_tells_other_content_of_the_same_shapes_apart():
    x, y, xt, yt = arrays(shift=3.0)
    a = from_arrays(x, y, xt, yt, name="task-A")
    assert from_arrays(x, y, xt, yt, name="task-A").fingerprint == a.fingerprint  # stable
    assert from_arrays(x, y, xt, yt, name="renamed").fingerprint == a.fingerprint  # content
    assert len(a.fingerprint) == 32 and int(a.fingerprint, 16) >= 0
    order = np.random.default_rng(0).permutation(600)
    others = {
        "shuffled rows (R-18)": from_arrays(x[order], y[order], xt, yt),
        "pure noise of the same shapes (R-19)": from_arrays(*arrays(shift=0.0, seed=1)),
        "another split seed": from_arrays(x, y, xt, yt, seed=1),
        "another normalisation": from_arrays(x, y, xt, yt, normalise="none"),
        "another subset": from_arrays(x, y, xt, yt, subset_size=500),
        "one test label changed": from_arrays(x, y, xt, np.where(np.arange(200) == 0,
                                                                (yt + 1) % 3, yt)),
    }
    for what, other in others.items():
        assert other.fingerprint != a.fingerprint, what


def test_R18_the_fingerprint_is_computed_once():
    ds = from_arrays(*arrays())
    assert "fingerprint" not in vars(ds)  # nothing hashed until asked
    first = ds.fingerprint
    assert vars(ds)["fingerprint"] == first and ds.fingerprint is first


def test_R19_resuming_on_other_data_of_the_same_shapes_is_refused(tmp_path):
    from dendrax.search import LogError

    log = str(tmp_path / "own.jsonl")
    a = from_arrays(*arrays(shift=3.0), name="task-A")
    b = from_arrays(*arrays(shift=0.0, seed=1), name="task-A")
    make_searcher(data=a, log_path=log, **OWN).grid_search(OWN_GRID)
    with pytest.raises(LogError, match="data"):
        make_searcher(data=b, log_path=log, resume=True, **OWN).grid_search(OWN_GRID)


# ---- cause 7: numbers ------------------------------------------------------------------------

@pytest.mark.parametrize("n_epochs", [2**31, 10**20, 100_001])
def test_N1_n_epochs_has_an_upper_bound(n_epochs):
    with pytest.raises(ConfigError, match=rf"n_epochs={n_epochs} is out of range; it must "
                                          rf"be an integer in \[1, 100000\]"):
        TrainSettings(n_epochs=n_epochs).validate()
    with pytest.raises(ConfigError, match=rf"n_epochs={n_epochs} is out of range"):
        make_searcher(NeverCalled(), n_epochs=n_epochs)


def test_N1_the_largest_n_epochs_is_accepted():
    TrainSettings(n_epochs=100_000).validate()
    with pytest.raises(ConfigError, match=r"n_epochs=0 is out of range.*>= 1"):
        TrainSettings(n_epochs=0).validate()  # the lower bound's message is unchanged


@pytest.mark.parametrize("value", [2**31, 10**20])
def test_N2_steps_to_resample_is_bounded_by_int32(value):
    with pytest.raises(ConfigError, match=rf"steps_to_resample={value} is out of range; it "
                                          rf"must be an integer in \[1, 2147483647\] "
                                          rf"\(the trainer holds it as a 32-bit integer\)"):
        ModelConfig(steps_to_resample=value).validate()
    searcher = make_searcher(NeverCalled())
    with pytest.raises(ConfigError, match=rf"steps_to_resample={value} is out of range"):
        searcher.grid_search({"n_neurons": [12], "n_dendrites": [6],
                              "n_dendrite_inputs": [96], "steps_to_resample": [value]})
    ModelConfig(steps_to_resample=2**31 - 1).validate()


def test_N3_steps_to_resample_1e10_from_a_spec_is_refused():
    """A spec's JSON 1e10 is a float; an integral float becomes the int 10**10 first."""
    with pytest.raises(ConfigError, match=r"steps_to_resample=10000000000 is out of range"):
        ModelConfig.from_dict({"steps_to_resample": 1e10})


def test_N8_negative_zero_is_the_same_config_as_zero():
    for field in ("lr", "weight_decay", "percentage_resample"):
        negative, positive = ModelConfig(**{field: -0.0}), ModelConfig(**{field: 0.0})
        assert negative == positive and trial_key(negative) == trial_key(positive)
        assert str(getattr(negative, field)) == "0.0"
    assert ModelConfig.from_dict({"lr": np.float64(-0.0)}).lr.hex() == (0.0).hex()
    trainer = FakeTrainer()
    searcher = make_searcher(trainer, seeds_per_config=2)
    results = searcher.grid_search({"n_neurons": [12], "n_dendrites": [6],
                                    "n_dendrite_inputs": [96], "lr": [0.0, -0.0]})
    assert len(results) == 1 and len(trainer.trained) == 2  # one config, two seeds
    assert str(results[0].params["lr"]) == "0.0"


def test_N8_a_space_canonicalises_negative_zero():
    assert spaces.parse_grid({"lr": [-0.0, np.float32(-0.0)]}) == {"lr": [0.0, 0.0]}
    assert all(str(v) == "0.0" for v in spaces.parse_grid({"lr": [-0.0]})["lr"])
    assert spaces.parse_space({"lr": [-0.0, 0.0]})["lr"].values == (0.0, 0.0)


# The report's space: n_neurons 8..12, one n_dendrites, one n_dendrite_inputs: 5 points.
SMALL_SPACE = {"n_neurons": (8, 12), "n_dendrites": [4], "n_dendrite_inputs": [64]}


def test_N15_N16_a_finite_space_knows_its_size():
    assert spaces.space_size(spaces.parse_space(SMALL_SPACE)) == 5
    assert spaces.space_size(spaces.parse_space(
        {"n_neurons": [4, 8, 8.0, 8], "lr": {"type": "loguniform", "low": 1e-3,
                                             "high": 1e-3}, "strategy": "random"})) == 3
    assert spaces.space_size(spaces.parse_space({"n_neurons": (4, 8), "lr": (1e-3, 1e-2)})) \
        is None  # a continuous range


def test_N15_N16_drawing_a_million_from_five_points_stops_once_all_are_drawn():
    space = spaces.parse_space(SMALL_SPACE)
    start = time.perf_counter()
    drawn = spaces.sample_space(space, 10**6, random.Random(7), stop_when_exhausted=True)
    assert time.perf_counter() - start < 0.5
    assert len(drawn) < 1000
    assert sorted({p["n_neurons"] for p in drawn}) == [8, 9, 10, 11, 12]
    # The same draws as without stopping, in the same order: a prefix of them.
    assert drawn == spaces.sample_space(space, len(drawn), random.Random(7))
    # Below the space's size nothing changes.
    assert spaces.sample_space(space, 3, random.Random(7), stop_when_exhausted=True) == \
        spaces.sample_space(space, 3, random.Random(7))
