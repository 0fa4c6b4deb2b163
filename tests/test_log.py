"""The JSONL search log: layout, spec hash, and resuming a killed search."""

import json

import pytest

from dendrax.search import LogError, read_log, trial_key
from dendrax.search.log import spec_hash
from conftest import CONFIG_7198, FakeTrainer, make_searcher

GRID = {"n_neurons": [11, 12], "n_dendrites": [6], "n_dendrite_inputs": [96],
        "synaptic_resampling": [True, False]}  # 4 configs in 2 shape buckets


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_log_layout(tmp_path):
    log = tmp_path / "search.jsonl"
    trainer = FakeTrainer()
    make_searcher(trainer, log_path=str(log), seeds_per_config=2).grid_search(GRID)
    records = lines(log)
    header, trials = records[0], records[1:]
    assert header["type"] == "header" and header["version"] == 1
    assert header["spec_hash"] == spec_hash(header["spec"])
    assert header["spec"]["space"] == {"param_grid": GRID}
    assert header["spec"]["budget"] == {"max_params": 8000, "min_param_ratio": 0.8}
    assert len(trials) == 8 and {t["type"] for t in trials} == {"trial"}
    assert [t["key"] for t in trials] == [trial_key(c) for c in trainer.trained]
    first = trials[0]
    assert first["config"]["n_neurons"] == 11 and first["total_params"] == 6599
    assert "shape_bucket" not in first  # one plan: the trainer's, recorded as "bucket"
    assert first["bucket"] == "dendritic_simple|soma|n11|d6|k96|random"
    assert len(first["history"]["val_accuracy"]) == 15


def test_spec_hash_ignores_verbose_and_log_path(tmp_path):
    a = make_searcher(verbose=False, log_path=str(tmp_path / "a.jsonl"))
    b = make_searcher(verbose=True, log_path=str(tmp_path / "b.jsonl"), lowering="dense")
    c = make_searcher(subset_size=1000)
    space = {"param_grid": GRID}
    assert spec_hash(a.spec("grid", space)) == spec_hash(b.spec("grid", space))
    assert spec_hash(a.spec("grid", space)) != spec_hash(c.spec("grid", space))
    assert spec_hash(a.spec("grid", space)) != spec_hash(a.spec("grid", {"param_grid": {}}))


def test_resume_after_a_kill_trains_only_the_missing(tmp_path):
    log = tmp_path / "search.jsonl"
    killed = FakeTrainer(fail_after_buckets=1)
    with pytest.raises(RuntimeError, match="killed"):
        make_searcher(killed, log_path=str(log)).grid_search(GRID)
    assert len(lines(log)) == 1 + 2                 # header + the finished bucket (n=11)

    trainer = FakeTrainer()
    searcher = make_searcher(trainer, log_path=str(log), resume=True)
    searcher.grid_search(GRID)
    assert len(trainer.calls) == 1
    assert [(c.n_neurons, c.synaptic_resampling) for c in trainer.trained] == [
        (12, True), (12, False)]
    assert len(searcher.results) == 4               # merged: 2 from the log, 2 new
    assert len(lines(log)) == 1 + 4

    # Resuming a finished search trains nothing and gives the same results.
    again = FakeTrainer()
    resumed = make_searcher(again, log_path=str(log), resume=True)
    resumed.grid_search(GRID)
    assert again.calls == []
    assert [r.val_accuracy for r in resumed.results] == pytest.approx(
        [r.val_accuracy for r in searcher.results])
    assert [r.history for r in resumed.results] == [r.history for r in searcher.results]


def test_resume_with_more_seeds_trains_only_the_new_seeds(tmp_path):
    log = str(tmp_path / "search.jsonl")
    grid = {k: [v] for k, v in CONFIG_7198.items()}
    make_searcher(log_path=log, seeds_per_config=2).grid_search(grid)
    trainer = FakeTrainer()
    searcher = make_searcher(trainer, log_path=log, resume=True, seeds_per_config=3)
    searcher.grid_search(grid)
    assert len(trainer.trained) == 1
    assert searcher.results[0].n_seeds == 3


