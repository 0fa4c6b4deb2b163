"""One writer per log (issue 23, item 7): a second process given a log that a search is
writing gets a LogError naming that process, before it loads data or trains; readers
need no lock; the lock goes with its process, however it ends.

The holder is a real second process (a small search on the fake trainer that then sleeps);
everything that waits on it has a timeout.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap

import pytest

from dendrax import cli
from dendrax.search import HyperparameterSearcher, LogError, SearchLog, read_log
from dendrax.search import log as search_log
from conftest import CONFIG_7198, FakeTrainer, make_searcher

HERE = os.path.dirname(os.path.abspath(__file__))
GRID = {k: [v] for k, v in CONFIG_7198.items()}  # one config: a header and one trial
needs_flock = pytest.mark.skipif(search_log.fcntl is None,
                                 reason="no fcntl here: no lock across processes")

# Runs a one-model search on LOG (argv[1]), keeps the searcher, says READY and sleeps.
HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {here!r})
    from conftest import CONFIG_7198, make_searcher
    searcher = make_searcher(log_path=sys.argv[1], resume=True)
    searcher.grid_search({{k: [v] for k, v in CONFIG_7198.items()}})
    print("READY", flush=True)
    time.sleep(120)
""").format(here=HERE)

# Tries to open LOG as a writer; prints the LogError it gets (or OPENED).
SECOND = textwrap.dedent("""
    import sys
    sys.path.insert(0, {here!r})
    from conftest import make_searcher
    from dendrax.search import LogError
    try:
        make_searcher(log_path=sys.argv[1], resume=True)
    except LogError as e:
        print("REFUSED", e)
    else:
        print("OPENED")
""").format(here=HERE)


@contextlib.contextmanager
def holder(log, timeout=60.0):
    """A process that holds ``log`` (after a search wrote a header and a trial to it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(log)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "READY":
            proc.kill()
            raise AssertionError(f"the holder did not start: {line!r} "
                                 f"{proc.communicate(timeout=10)[1][-2000:]}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def second_process(log) -> str:
    done = subprocess.run([sys.executable, "-c", SECOND, str(log)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def locked(path) -> bool:
    """Whether anyone holds the log's lock (a flock of our own conflicts with any other)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        search_log.fcntl.flock(fd, search_log.fcntl.LOCK_EX | search_log.fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def sidecar(log):
    return log.parent / (log.name + ".lock")


@pytest.fixture(scope="module")
def held_log(tmp_path_factory):
    log = tmp_path_factory.mktemp("held") / "search.jsonl"
    with holder(log) as proc:
        yield log, proc


# ---- two processes -------------------------------------------------------------------

@needs_flock
def test_a_second_writer_is_refused_naming_the_first_before_loading_data(
        held_log, monkeypatch):
    log, proc = held_log
    before = log.read_bytes()

    def no_data(self):
        raise AssertionError("loaded the data of a search whose log is busy")

    monkeypatch.setattr(HyperparameterSearcher, "_load_data", no_data)
    trainer = FakeTrainer()
    for resume in (True, False):
        with pytest.raises(LogError, match=re.escape(f"{log}' is being written by another "
                                                     f"process: PID {proc.pid} on host ")) as info:
            make_searcher(trainer, log_path=str(log), resume=resume, data=None)
    assert "conftest" in str(info.value) and "since 20" in str(info.value)  # its command
    with pytest.raises(LogError, match=rf"PID {proc.pid} "):
        SearchLog(str(log), resume=True)
    os.symlink(log, log.parent / "alias.jsonl")  # another path to the same file
    with pytest.raises(LogError, match=rf"PID {proc.pid} "):
        SearchLog(str(log.parent / "alias.jsonl"), resume=True)
    assert trainer.calls == []

    refusal = second_process(log)  # and from a third process
    assert refusal.startswith(f"REFUSED the search log '{log}' is being written by another "
                              f"process: PID {proc.pid} on host "), refusal

    assert log.read_bytes() == before  # the first run's log is untouched
    assert proc.poll() is None


@needs_flock
def test_readers_take_no_lock_and_read_a_busy_log(held_log, capsys):
    log, proc = held_log
    contents = read_log(str(log))
    assert len(contents.headers) == 1 and len(contents.trials) == 1
    assert contents.torn_line is None
    assert cli.main(["show", str(log)]) == 0
    assert "12" in capsys.readouterr().out  # the one config's row (n_neurons=12)
    assert locked(log) and proc.poll() is None


@needs_flock
def test_after_the_holder_is_killed_a_new_writer_resumes(tmp_path):
    log = tmp_path / "search.jsonl"
    with holder(log) as proc:
        assert json.loads(sidecar(log).read_text())["pid"] == proc.pid
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert sidecar(log).exists()  # a kill leaves its note behind; the lock went with it
    assert not locked(log)

    trainer = FakeTrainer()
    searcher = make_searcher(trainer, log_path=str(log), resume=True)
    searcher.grid_search(GRID)
    assert trainer.calls == [] and len(searcher.results) == 1  # resumed, nothing retrained
    assert json.loads(sidecar(log).read_text())["pid"] == os.getpid()  # the note is ours now
    assert second_process(log).startswith(f"REFUSED the search log '{log}' is being written "
                                          f"by another process: PID {os.getpid()} on host ")
    contents = read_log(str(log))
    assert len(contents.headers) == 1 and len(contents.trials) == 1


