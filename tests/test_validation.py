"""Every bad input fails early, with a message naming what is wrong — one test each.

Each search-time case also checks that the trainer was never called: nothing trains
before the whole search has been validated.
"""

import os

import pytest

from dendrax.errors import ConfigError
from dendrax.search import BudgetError, LogError
from conftest import CONFIG_7198, FakeTrainer, make_searcher


def grid_fails(grid, match, **searcher_kwargs):
    trainer = FakeTrainer()
    searcher = make_searcher(trainer, **searcher_kwargs)
    with pytest.raises(ConfigError, match=match):
        searcher.grid_search(grid)
    assert trainer.calls == []


def random_fails(space, match):
    trainer = FakeTrainer()
    with pytest.raises(ConfigError, match=match):
        make_searcher(trainer).random_search(space, n_trials=5)
    assert trainer.calls == []


# ---- configuration values --------------------------------------------------------------

def test_unknown_parameter_name_suggests_the_closest():
    grid_fails({**{k: [v] for k, v in CONFIG_7198.items()}, "n_neuron": [8]},
               r"unknown parameter 'n_neuron'; did you mean 'n_neurons'")


def test_wrong_type():
    grid_fails({"n_neurons": ["12"]}, r"n_neurons='12' must be an integer")


def test_n_dendrite_inputs_above_the_input_features():
    grid_fails({"n_dendrite_inputs": [96, 785]},
               r"n_dendrite_inputs=785 exceeds the 784 input features; allowed range is 1\.\.784")


def test_n_dendrite_inputs_below_one():
    grid_fails({"n_dendrite_inputs": [0]}, r"n_dendrite_inputs=0 is out of range.*>= 1")


def test_n_neurons_below_one():
    grid_fails({"n_neurons": [0]}, r"n_neurons=0 is out of range.*>= 1")


def test_n_dendrites_below_one():
    grid_fails({"n_dendrites": [-2]}, r"n_dendrites=-2 is out of range.*>= 1")


def test_percentage_resample_outside_0_1():
    grid_fails({"percentage_resample": [0.25, 1.5]}, r"percentage_resample=1\.5 must be .*\[0, 1\]")


def test_steps_to_resample_not_positive():
    grid_fails({"steps_to_resample": [0]}, r"steps_to_resample=0 is out of range.*>= 1")


def test_unknown_architecture():
    grid_fails({"architecture": ["dendritic_simpel"]},
               r"unknown architecture 'dendritic_simpel'; did you mean 'dendritic_simple'")


def test_unknown_strategy():
    grid_fails({"strategy": ["local-receptive-field"]},
               r"unknown strategy 'local-receptive-field'; did you mean 'local-receptive-fields'")


def test_error_names_the_offending_configuration():
    grid_fails({"n_neurons": [12, 0]}, r"in configuration \{'n_neurons': 0\}")


# ---- searcher arguments ---------------------------------------------------------------

@pytest.mark.parametrize("ratio", [0, -0.5, 1.01, "0.8"])
def test_min_param_ratio_outside_0_1(ratio):
    with pytest.raises(ConfigError, match=r"min_param_ratio=.* must be a number in \(0, 1\]"):
        make_searcher(min_param_ratio=ratio)


@pytest.mark.parametrize("max_params", [0, -100, 2.5])
def test_max_params_not_positive(max_params):
    with pytest.raises(ConfigError, match=r"max_params=\S+ .*must be an integer( in \[1, |$)"):
        make_searcher(max_params=max_params)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_epochs": 0}, r"n_epochs=0"),
    ({"batch_size": 0}, r"batch_size=0"),
    ({"seeds_per_config": 0}, r"seeds_per_config=0"),
    ({"seed": -1}, r"seed=-1"),
    ({"validation_fraction": 0.0}, r"validation_fraction=0\.0 must be a number in \(0"),
    ({"data_order": "mine"}, r"data_order='mine'"),
    ({"lowering": "fast"}, r"lowering='fast'"),
    ({"chunk_size": 0}, r"chunk_size=0"),
    ({"rank_by": "test"}, r"rank_by='test'; choose one of val_mean, val_lcb"),
    ({"resume": True}, r"resume=True needs a log_path"),
    ({"n_classes": 100}, r"n_classes=100 but the dataset has 10 classes"),
])
def test_other_searcher_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_searcher(**kwargs)


# ---- spaces -----------------------------------------------------------------------------

def test_empty_grid():
    grid_fails({}, r"empty grid: param_grid has no parameters")
    grid_fails({"n_neurons": [8], "n_dendrites": []}, r"empty grid: 'n_dendrites' has no values")


