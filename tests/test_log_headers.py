"""Log headers follow the file, not positions (issue 29, cause 5), and a file whose headers
disagree (two logs joined with cat: cause 2) is refused, naming the lines.

Interruptions are simulated by monkeypatching: a KeyboardInterrupt from os.fsync (after the
bytes reached the file) or right after the write, and an OSError from the log's ``open``.
"""

import contextlib
import errno
import io
import json
import os

import pytest

from dendrax import cli
from dendrax.search import LogError, SearchLog, read_log, trial_key
from dendrax.search import log as log_module
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


# ---- I-7: Ctrl-C between the write and the bookkeeping, then the same call again -----------

def interrupt_fsync_once(monkeypatch, before=False):
    """os.fsync raises KeyboardInterrupt once: after the real fsync (the Ctrl-C lands on
    the way out), or before it (the bytes are in the file, not yet synced)."""
    real, state = os.fsync, {"armed": True}

    def fsync(fd):
        if state["armed"]:
            state["armed"] = False
            if before:
                raise KeyboardInterrupt
            real(fd)
            raise KeyboardInterrupt
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return state


@pytest.mark.parametrize("before_fsync", [False, True])
def test_I7_interrupt_between_write_and_bookkeeping_then_retry(tmp_path, monkeypatch,
                                                               before_fsync):
    log = tmp_path / "w.jsonl"
    interrupt_fsync_once(monkeypatch, before=before_fsync)
    trainer = FakeTrainer()
    s = make_searcher(trainer, log_path=str(log))
    with pytest.raises(KeyboardInterrupt):
        s.grid_search(GRID)                       # the first bucket's write is interrupted
    first_bucket = [r["key"] for r in records(log) if r["type"] == "trial"]
    assert [r["type"] for r in records(log)] == ["header", "trial", "trial"]
    s.grid_search(GRID)                           # the notebook cell, run again
    s.grid_search(NEXT)                           # the next cell
    # The interrupted bucket's models were in the file: the retry hands only the others
    # to the trainer (a FakeTrainer's calls are what it was handed).
    assert [len(call) for call in trainer.calls] == [4, 2, 2]
    assert not set(first_bucket) & {trial_key(c) for c in trainer.calls[1]}
    assert_one_search(log, 2, [trained_keys(trainer)])
    assert len(s.results) == 4 + 2
    s.close()
    resume_trains_nothing(log, GRID, NEXT)


def test_I7_interrupt_after_the_write_and_in_the_bookkeeping(tmp_path, monkeypatch):
    """The Ctrl-C lands right after the write, and a second one in the reading back: the
    next call on the same SearchLog still finds the header and the trials in the file."""
    path = str(tmp_path / "w.jsonl")
    log = SearchLog(path)
    spec = {"space": "a"}
    trial = records_of(tmp_path)[1]
    real_write, real_catch_up = SearchLog._write, SearchLog._catch_up
    state = {"written": False}

    def write_then_interrupt(self, text):
        real_write(self, text)
        state["written"] = True
        raise KeyboardInterrupt

    def catch_up(self):
        if state["written"]:
            state["written"] = False
            raise KeyboardInterrupt              # the bookkeeping is interrupted too
        return real_catch_up(self)

    monkeypatch.setattr(SearchLog, "_write", write_then_interrupt)
    monkeypatch.setattr(SearchLog, "_catch_up", catch_up)
    log.begin(0, spec)
    with pytest.raises(KeyboardInterrupt):
        log.append([trial])
    monkeypatch.setattr(SearchLog, "_write", real_write)
    log.begin(0, spec)                          # the same call again
    log.append([trial])
    log.finish()
    assert [r["type"] for r in records(path)] == ["header", "trial"]
    assert list(log.completed) == [trial["key"]] and len(log.headers) == 1
    log.begin(1, {"space": "b"})
    log.finish()
    log.close()
    assert [r["search_index"] for r in records(path)] == [0, 0, 1]
    again = SearchLog(path, resume=True)
    again.begin(0, spec)
    again.begin(1, {"space": "b"})
    again.close()


def records_of(tmp_path):
    """A real header and trial lines, from a small search."""
    path = tmp_path / "source.jsonl"
    make_searcher(log_path=str(path)).grid_search(GRID)
    return records(path)


# ---- K-15: a failed write, the problem fixed, the same call again ---------------------------

def fail_log_open_once(monkeypatch, on_call, partial=None, also_truncate=False):
    """The log module's ``open`` for appending raises OSError (EIO) on call ``on_call``.
    ``partial``: first write that many characters of the text (a write cut short), and
    with ``also_truncate`` the cleanup's truncation fails too."""
    state = {"appends": 0, "failing": False}

    class Failing:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            if partial:
                self.f.write(text[:partial])
                self.f.flush()
            raise OSError(errno.EIO, "Input/output error")

    def fake_open(path, mode="r", *args, **kwargs):
        if mode == "a" and os.fspath(path).endswith(".jsonl"):
            state["appends"] += 1
            if state["appends"] == on_call:
                state["failing"] = also_truncate
                return Failing(open(path, mode, *args, **kwargs))
        if mode == "r+b" and state["failing"]:
            state["failing"] = False
            raise OSError(errno.EROFS, "Read-only file system")
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(log_module, "open", fake_open, raising=False)
    return state


