"""The accuracy-vs-parameters Pareto front: one implementation, JSON records, save_pareto."""

import json
import math

import pytest

from dendrax import examples
from dendrax.search import SearchResult, pareto_front, pareto_records, seed_stats
from dendrax.search.results import pareto_record
from conftest import FakeTrainer, make_searcher


def point(params, val, test=None, diverged=False, vals=None):
    return SearchResult(params={"p": params}, test_accuracy=val if test is None else test,
                        train_accuracy=val, total_params=params, train_time=0.0,
                        final_test_loss=0.0, val_accuracy=val, diverged=diverged,
                        val_stats=seed_stats(vals) if vals else None)


# (params, val accuracy): the front is every point that no other point beats or ties on
# both axes while beating it on one.
POINTS = [(1000, 0.70), (1000, 0.65), (1500, 0.70), (2000, 0.80), (2500, 0.78),
          (3000, 0.80), (4000, 0.85), (4500, 0.84), (6000, 0.86)]


def brute_force_front(points):
    def dominated(a):
        return any(b[0] <= a[0] and b[1] >= a[1] and (b[0] < a[0] or b[1] > a[1])
                   for b in points)
    return sorted(p for p in points if not dominated(p))


def test_front_is_exactly_the_non_dominated_set():
    results = [point(p, v) for p, v in POINTS]
    front = pareto_front(results)
    assert [(r.total_params, r.val_accuracy) for r in front] == brute_force_front(POINTS) == [
        (1000, 0.70), (2000, 0.80), (4000, 0.85), (6000, 0.86)]
    assert examples.pareto_front is pareto_front  # one implementation


def test_diverged_and_nan_results_are_never_on_the_front():
    results = [point(1000, 0.70), point(500, 0.99, diverged=True), point(800, math.nan)]
    assert [r.total_params for r in pareto_front(results)] == [1000]
    assert pareto_front([]) == []


def test_records_are_plain_json_with_accuracy_per_1k_params():
    result = point(4000, 0.85, test=0.84, vals=[0.84, 0.85, 0.86])
    record = pareto_record(result)
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert record["total_params"] == 4000
    assert record["val_accuracy_per_1k_params"] == pytest.approx(0.85 / 4)
    assert record["test_accuracy_per_1k_params"] == pytest.approx(0.84 / 4)
    assert record["val"]["std"] == pytest.approx(0.01)
    assert record["val"]["ci_low"] < 0.85 < record["val"]["ci_high"]
    assert record["test"] == {"std": None, "ci_low": None, "ci_high": None}
    assert [r["total_params"] for r in pareto_records([point(p, v) for p, v in POINTS])] == [
        1000, 2000, 4000, 6000]


def test_searcher_save_pareto_writes_the_front(tmp_path):
    # Accuracy grows with n_neurons up to 10, then falls: the front stops at 10.
    trainer = FakeTrainer(score=lambda c: ({8: 0.80, 9: 0.83, 10: 0.86, 11: 0.84}[c.n_neurons],
                                           0.8))
    s = make_searcher(trainer, seeds_per_config=2, max_params=100_000, min_param_ratio=0.01)
    s.grid_search({"n_neurons": [8, 9, 10, 11], "n_dendrites": [6], "n_dendrite_inputs": [96]})
    path = tmp_path / "front.json"
    returned = s.save_pareto(str(path))
    document = json.loads(path.read_text(), parse_constant=pytest.fail)
    assert document["front"] == returned
    assert [p["params"]["n_neurons"] for p in returned] == [8, 9, 10]
    assert document["n_configurations"] == 4 and document["settings"]["dataset"]
    assert all(p["n_seeds"] == 2 for p in returned)