def test_distribution_with_low_above_high():
    random_fails({"n_neurons": (15, 8)}, r"distribution for 'n_neurons': low=15 > high=8")
    random_fails({"percentage_resample": {"type": "uniform", "low": 0.5, "high": 0.1}},
                 r"low=0\.5 > high=0\.1")


def test_unknown_distribution_type():
    random_fails({"lr": {"type": "normal", "low": 0, "high": 1}},
                 r"unknown type 'normal'; choose one of uniform, choice, randint, loguniform")


def test_malformed_distributions():
    random_fails({"n_neurons": (8, 10, 12)}, r"a tuple must be \(low, high\)")
    random_fails({"n_neurons": {"type": "randint", "low": 8}}, r"missing \['high'\]")
    random_fails({"n_neurons": {"type": "randint", "low": 8, "high": 9.5}},
                 r"high=9\.5 must be an integer")
    random_fails({"n_neurons": []}, r"empty list of choices")


def test_sampled_values_are_validated_before_training():
    random_fails({"n_dendrite_inputs": (700, 900)}, r"exceeds the 784 input features")


def test_bad_trial_counts():
    searcher = make_searcher()
    with pytest.raises(ConfigError, match=r"max_trials=0"):
        searcher.grid_search({"n_neurons": [12]}, max_trials=0)
    with pytest.raises(ConfigError, match=r"n_trials=0"):
        searcher.random_search({"n_neurons": [12]}, n_trials=0)


# ---- budget -----------------------------------------------------------------------------

def test_budget_no_config_fits_names_the_closest():
    trainer = FakeTrainer()
    searcher = make_searcher(trainer, max_params=7000)
    grid = {"n_neurons": [12, 14], "n_dendrites": [6], "n_dendrite_inputs": [96]}
    with pytest.raises(BudgetError, match=r"Closest: \{'n_neurons': 12, 'n_dendrites': 6, "
                                          r"'n_dendrite_inputs': 96\} with 7,198 parameters "
                                          r"\(7,198 > max 7,000\)"):
        searcher.grid_search(grid)
    assert trainer.calls == []
    assert [r.total_params for r in searcher.rejected] == [7198, 8396]


# ---- log --------------------------------------------------------------------------------

def test_unwritable_log_path_missing_directory(tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "log.jsonl"
    with pytest.raises(LogError, match=r"cannot write the search log .*does not exist"):
        make_searcher(log_path=str(path))


def test_unwritable_log_path_is_a_directory(tmp_path):
    with pytest.raises(LogError, match=r"it is a directory"):
        make_searcher(log_path=str(tmp_path))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root can write read-only directories")
def test_unwritable_log_path_read_only_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(LogError, match=r"cannot write the search log"):
            make_searcher(log_path=str(locked / "log.jsonl"))
    finally:
        locked.chmod(0o700)


def test_log_from_another_spec_is_refused_on_resume(tmp_path):
    log = str(tmp_path / "search.jsonl")
    grid = {k: [v] for k, v in CONFIG_7198.items()}
    make_searcher(log_path=log, n_epochs=15).grid_search(grid)
    trainer = FakeTrainer()
    searcher = make_searcher(trainer, log_path=log, resume=True, n_epochs=10, batch_size=128)
    with pytest.raises(LogError, match=r"different spec.*batch_size \(log: 256, now: 128\); "
                                       r"n_epochs \(log: 15, now: 10\)"):
        searcher.grid_search(grid)
    assert trainer.calls == []


def test_existing_log_without_resume_is_refused(tmp_path):
    log = str(tmp_path / "search.jsonl")
    make_searcher(log_path=log).grid_search({k: [v] for k, v in CONFIG_7198.items()})
    with pytest.raises(LogError, match=r"already holds a search; pass resume=True"):
        make_searcher(log_path=log)


def test_torn_last_line_is_ignored_with_a_warning(tmp_path):
    log = tmp_path / "search.jsonl"
    grid = {"n_neurons": [11, 12], "n_dendrites": [6], "n_dendrite_inputs": [96]}
    make_searcher(log_path=str(log)).grid_search(grid)
    text = log.read_text()
    log.write_text(text[: len(text) - 40])  # the last trial line loses its tail
    trainer = FakeTrainer()
    with pytest.warns(RuntimeWarning, match=r"ignored a torn last line"):
        searcher = make_searcher(trainer, log_path=str(log), resume=True)
    searcher.grid_search(grid)
    assert [c.n_neurons for c in trainer.trained] == [12]  # only the torn trial retrains
    assert len(searcher.results) == 2
