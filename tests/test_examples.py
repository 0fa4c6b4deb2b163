"""The ready-made scenarios (dendrax.examples): one smoke test each, at tiny settings.

quick_prototype_search runs the real JAX trainer end to end (one shape bucket, one
epoch, generated data); the other scenarios use the fake trainer, whose scores are a hash
of the config, so what is checked is their plumbing: spaces, budgets, phases, ranking.
"""

import json
import math

import pytest

from dendrax import examples
from dendrax.search import SearchResult
from conftest import prototype_data
from conftest import fake_data, FakeTrainer


def fake(**options):
    """Scenario options for the fake trainer: quiet, one epoch, fake_data."""
    trainer = FakeTrainer()
    return trainer, {"data": fake_data(), "trainer": trainer, "verbose": False, "n_epochs": 1,
                     **options}


def test_quick_prototype_search_trains_for_real(capsys):
    # Of the grid's configs only 8×4×64 (2,210 parameters) lies in 1,768-2,210, so this
    # trains one model and compiles one program.
    data = prototype_data(n_train=1024, n_val=128, n_test=128)
    best = examples.quick_prototype_search(max_params=2210, data=data, n_epochs=1)
    out = capsys.readouterr().out
    assert "QUICK PROTOTYPE SEARCH" in out and "Quick search completed" in out
    assert "bucket 1/1 dendritic_simple|soma|n8|d4|k64" in out  # the progress display
    assert isinstance(best, SearchResult)
    assert best.total_params == 2210 == examples.HyperparameterSearcher.estimate_params(
        784, 8, 4, 64)
    assert best.params["n_neurons"] == 8 and best.seeds == [42]
    assert len(best.history[0]["val_accuracy"]) == 1
    assert 0.0 <= best.val_accuracy <= 1.0 and math.isfinite(best.final_test_loss)


def test_budget_space_follows_the_original_tiers():
    small, medium, large = (examples.budget_space(b) for b in (2000, 5000, 5001))
    assert small["architecture"] == ["dendritic_simple"] and small["n_neurons"] == (5, 10)
    assert medium["architecture"] == ["dendritic_simple", "soma_disabled"]
    assert medium["n_dendrite_inputs"] == (32, 128)
    assert set(large["architecture"]) == {"dendritic_simple", "dendritic_with_hidden",
                                          "soma_disabled"}
    assert large["n_dendrite_inputs"] == (64, 256) and "hidden_dim" in large
    assert "hidden_dim" not in small and "hidden_dim" not in medium