@needs_flock
def test_a_process_that_exits_without_closing_releases_its_log(tmp_path):
    log = tmp_path / "search.jsonl"
    code = ("import sys; from dendrax.search import SearchLog; "
            "log = SearchLog(sys.argv[1]); log.begin(0, {'a': 1}); log.finish()")
    subprocess.run([sys.executable, "-c", code, str(log)], check=True, timeout=60)
    assert not locked(log) and not sidecar(log).exists()
    assert len(read_log(str(log)).headers) == 1


# ---- one process -----------------------------------------------------------------------

@needs_flock
def test_close_and_with_release_the_lock(tmp_path):
    log = tmp_path / "search.jsonl"
    with SearchLog(str(log)) as opened:
        assert locked(log) and sidecar(log).exists()
        opened.begin(0, {"a": 1})
        opened.finish()
    assert opened.closed and not locked(log) and not sidecar(log).exists()
    opened.close()  # twice is fine
    opened.begin(1, {"b": 2})
    with pytest.raises(LogError, match=r"can no longer write it, because it was closed"):
        opened.finish()
    assert len(read_log(str(log)).headers) == 1


@needs_flock
def test_an_abandoned_searcher_releases_its_log_when_collected(tmp_path):
    log = tmp_path / "search.jsonl"
    searcher = make_searcher(log_path=str(log))
    searcher.grid_search(GRID)
    assert locked(log)
    del searcher
    gc.collect()
    assert not locked(log) and not sidecar(log).exists()


@needs_flock
def test_a_refused_open_leaves_the_log_unlocked(tmp_path):
    log = tmp_path / "search.jsonl"
    with SearchLog(str(log)) as opened:
        opened.begin(0, {"a": 1})
        opened.finish()
    with pytest.raises(LogError, match="already holds a search"):
        SearchLog(str(log))
    assert not locked(log)


def test_a_second_searchlog_in_the_same_process_takes_the_log_over(tmp_path):
    """Defined, not refused: a notebook may build a new searcher with resume=True while
    the old one is still referenced. The newer one writes; the older one can no longer."""
    log = tmp_path / "search.jsonl"
    first = SearchLog(str(log))
    first.begin(0, {"a": 1})
    second = SearchLog(str(log), resume=True)  # empty so far: nothing to load
    with pytest.raises(LogError, match=r"because a newer SearchLog in this process .* "
                                       r"opened the same file"):
        first.finish()
    assert first.closed and not second.closed
    second.begin(0, {"a": 1})
    second.finish()
    third = make_searcher(log_path=str(log), resume=True)  # a searcher takes it over too
    assert second.closed and len(third._log.headers) == 1
    if search_log.fcntl is not None:
        assert locked(log)  # handed over, never released in between
    assert len(read_log(str(log)).headers) == 1


def test_without_fcntl_the_log_works_unlocked(tmp_path, monkeypatch):
    monkeypatch.setattr(search_log, "fcntl", None)  # as on Windows
    log = tmp_path / "search.jsonl"
    searcher = make_searcher(log_path=str(log))
    searcher.grid_search(GRID)
    assert not sidecar(log).exists()
    resumed = make_searcher(FakeTrainer(), log_path=str(log), resume=True)
    resumed.grid_search(GRID)
    assert len(read_log(str(log)).trials) == 1


@needs_flock
def test_a_file_system_without_locks_warns_and_writes(tmp_path, monkeypatch):
    real = search_log.fcntl

    class NoLocks:
        LOCK_EX, LOCK_NB, LOCK_UN = real.LOCK_EX, real.LOCK_NB, real.LOCK_UN

        @staticmethod
        def flock(fd, operation):
            raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(search_log, "fcntl", NoLocks)
    log = tmp_path / "search.jsonl"
    with pytest.warns(RuntimeWarning, match=r"cannot lock the search log .*No locks available"):
        make_searcher(log_path=str(log)).grid_search(GRID)
    assert len(read_log(str(log)).trials) == 1


FORK = textwrap.dedent("""
    import fcntl, os, sys
    from dendrax.search import LogError, SearchLog
    log = SearchLog(sys.argv[1])
    log.begin(0, {"a": 1})
    child = os.fork()
    if child == 0:
        try:
            log.finish()
        except LogError as e:
            print("CHILD", e, flush=True)
        sys.exit(0)  # a normal exit: finalizers and atexit run in the child
    os.waitpid(child, 0)
    fd = os.open(sys.argv[1], os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("PARENT released")
    except BlockingIOError:
        print("PARENT still holds the lock")
    log.finish()
""")


@needs_flock
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_neither_writes_nor_releases_the_parents_log(tmp_path):
    log = tmp_path / "search.jsonl"
    done = subprocess.run([sys.executable, "-c", FORK, str(log)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    child, parent = done.stdout.strip().splitlines()
    assert child.startswith("CHILD cannot write to the search log") and "forked child" in child
    assert parent == "PARENT still holds the lock"
    assert len(read_log(str(log)).headers) == 1  # written once, by the parent
