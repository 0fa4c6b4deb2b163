"""A search killed with SIGKILL mid-run resumes without losing or retraining a trial,
and the same spec and seed give the same results with the real trainer."""

import json
import os
import textwrap

import pytest

from conftest import run_child_search


HERE = os.path.dirname(os.path.abspath(__file__))

# The child process: a search over 4 shape buckets whose trainer is the deterministic fake
# from conftest, slowed down so that the parent can kill it between buckets. It
# records every model it is asked to train in TRAINED (one JSON line per model).
CHILD = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {here!r})
    from conftest import fake_data, recording_trainer
    from dendrax.search import HyperparameterSearcher

    log_path, trained_path, resume = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    trainer = recording_trainer(trained_path)

    searcher = HyperparameterSearcher(max_params=2000, min_param_ratio=0.1, n_epochs=1,
                                      verbose=False, seeds_per_config=2, data=fake_data(),
                                      log_path=log_path, resume=resume, trainer=trainer)
    searcher.grid_search({{"n_neurons": [4, 6], "n_dendrites": [3, 5],
                           "n_dendrite_inputs": [16], "lr": [5e-4, 1e-3]}})
    rows = [(json.dumps(r.params, sort_keys=True), r.seeds, r.val_accuracy, r.test_accuracy)
            for r in searcher.get_best_results(100)]
    print("RESULT " + json.dumps(rows))
""").format(here=HERE)


def _run(tmp_path, name, resume, kill_after_lines=None):
    return run_child_search(tmp_path, CHILD, name, resume, kill_after_lines)


def _trained(path):
    return [line for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow  # runs searches in fresh processes
def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path):
    full, _ = _run(tmp_path, "full", resume=False)

    _, first = _run(tmp_path, "killed", resume=False, kill_after_lines=4)
    log = tmp_path / "killed.jsonl"
    done_before = [json.loads(l) for l in log.read_text().splitlines()
                   if l.strip().startswith("{") and '"type": "trial"' in l]
    assert 4 <= len(done_before) < 16, "the kill must land mid-run"

    resumed, second = _run(tmp_path, "killed", resume=True)
    retrained = set(_trained(second))
    finished = {json.dumps(r["config"], sort_keys=True) for r in done_before}
    assert not retrained & finished, "a completed trial was trained again"
    assert len(retrained) + len(finished) == 16, "a trial was lost"
    assert resumed == full  # the same table as an uninterrupted run (times excluded)


@pytest.mark.slow  # runs searches in fresh processes
def test_resume_survives_a_torn_last_line(tmp_path):
    _, _ = _run(tmp_path, "torn", resume=False, kill_after_lines=4)
    log = tmp_path / "torn.jsonl"
    with open(log, "a") as f:
        f.write('{"type": "trial", "key": "half-writ')  # a kill in the middle of a write
    resumed, _ = _run(tmp_path, "torn", resume=True)
    assert len(resumed) == 8