@pytest.mark.parametrize("failing_write", [1, 2])
def test_K15_failed_write_then_retry_in_the_same_searcher(tmp_path, monkeypatch,
                                                          failing_write):
    """Write 1 holds the header and bucket 1, write 2 bucket 2 (of 3)."""
    log = tmp_path / "k.jsonl"
    trainer = FakeTrainer()
    s = make_searcher(trainer, log_path=str(log), min_param_ratio=0.5)
    fail_log_open_once(monkeypatch, failing_write)
    with pytest.raises(LogError, match="Input/output error.*resumed once the problem"):
        s.grid_search(GRID3)
    logged = [r for r in records(log) if r["type"] == "trial"] if log.stat().st_size else []
    assert len(logged) == 2 * (failing_write - 1)
    s.grid_search(GRID3)                          # the problem fixed, the same call again
    assert len(s.results) == 6
    keys = assert_one_search(log, 1, [trained_keys(trainer)])
    assert len(keys) == 6
    # The retry is handed what the log lacks: the lost bucket and the one never reached.
    assert [len(call) for call in trainer.calls] == [6, 6 - 2 * (failing_write - 1)]
    s.close()
    resume_trains_nothing(log, GRID3, min_param_ratio=0.5)


def test_K15_write_cut_short_and_not_cut_back(tmp_path, monkeypatch):
    """The write fails after one and a half lines, and cutting it back fails too: the whole
    line counts as written, the half line is cut off by the next write."""
    path = str(tmp_path / "k.jsonl")
    trials = records_of(tmp_path)[1:]
    log = SearchLog(path)
    log.begin(0, {"space": "a"})
    # The header and the first trial line reach the file, then 20 characters of the second.
    whole = len(json.dumps(log._pending_header)) + len(json.dumps(trials[0])) + 2
    fail_log_open_once(monkeypatch, 1, partial=whole + 20, also_truncate=True)
    with pytest.raises(LogError, match="Input/output error"):
        log.append(trials[:2])
    assert list(log.completed) == [trials[0]["key"]] and len(log.headers) == 1
    log.append(trials[:2])                        # the same records again
    log.close()
    assert [r["type"] for r in records(path)] == ["header", "trial", "trial"]
    assert [r["key"] for r in records(path)[1:]] == [t["key"] for t in trials[:2]]
    assert read_log(path).torn_line is None


def test_a_header_on_disk_is_reused_not_rewritten(tmp_path):
    path = str(tmp_path / "h.jsonl")
    log = SearchLog(path)
    log.begin(0, {"space": "a"})
    log.finish()
    log.begin(0, {"space": "a"})                  # a retried call: the header is there
    log.finish()
    with pytest.raises(LogError, match=r"search #0 was interrupted \(or failed\) before it "
                                       r"finished.*from line 1\).*space \(log: \"a\", now: "
                                       r"\"b\"\)"):
        log.begin(0, {"space": "b"})
    with pytest.raises(LogError, match=r"search #2 .* headers up to search #0 only"):
        log.begin(2, {"space": "c"})
    log.close()
    assert len(records(path)) == 1


def test_I9_another_search_after_an_interrupted_one_says_so(tmp_path):
    """A notebook: a search interrupted after one bucket, then another grid on the same
    searcher. It is refused (the interrupted call holds search #0), saying why."""
    log = tmp_path / "jup.jsonl"
    trainer = FakeTrainer(fail_after_buckets=1)
    s = make_searcher(trainer, log_path=str(log))
    with pytest.raises(RuntimeError, match="killed"):
        s.grid_search(GRID)
    trainer.fail_after_buckets = None
    with pytest.raises(LogError, match=r"this searcher's search #0 was interrupted \(or "
                                       r"failed\) before it finished.*from line 1\)\. Run "
                                       r"that search call again"):
        s.grid_search(NEXT)
    s.grid_search(GRID)                           # finishing it works, then the next one
    s.grid_search(NEXT)
    assert [len(call) for call in trainer.calls] == [4, 2, 2]
    assert_one_search(log, 2)


# ---- two searchers with resume=True on one log ----------------------------------------

def test_X3_two_searchers_on_one_log(tmp_path):
    log = tmp_path / "two.jsonl"
    a = make_searcher(log_path=str(log), resume=True)
    b = make_searcher(log_path=str(log), resume=True)   # takes the log over
    with pytest.raises(LogError, match="can no longer write it"):
        a.grid_search(GRID)
    assert not log.stat().st_size
    b.grid_search(GRID)
    b.grid_search(NEXT)
    assert_one_search(log, 2)
    b.close()
    resume_trains_nothing(log, GRID, NEXT)


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
