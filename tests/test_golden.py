"""A fixed search gives the same results as dendrax did before the package was reorganised.

tests/data/golden_search.json was written by dendrax 08bc488 from the search below, and
written again when issue 14 moved the rewiring before the optimiser step and the weight
decay after the Adam step (the original's order; the numbers moved by a few thousandths);
the refactors must reproduce it (parameters, seeds, counts and every accuracy and loss
statistic), so any change to what a search computes shows up here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dendrax import HyperparameterSearcher
from dendrax.data import SAMPLE_DIR
from dendrax.search.results import rank_results

GOLDEN = Path(__file__).parent / "data" / "golden_search.json"
FIELDS = ("params", "seeds", "total_params", "val_stats", "test_stats", "train_accuracy",
          "final_test_loss")


def run_fixed_search() -> list[dict]:
    searcher = HyperparameterSearcher(
        dataset="fashion-mnist", subset_size=512, max_params=700, min_param_ratio=0.3,
        n_epochs=2, batch_size=64, verbose=False, seeds_per_config=2, seed=3,
        data_dir=str(SAMPLE_DIR), lowering="dense")  # the sparse kernel has its own tests
    searcher.grid_search({"n_neurons": [4, 6], "n_dendrites": [3], "n_dendrite_inputs": [16, 24],
                          "architecture": ["dendritic_simple", "dendritic_with_hidden"],
                          "synaptic_resampling": [True], "steps_to_resample": [4]})
    return [{k: r.to_dict()[k] for k in FIELDS} for r in rank_results(searcher.results)]


def _assert_same(found, expected, where="result"):
    if isinstance(expected, dict):
        assert set(found) == set(expected), where
        for key in expected:
            _assert_same(found[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, float):
        np.testing.assert_allclose(found, expected, rtol=1e-6, atol=1e-7, err_msg=where)
    else:
        assert found == expected, where


def test_a_fixed_search_reproduces_the_golden_results():
    expected = json.loads(GOLDEN.read_text())["results"]
    found = run_fixed_search()
    assert len(found) == len(expected) == 8
    for i, (f, e) in enumerate(zip(found, expected)):
        _assert_same(f, e, f"result {i}")