def test_resume_random_search_with_more_trials_reuses_the_first_draws(tmp_path):
    log = str(tmp_path / "search.jsonl")
    space = {"n_neurons": (9, 12), "n_dendrites": [5, 6, 7], "n_dendrite_inputs": (80, 120)}
    first = FakeTrainer()
    make_searcher(first, log_path=log, max_params=20_000, min_param_ratio=0.1
                  ).random_search(space, n_trials=5)
    more = FakeTrainer()
    s = make_searcher(more, log_path=log, resume=True, max_params=20_000, min_param_ratio=0.1)
    s.random_search(space, n_trials=8)
    assert not {trial_key(c) for c in first.trained} & {trial_key(c) for c in more.trained}
    assert len(first.trained) + len(more.trained) == len(s.results)


def test_each_search_call_gets_its_own_header(tmp_path):
    log = tmp_path / "search.jsonl"
    s = make_searcher(log_path=str(log))
    s.grid_search({k: [v] for k, v in CONFIG_7198.items()})
    s.random_search({**CONFIG_7198, "synaptic_resampling": [False]}, n_trials=1)
    headers = [r for r in lines(log) if r["type"] == "header"]
    assert [(h["search_index"], h["spec"]["strategy"]) for h in headers] == [
        (0, "grid"), (1, "random")]

    trainer = FakeTrainer()
    resumed = make_searcher(trainer, log_path=str(log), resume=True)
    resumed.grid_search({k: [v] for k, v in CONFIG_7198.items()})
    with pytest.raises(LogError, match=r"search #1 .*strategy \(log: \"random\", now: \"grid\"\)"):
        resumed.grid_search({k: [v] for k, v in CONFIG_7198.items()})
    assert trainer.calls == []


def test_a_complete_last_line_without_newline_counts_as_torn(tmp_path):
    log = tmp_path / "search.jsonl"
    make_searcher(log_path=str(log)).grid_search(GRID)
    log.write_text(log.read_text().rstrip("\n"))
    contents = read_log(str(log))
    assert contents.torn_line is not None and len(contents.trials) == 3


def test_corruption_before_the_last_line_is_an_error(tmp_path):
    log = tmp_path / "search.jsonl"
    make_searcher(log_path=str(log)).grid_search(GRID)
    text = log.read_text().splitlines()
    text[2] = text[2][:20]
    log.write_text("\n".join(text) + "\n")
    with pytest.raises(LogError, match=r"line 3 is not a valid log record and is not the last"):
        make_searcher(log_path=str(log), resume=True)


def test_resume_without_a_log_yet_starts_fresh(tmp_path):
    log = tmp_path / "search.jsonl"
    trainer = FakeTrainer()
    make_searcher(trainer, log_path=str(log), resume=True).grid_search(GRID)
    assert len(trainer.trained) == 4 and len(lines(log)) == 5


def test_retry_in_the_same_process_reuses_finished_buckets(tmp_path):
    trainer = FakeTrainer(fail_after_buckets=1)
    searcher = make_searcher(trainer, log_path=str(tmp_path / "search.jsonl"),
                             min_param_ratio=0.5)
    grid = {**GRID, "n_neurons": [10, 11, 12]}
    with pytest.raises(RuntimeError, match="killed"):
        searcher.grid_search(grid, max_trials=5)
    first_draw = trainer.calls[0]
    trainer.fail_after_buckets = None
    searcher.grid_search(grid, max_trials=5)
    retried = trainer.calls[1]
    finished = [c for c in first_draw if c.shape(784) == first_draw[0].shape(784)]
    assert retried == [c for c in first_draw if c not in finished]
    assert len(searcher.results) == 5
