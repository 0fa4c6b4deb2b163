"""A file whose headers disagree (two logs joined with cat: issue 29, cause 2) is refused,
naming the lines; a legitimate resumed log reads fine."""

import contextlib
import io
import json

import pytest

from dendrax import cli
from dendrax.search import LogError, read_log, trial_key
from conftest import FakeTrainer, make_searcher

GRID = {"n_neurons": [11, 12], "n_dendrites": [6], "n_dendrite_inputs": [96],
        "synaptic_resampling": [True, False]}  # 4 configs in 2 shape buckets
GRID3 = {**GRID, "n_neurons": [10, 11, 12]}    # 6 configs in 3 shape buckets
NEXT = {**GRID, "n_neurons": [11], "n_dendrites": [7]}  # the next cell: 2 new configs


def records(path):
    return [json.loads(line) for line in open(path).read().splitlines()]


def assert_one_search(path, n_calls, trainers=()):
    """Exactly one header per search index, in order; every trial once; and a fresh
    resume accepts the log."""
    lines = records(path)
    assert [r["search_index"] for r in lines if r["type"] == "header"] == list(range(n_calls))
    keys = [r["key"] for r in lines if r["type"] == "trial"]
    assert len(keys) == len(set(keys)), "a model logged twice"
    for trained in trainers:  # every model any trainer finished is in the log
        assert {r["key"] for r in lines if r["type"] == "trial"} >= set(trained)
    contents = read_log(str(path))
    assert len(contents.headers) == n_calls and len(contents.trials) == len(keys)
    return keys


def trained_keys(trainer):
    return [trial_key(c) for c in trainer.trained]


def resume_trains_nothing(path, *grids, **kwargs):
    trainer = FakeTrainer()
    resumed = make_searcher(trainer, log_path=str(path), resume=True, **kwargs)
    for grid in grids:
        resumed.grid_search(grid)
    resumed.close()
    assert trainer.calls == []
    return resumed


# ---- concatenated logs, and other headers that disagree --------------------------------

def two_logs(tmp_path):
    """clean: 2 epochs, subset 2,000; base: 1 epoch, subset 1,000; overlapping configs."""
    clean, base = tmp_path / "clean.jsonl", tmp_path / "base.jsonl"
    make_searcher(log_path=str(clean), n_epochs=2, subset_size=2000).grid_search(GRID)
    make_searcher(log_path=str(base), n_epochs=1, subset_size=1000).grid_search(NEXT)
    return clean, base


def show(path):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = cli.main(["show", str(path)])
    return status, err.getvalue()


def test_X4_concatenated_logs_are_refused(tmp_path):
    clean, base = two_logs(tmp_path)
    merged = tmp_path / "merged.jsonl"
    merged.write_text(clean.read_text() + base.read_text())
    second = len(clean.read_text().splitlines()) + 1
    with pytest.raises(LogError) as error:
        read_log(str(merged))
    message = str(error.value)
    assert message.startswith(f"{merged}: line {second}: a second header for search #0")
    assert "at line 1" in message and "n_epochs (line 1: 2, line 6: 1)" in message
    assert "more than one search" in message and "\n" not in message
    # dendrax show: one line, exit 2; a resume is refused before anything trains.
    status, err = show(merged)
    assert status == 2 and err.count("\n") == 1 and f"line {second}" in err, err
    trainer = FakeTrainer()
    with pytest.raises(LogError, match=f"line {second}: a second header"):
        make_searcher(trainer, log_path=str(merged), resume=True, n_epochs=2,
                      subset_size=2000)
    assert trainer.calls == []


def test_X4_two_calls_of_different_searches_mixed(tmp_path):
    """Search #1's header comes from a searcher with other settings than #0's."""
    clean, base = two_logs(tmp_path)
    other = tmp_path / "other.jsonl"
    s = make_searcher(log_path=str(other), n_epochs=1, subset_size=1000)
    s.grid_search(NEXT)
    s.grid_search(GRID)
    s.close()
    other_lines = other.read_text().splitlines()
    call1 = [line for line in other_lines if json.loads(line)["search_index"] == 1]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(clean.read_text() + "\n".join(call1) + "\n")
    with pytest.raises(LogError, match=r"mixed.jsonl: line 6: the header of search #1 has "
                                       r"other settings than search #0's at line 1.*"
                                       r"n_epochs \(line 1: 2, line 6: 1\)"):
        read_log(str(mixed))


