"""Silent no-ops become warnings: resampling that never fires, devices that do not exist,
random draws outside the budget (and fill_budget), seeds of one config in one row, n_classes
from the data, and the scenario that needs MNIST."""

import warnings

import pytest

from dendrax import cli, examples
from dendrax.errors import ConfigError
from dendrax.search.log import config_key
from conftest import fake_data, FakeTrainer, make_searcher

# At 8,000 parameters only a sliver of the original's thorough space fits.
WIDE = {"n_neurons": (5, 20), "n_dendrites": (3, 15), "n_dendrite_inputs": (32, 128)}


def test_most_draws_outside_the_budget_warn_and_fill_budget_fills_it():
    s = make_searcher(max_params=8000, min_param_ratio=0.8)
    with pytest.warns(RuntimeWarning, match="fill_budget=True"):
        s.random_search(WIDE, n_trials=20)
    plain = len(s.results)
    assert plain < 10

    trainer = FakeTrainer()
    f = make_searcher(trainer, max_params=8000, min_param_ratio=0.8)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", ".*budget.*")  # filled: no budget warning
        f.random_search(WIDE, n_trials=20, fill_budget=True)
    assert len(f.results) == 20
    assert all(6400 <= r.total_params <= 8000 for r in f.results)
    assert len({config_key(c) for c in trainer.trained}) == 20
    # The first n_trials draws are the same with and without fill_budget.
    assert {str(r.params) for r in s.results} <= {str(r.params) for r in f.results}


def test_fill_budget_gives_up_with_a_warning():
    s = make_searcher(max_params=8000, min_param_ratio=0.999)
    with pytest.warns(RuntimeWarning, match=r"only \d+ of 5 configs fit"):
        try:
            s.random_search({"n_neurons": (5, 6), "n_dendrites": [3],
                             "n_dendrite_inputs": [32]}, n_trials=5, fill_budget=True)
        except ConfigError:
            pass  # nothing fits at all: the usual BudgetError follows the warning


def test_resampling_that_never_fires_warns():
    # fake_data: 64 training examples; batch 16 and 2 epochs are 8 steps < 128.
    s = make_searcher(batch_size=16, n_epochs=2)
    with pytest.warns(RuntimeWarning, match="never rewire"):
        s.grid_search({"n_neurons": [12], "n_dendrites": [6], "n_dendrite_inputs": [96],
                       "synaptic_resampling": [True, False]})
    quiet = make_searcher(batch_size=16, n_epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.grid_search({"n_neurons": [12], "n_dendrites": [6], "n_dendrite_inputs": [96],
                           "steps_to_resample": [4]})  # 2 rounds
    mlp = make_searcher(batch_size=16, n_epochs=2, min_param_ratio=0.01)
    with pytest.warns(RuntimeWarning, match=r"1 of 2 configurations have synaptic_resampling"):
        # The mlp has no branches to rewire: only the dendritic config is counted.
        mlp.grid_search({"architecture": ["mlp", "dendritic_simple"], "hidden_dim": [4],
                         "n_neurons": [12], "n_dendrites": [6], "n_dendrite_inputs": [96]})


def test_thorough_merges_the_seeds_of_a_refined_config():
    trainer = FakeTrainer()
    best = examples.thorough_optimization(
        max_params=8000, n_trials=10, results_path=None, data=fake_data(), trainer=trainer,
        verbose=False, n_epochs=1)
    phase1, phase2 = trainer.calls
    assert len(trainer.calls[0]) >= 10  # filled: ten configs inside the budget
    merged = [r for r in examples_results(best, trainer)]
    assert merged  # some top config was retrained at offset 0 under the refine seeds
    assert all(r.n_seeds == 1 + len(examples.REFINE_SEEDS) for r in merged)


def examples_results(best, trainer):
    """Results whose seeds span both phases (re-derived from a fresh searcher run)."""
    s = make_searcher(FakeTrainer(), max_params=8000, min_param_ratio=0.85, n_epochs=1)
    s.random_search(examples.thorough_space(), n_trials=10, fill_budget=True)
    top = s.get_best_results(3)
    s.results.extend(s.evaluate([v for r in top for v in examples.refinements(r.params)]))
    before = len(s.results)
    s.merge_seeds()
    keys = [str(sorted(r.config.items())) for r in s.results]
    assert len(keys) == len(set(keys)) and len(s.results) == before - len(top)
    return [r for r in s.results if any(r.config == t.config for t in top)]


def test_n_classes_comes_from_the_data():
    s = make_searcher(data=fake_data(n_classes=3))
    assert s.n_classes == 3
    s.grid_search({"n_neurons": [12], "n_dendrites": [6], "n_dendrite_inputs": [96]})
    with pytest.raises(ConfigError, match="leave n_classes out"):
        make_searcher(data=fake_data(n_classes=3), n_classes=10)


def test_devices_beyond_those_that_exist_warn():
    from dendrax.population.compile import device_count
    from dendrax.spec import TrainSettings

    with pytest.warns(RuntimeWarning, match="devices=64"):
        assert device_count(TrainSettings(devices=64)) >= 1


def test_scenario_quick_without_mnist_says_how_to_use_fashion_mnist(tmp_path, capsys):
    assert cli.main(["scenario", "quick", "--data-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "dendrax scenario quick --dataset fashion-mnist" in err