def test_optimize_for_budget_returns_the_validation_best_and_saves(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer, options = fake()
    best = examples.optimize_for_budget(max_params=5000, n_trials=40, **options)
    trained = trainer.trained
    assert trained and all(c.architecture in ("dendritic_simple", "soma_disabled")
                           for c in trained)
    assert all(4000 <= examples.HyperparameterSearcher.estimate_params(
        784, c.n_neurons, c.n_dendrites, c.n_dendrite_inputs, c.soma_enabled,
        architecture=c.architecture, hidden_dim=c.hidden_dim) <= 5000 for c in trained)
    saved = json.loads((tmp_path / "budget_5000_fashion-mnist_results.json").read_text())
    assert saved[0]["rank"] == 1
    assert best.val_accuracy == max(r["val_accuracy"] for r in saved)


def test_optimize_for_budget_returns_none_when_nothing_fits(capsys):
    _, options = fake()
    assert examples.optimize_for_budget(max_params=60, n_trials=3, results_path=None,
                                        **options) is None
    assert "no configuration fits" in capsys.readouterr().out


def test_compare_architectures_ranks_by_validation_with_one_log_each(tmp_path):
    trainer, options = fake(log_path=str(tmp_path / "cmp.jsonl"))
    summary = examples.compare_architectures(max_params=8000, **options)
    assert [e["val_accuracy"] for e in summary] == sorted(
        (e["val_accuracy"] for e in summary), reverse=True)
    names = {e["name"] for e in summary}
    assert names <= set(examples.ARCHITECTURE_NAMES) and "dendritic_simple" in names
    for entry in summary:
        assert entry["result"].val_accuracy == entry["val_accuracy"]
        assert entry["params"] <= 8000 and entry["config"]["architecture"] == entry["name"]
        assert (tmp_path / f"cmp.{entry['name']}.jsonl").is_file()
    # Each architecture's grid draws seeds from [42, 123, 456]
    assert {c.seed for c in trainer.trained} <= {42, 123, 456}


def test_thorough_optimization_refines_the_best_under_several_seeds():
    trainer, options = fake()
    best = examples.thorough_optimization(max_params=8000, n_trials=40, results_path=None,
                                          **options)
    phase1, phase2 = trainer.calls  # each phase is one trainer call (one population)
    assert {c.seed for c in phase2} == set(examples.REFINE_SEEDS)
    bases = {(c.architecture, c.n_neurons, c.n_dendrites) for c in phase2}
    assert 1 <= len(bases) <= 3  # the top three of phase 1 (some may share a shape)
    assert bases <= {(c.architecture, c.n_neurons, c.n_dendrites) for c in phase1}
    assert len({c.n_dendrite_inputs for c in phase2}) > 1  # moved around the best
    assert 6800 <= best.total_params <= 8000
    assert best.n_seeds >= 1 and not best.diverged


def test_refinements_move_inputs_and_set_seeds():
    variations = examples.refinements({"n_neurons": 12, "n_dendrite_inputs": 20, "seed": 7})
    assert {v["seed"] for v in variations} == {42, 123}
    # 20-16 and 20-8 are not above 16, so they are dropped
    assert sorted({v["n_dendrite_inputs"] for v in variations}) == [20, 28, 36]
    assert len(variations) == 2 * 3 and all(v["n_neurons"] == 12 for v in variations)


def result(params, val):
    return SearchResult(params={"p": params}, test_accuracy=val, train_accuracy=val,
                        total_params=params, train_time=0.0, final_test_loss=0.0,
                        val_accuracy=val)


def test_pareto_front_keeps_exactly_the_non_dominated():
    points = [result(1000, 0.70), result(2000, 0.80), result(2500, 0.78),
              result(3000, 0.80), result(4000, 0.85), result(1000, 0.65),
              result(5000, float("nan"))]
    front = examples.pareto_front(points)
    assert [(r.total_params, r.val_accuracy) for r in front] == [
        (1000, 0.70), (2000, 0.80), (4000, 0.85)]


def test_find_pareto_optimal_returns_the_front_as_json(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    trainer, options = fake()
    front = examples.find_pareto_optimal(max_budget=10000, n_trials=30, **options)
    assert front and json.loads(json.dumps(front, allow_nan=False)) == front  # plain JSON
    # The front is non-dominated: more parameters always buy more validation accuracy.
    for a, b in zip(front, front[1:]):
        assert a["total_params"] < b["total_params"] and a["val_accuracy"] < b["val_accuracy"]
    for point in front:
        assert point["val_accuracy_per_1k_params"] == pytest.approx(
            point["val_accuracy"] * 1000 / point["total_params"])
        assert point["budget"] in (2000, 4000, 6000, 8000, 10000)
        assert 0.8 * point["budget"] <= point["total_params"] <= point["budget"]
    # The most accurate config of all ends the front, and the file holds the same front.
    trained = [r for path in tmp_path.glob("budget_*_results.json")
               for r in json.loads(path.read_text()) if not r["diverged"]]
    assert front[-1]["val_accuracy"] == max(r["val_accuracy"] for r in trained)
    saved = json.loads((tmp_path / "pareto_front_fashion-mnist.json").read_text())
    assert saved["front"] == front
    assert "BEST PER BUDGET" in capsys.readouterr().out


def test_main_runs_the_three_examples(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, options = fake()
    examples.main(**options)
    out = capsys.readouterr().out
    for heading in ("QUICK PROTOTYPE SEARCH", "OPTIMIZING FOR BUDGET",
                    "ARCHITECTURE COMPARISON SUMMARY", "All examples completed"):
        assert heading in out


def test_unknown_option_is_an_error():
    with pytest.raises(TypeError, match="n_epoch"):
        examples.optimize_for_budget(n_epoch=3, data=fake_data(), trainer=FakeTrainer())