def header_and_trials(tmp_path):
    lines = (tmp_path / "calls.jsonl")
    s = make_searcher(log_path=str(lines))
    s.grid_search(GRID)
    s.grid_search(NEXT)
    s.close()
    text = lines.read_text().splitlines()
    assert [json.loads(line)["type"] for line in text] == ["header"] + ["trial"] * 4 + [
        "header"] + ["trial"] * 2
    return text


def write(tmp_path, lines):
    path = tmp_path / "edited.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_headers_out_of_order_or_missing_are_refused(tmp_path):
    text = header_and_trials(tmp_path)
    h0, t0, h1, t1 = text[0], text[1:5], text[5], text[6:]
    with pytest.raises(LogError, match=r"line 1: the header of search #1, but it is the first "
                                       r"header, so search #0 has no header"):
        read_log(write(tmp_path, [h1, *t1, h0, *t0]))
    with pytest.raises(LogError, match=r"line 1: a trial of search #0 before the header"):
        read_log(write(tmp_path, [*t0, h0, h1, *t1]))
    with pytest.raises(LogError, match=r"line 6: a trial of search #1 before the header of "
                                       r"search #1"):
        read_log(write(tmp_path, [h0, *t0, *t1, h1]))
    gap = json.loads(h1)
    gap["search_index"] = 2
    with pytest.raises(LogError, match=r"line 6: the header of search #2, but the headers "
                                       r"before it \(the last at line 1\) end at search #0, so "
                                       r"search #1 has no header"):
        read_log(write(tmp_path, [h0, *t0, json.dumps(gap)]))
    bad = json.loads(h1)
    bad["search_index"] = "1"
    with pytest.raises(LogError, match=r"line 6: invalid 'header' record: 'search_index' must "
                                       r"be an integer >= 0, got '1'"):
        read_log(write(tmp_path, [h0, *t0, json.dumps(bad)]))


def test_a_repeated_header_of_the_same_search_is_read_once(tmp_path):
    """What the old I-7 bug wrote (header0, trial0, header0, trial0, header1, trial1): the
    same index with the same spec hash is the same search, so it reads, shows and resumes."""
    text = header_and_trials(tmp_path)
    h0, t0, h1, t1 = text[0], text[1:5], text[5], text[6:]
    path = write(tmp_path, [h0, *t0[:2], h0, *t0[2:], h1, *t1])
    contents = read_log(path)
    assert [h["search_index"] for h in contents.headers] == [0, 1]
    assert contents.header_lines == [1, 7] and len(contents.trials) == 6
    assert show(path)[0] == 0
    resume_trains_nothing(path, GRID, NEXT)


def test_a_legitimately_resumed_log_reads_fine(tmp_path):
    """Killed in call 0, resumed; call 1; resumed again with more seeds, so call 0's new
    seeds follow call 1's header: headers 0, 1 in order, trials after their headers."""
    log = tmp_path / "resumed.jsonl"
    with pytest.raises(RuntimeError, match="killed"):
        make_searcher(FakeTrainer(fail_after_buckets=1), log_path=str(log)).grid_search(GRID)
    s = make_searcher(log_path=str(log), resume=True)
    s.grid_search(GRID)
    s.grid_search(NEXT)
    s.close()
    more = make_searcher(log_path=str(log), resume=True, seeds_per_config=2)
    more.grid_search(GRID)
    more.grid_search(NEXT)
    more.close()
    lines = records(log)
    indices = [(r["type"], r["search_index"]) for r in lines]
    assert indices.index(("header", 1)) < max(i for i, x in enumerate(indices)
                                              if x == ("trial", 0))
    assert_one_search(log, 2)
    assert show(log)[0] == 0
    resume_trains_nothing(log, GRID, NEXT)
