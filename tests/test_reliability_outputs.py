"""Issue 29, cause 1: output paths are checked before anything trains, and written whole.

Each test is named after its case in the reliability report (K-3, K-5, K-6, K-7, K-11, K-14,
X-1, X-2). The command line runs in this process with the fake trainer (which records every
call, so "nothing trained" is ``trainer.calls == []``). The cases that need root (a small
tmpfs for a full disk, ``chattr +a`` for an append-only log) are simulated by making the
system call fail with the same errno.
"""

from __future__ import annotations

import errno
import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest

from dendrax import cli
from dendrax.errors import DendraxError
from dendrax.search import HyperparameterSearcher
from dendrax.search import log as search_log
from dendrax.search import results as results_module
from dendrax.search.log import LogError
from dendrax.search.record import read_search
from dendrax.search.results import (OutputError, check_output, prepare_folder, write_atomic,
                                    write_json)
from conftest import FakeTrainer, fake_data, make_searcher

GRID = {"n_neurons": [4, 8], "n_dendrites": [2, 4]}
SPEC = {"max_params": 8000, "min_param_ratio": 0.01, "n_epochs": 2, "grid": GRID}


@pytest.fixture
def trainer(monkeypatch):
    """The CLI's searchers train with this fake trainer on fake data."""
    fake = FakeTrainer()
    monkeypatch.setattr(cli, "HyperparameterSearcher", functools.partial(
        HyperparameterSearcher, data=fake_data(), trainer=fake))
    monkeypatch.setattr("dendrax.population.compile_cache.enable_compilation_cache",
                        lambda: None)
    return fake


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    return path


def run_main(capsys, *args) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `dendrax ARGS`, run in this process."""
    capsys.readouterr()
    status = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def one_error_line(err: str) -> str:
    """The CLI's error: exactly one line `dendrax: error: ...`, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dendrax: error: "), err
    assert "Traceback" not in err
    return lines[0]


def finished_log(tmp_path, name="run.jsonl") -> Path:
    """A log holding a whole search of GRID (4 configs, one seed each)."""
    path = tmp_path / name
    with make_searcher(log_path=str(path), max_params=8000, min_param_ratio=0.01,
                       n_epochs=2) as searcher:
        searcher.grid_search(GRID)
    return path


# ---- K-6 / K-7: --out and --report checked before training -------------------------------

@pytest.mark.parametrize("flag", ["--out", "--report"])
def test_K6_out_in_a_missing_folder_fails_before_training(tmp_path, spec, trainer, capsys,
                                                          flag):
    target = tmp_path / "nodir" / "out.json"
    status, out, err = run_main(capsys, "search", spec, "--quiet", flag, target)
    line = one_error_line(err)
    assert status == 2
    assert flag in line and str(target) in line and "does not exist" in line
    assert trainer.calls == []  # nothing trained
    assert not (tmp_path / "nodir").exists()


@pytest.mark.parametrize("flag", ["--out", "--report"])
def test_K7_out_naming_a_directory_fails_before_training(tmp_path, spec, trainer, capsys,
                                                         flag):
    folder = tmp_path / "results"
    folder.mkdir()
    status, out, err = run_main(capsys, "search", spec, "--quiet", flag, folder)
    line = one_error_line(err)
    assert status == 2
    assert flag in line and str(folder) in line and "is a directory" in line
    assert trainer.calls == []
    assert list(folder.iterdir()) == []


def test_K6_K7_out_in_a_folder_that_cannot_be_written_fails_before_training(
        tmp_path, spec, trainer, capsys, monkeypatch):
    """A read-only folder (simulated: creating a file there fails with EACCES, as for a
    non-root user): refused before training, by the probe the check makes."""
    real_open = os.open
    locked = str(tmp_path / "locked")
    os.mkdir(locked)

    def no_new_files(path, flags, *args, **kwargs):
        if os.path.dirname(os.fspath(path)) == locked and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_new_files)
    status, out, err = run_main(capsys, "search", spec, "--quiet", "--out",
                                os.path.join(locked, "res.json"))
    line = one_error_line(err)
    assert status == 2 and "Permission denied" in line and "res.json" in line
    assert trainer.calls == []


def test_out_and_report_naming_one_file_is_refused(tmp_path, spec, trainer, capsys):
    target = tmp_path / "both.json"
    status, out, err = run_main(capsys, "search", spec, "--quiet", "--out", target,
                                "--report", tmp_path / "." / "both.json")
    line = one_error_line(err)
    assert status == 2 and "--report" in line and "--out" in line
    assert trainer.calls == [] and not target.exists()


def test_an_empty_out_is_an_error_not_ignored(tmp_path, spec, trainer, capsys):
    status, out, err = run_main(capsys, "search", spec, "--quiet", "--out", "")
    assert status == 2 and "--out" in one_error_line(err)
    assert trainer.calls == []


def test_good_outputs_are_written_after_the_search(tmp_path, spec, trainer, capsys):
    out, report = tmp_path / "res.json", tmp_path / "report.json"
    status, stdout, err = run_main(capsys, "search", spec, "--quiet", "--log",
                                   tmp_path / "run.jsonl", "--out", out, "--report", report)
    assert status == 0, err
    assert len(json.loads(out.read_text())) == 4
    assert len(json.loads(report.read_text())["results"]) == 4
    assert f"Results saved to {out}" in stdout and f"Report saved to {report}" in stdout
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ---- an output that is an input of the same command ---------------------------

@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hardlink"])
def test_X1_out_naming_the_log_is_refused_and_the_log_kept(tmp_path, spec, trainer, capsys,
                                                           monkeypatch, spelling):
    log = finished_log(tmp_path, "run.json")
    before = log.read_bytes()
    monkeypatch.chdir(tmp_path)
    out = {"same": str(log), "relative": "./sub/../run.json", "symlink": "link.json",
           "hardlink": "hard.json"}[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "symlink":
        os.symlink(log, tmp_path / "link.json")
    if spelling == "hardlink":
        os.link(log, tmp_path / "hard.json")
    status, stdout, err = run_main(capsys, "search", spec, "--quiet", "--log", log,
                                   "--resume", "--out", out)
    line = one_error_line(err)
    assert status == 2 and "--out" in line and "the log" in line
    assert trainer.calls == []
    assert log.read_bytes() == before
    assert len(read_search(str(log)).results) == 4  # still a log, resumable


def test_X1_report_naming_the_log_of_a_new_search_is_refused(tmp_path, spec, trainer, capsys):
    log = tmp_path / "new.jsonl"
    status, stdout, err = run_main(capsys, "search", spec, "--quiet", "--log", log,
                                   "--report", log)
    line = one_error_line(err)
    assert status == 2 and "--report" in line and "the log" in line
    assert trainer.calls == [] and not log.exists()


def test_X1_out_naming_the_spec_files_log_path_is_refused(tmp_path, trainer, capsys):
    """The log named inside the spec (log_path) counts as well as --log."""
    log = tmp_path / "in-spec.jsonl"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "log_path": str(log)}))
    status, stdout, err = run_main(capsys, "search", spec, "--quiet", "--out", log)
    assert status == 2 and "the log" in one_error_line(err)
    assert trainer.calls == []


@pytest.mark.parametrize("flag", ["--out", "--report"])
def test_X2_out_naming_the_spec_is_refused_and_the_spec_kept(tmp_path, spec, trainer, capsys,
                                                             flag):
    before = spec.read_bytes()
    status, stdout, err = run_main(capsys, "search", spec, "--quiet", flag, spec)
    line = one_error_line(err)
    assert status == 2 and flag in line and "the spec" in line and str(spec) in line
    assert trainer.calls == []
    assert spec.read_bytes() == before


def test_X2_log_naming_the_spec_is_refused(tmp_path, spec, trainer, capsys):
    before = spec.read_bytes()
    status, stdout, err = run_main(capsys, "search", spec, "--quiet", "--log", spec,
                                   "--resume")
    line = one_error_line(err)
    assert status == 2 and "--log" in line and "spec" in line
    assert trainer.calls == [] and spec.read_bytes() == before


# ---- K-5: a full disk never leaves a truncated file over the good one --------------------

def _full_disk_after(monkeypatch, n_bytes: int) -> None:
    """os.write takes ``n_bytes`` in all, then fails with ENOSPC (a full disk)."""
    real_write = os.write
    left = [n_bytes]

    def write(fd, data):
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = real_write(fd, bytes(data[:left[0]]))
        left[0] -= written
        return written

    monkeypatch.setattr(os, "write", write)


def test_K5_full_disk_for_out_keeps_the_previous_file(tmp_path, spec, trainer, capsys,
                                                      monkeypatch):
    out = tmp_path / "res.json"
    out.write_text('["the previous good results"]\n')
    before = out.read_bytes()
    log = tmp_path / "run.jsonl"
    _full_disk_after(monkeypatch, 100)  # the log is written by file objects, not os.write
    status, stdout, err = run_main(capsys, "search", spec, "--quiet", "--log", log,
                                   "--out", out)
    line = one_error_line(err)
    assert status == 2
    assert str(out) in line and "No space left on device" in line
    assert "previous file" in line and str(log) in line  # where the results still are
    assert out.read_bytes() == before  # whole, not a 100-byte prefix of the new one
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []
    assert len(read_search(str(log)).results) == 4  # the log (elsewhere) is intact


def test_K5_full_disk_in_the_api_raises_an_output_error_and_keeps_the_file(
        tmp_path, monkeypatch):
    searcher = make_searcher(max_params=8000, min_param_ratio=0.01, n_epochs=2)
    searcher.grid_search(GRID)
    for save in ("save_results", "save_report", "save_pareto"):
        path = tmp_path / f"{save}.json"
        getattr(searcher, save)(str(path))
        before = path.read_bytes()
        with monkeypatch.context() as patch:
            _full_disk_after(patch, 10)
            with pytest.raises(OutputError, match="No space left on device") as caught:
                getattr(searcher, save)(str(path))
        assert isinstance(caught.value, DendraxError) and isinstance(caught.value, OSError)
        assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_K5_a_failing_rename_or_fsync_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    write_json(str(path), {"a": 1})
    for name in ("fsync", "replace"):
        with monkeypatch.context() as patch:
            def fail(*args, _name=name):
                raise OSError(errno.ENOSPC, "No space left on device")
            patch.setattr(os, name, fail)
            with pytest.raises(OutputError, match="the previous file there is left"):
                write_json(str(path), {"a": 2})
        assert json.loads(path.read_text()) == {"a": 1}
        assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_K5_an_interrupt_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    write_json(str(path), {"a": 1})

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_json(str(path), {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


# ---- the API: validated at call time -----------------------------------------------------

def test_api_save_methods_check_the_path_at_call_time(tmp_path):
    searcher = make_searcher(max_params=8000, min_param_ratio=0.01, n_epochs=2)
    searcher.grid_search(GRID)
    for save in ("save_results", "save_report", "save_pareto"):
        with pytest.raises(OutputError, match="does not exist"):
            getattr(searcher, save)(str(tmp_path / "nodir" / "x.json"))
        with pytest.raises(OutputError, match="is a directory"):
            getattr(searcher, save)(str(tmp_path))
        with pytest.raises(OutputError, match="must be the path of a file"):
            getattr(searcher, save)("")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_api_save_results_over_the_searchers_own_log_is_refused(tmp_path):
    log = tmp_path / "run.jsonl"
    searcher = make_searcher(log_path=str(log), max_params=8000, min_param_ratio=0.01,
                             n_epochs=2)
    searcher.grid_search(GRID)
    before = log.read_bytes()
    with pytest.raises(OutputError, match="search log"):
        searcher.save_results(str(log))
    assert log.read_bytes() == before
    searcher.close()


def test_api_a_record_read_from_a_log_never_overwrites_it(tmp_path):
    log = finished_log(tmp_path)
    before = log.read_bytes()
    record = read_search(str(log))
    for save in ("save_results", "save_report", "save_pareto"):
        with pytest.raises(OutputError, match="search log"):
            getattr(record, save)(str(log))
    assert log.read_bytes() == before


def test_check_output_refuses_fifos_and_inputs(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        check_output(str(fifo), "--out")
    spec = tmp_path / "spec.json"
    spec.write_text("{}")
    with pytest.raises(OutputError, match="it is the spec"):
        check_output(str(tmp_path / "sub" / ".." / "spec.json"), "--out",
                     {"the spec": str(spec)})
    assert check_output(str(tmp_path / "new.json"), "--out", {"the spec": str(spec)}) == \
        str(tmp_path / "new.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "spec.json"]  # no probe left


def test_write_atomic_keeps_the_usual_permissions_and_writes_bytes(tmp_path):
    path = tmp_path / "figure.png"
    write_atomic(str(path), b"\x89PNG")
    plain = tmp_path / "plain"
    plain.write_text("")
    assert path.read_bytes() == b"\x89PNG"
    assert (path.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)


# ---- K-14: plot --out FILE ---------------------------------------------------------------

def test_K14_plot_out_naming_a_file_is_one_line_and_the_file_kept(tmp_path, capsys):
    log = finished_log(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("keep me\n")
    status, out, err = run_main(capsys, "plot", log, "--out", afile)
    line = one_error_line(err)
    assert status == 2 and "--out" in line and str(afile) in line and "is a file" in line
    assert afile.read_text() == "keep me\n"


def test_K14_plot_out_under_a_file_is_one_line(tmp_path, capsys):
    log = finished_log(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("keep me\n")
    status, out, err = run_main(capsys, "plot", log, "--out", afile / "figures")
    line = one_error_line(err)
    assert status == 2 and "--out" in line and "figures" in line


def test_K14_plot_out_naming_the_log_is_refused(tmp_path, capsys):
    log = finished_log(tmp_path)
    before = log.read_bytes()
    status, out, err = run_main(capsys, "plot", log, "--out", log)
    assert status == 2 and "is a file" in one_error_line(err)
    assert log.read_bytes() == before


def test_plot_search_checks_its_folder_before_drawing(tmp_path):
    from dendrax.plots import plot_search

    log = finished_log(tmp_path)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        plot_search(read_search(str(log)), str(tmp_path / "afile"))
    (tmp_path / "figs" / "halving.png").mkdir(parents=True)  # a figure's path is a folder
    with pytest.raises(OutputError, match="is a directory"):
        plot_search(read_search(str(log)), str(tmp_path / "figs"))
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["halving.png"]


def test_a_figure_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from dendrax.plots import accuracy_vs_params

    log = finished_log(tmp_path)
    results = list(read_search(str(log)).results)
    path = tmp_path / "acc.svg"
    accuracy_vs_params(results, str(path))
    before = path.read_bytes()
    assert before.lstrip().startswith(b"<?xml") or b"<svg" in before[:500]
    _full_disk_after(monkeypatch, 50)
    with pytest.raises(OutputError, match="No space left on device"):
        accuracy_vs_params(results, str(path))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_prepare_folder_creates_nested_folders(tmp_path):
    assert prepare_folder(str(tmp_path / "a" / "b")) == str(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    with pytest.raises(OutputError, match="must be the path of a folder"):
        prepare_folder("")


# ---- K-3: the log moved or deleted while the search runs ---------------------------------

@pytest.mark.parametrize("how", ["moved", "deleted"])
def test_K3_log_moved_or_deleted_mid_run_is_one_line(tmp_path, spec, capsys, monkeypatch,
                                                     how):
    log = tmp_path / "run.jsonl"
    moved = tmp_path / "elsewhere.jsonl"

    class Mover:
        def __init__(self):
            self.n = 0

        def on_result(self, result):
            self.n += 1
            if self.n == 1:
                os.rename(log, moved) if how == "moved" else os.unlink(log)

    fake = FakeTrainer()
    monkeypatch.setattr(cli, "HyperparameterSearcher", functools.partial(
        HyperparameterSearcher, data=fake_data(), trainer=fake, callbacks=[Mover()]))
    monkeypatch.setattr("dendrax.population.compile_cache.enable_compilation_cache",
                        lambda: None)
    # exact padding: several buckets, so a write comes after the move
    status, out, err = run_main(capsys, "search", spec, "--quiet", "--log", log,
                                "--padding", "exact")
    line = one_error_line(err)
    assert status == 2 and str(log) in line and "moved or deleted" in line
    if how == "moved":  # the moved copy is a valid log, and resuming from it completes it
        done = len(read_search(str(moved)).results)
        assert 1 <= done < 4
        fake.calls.clear()
        monkeypatch.setattr(cli, "HyperparameterSearcher", functools.partial(
            HyperparameterSearcher, data=fake_data(), trainer=fake))
        status, out, err = run_main(capsys, "search", spec, "--quiet", "--log", moved,
                                    "--resume")
        assert status == 0, err
        assert len(fake.trained) == 4 - done
        assert len(read_search(str(moved)).results) == 4


def test_K3_log_moved_mid_run_in_the_api_raises_log_error(tmp_path):
    log = tmp_path / "run.jsonl"
    calls = []

    def mover(result):
        calls.append(result)
        if len(calls) == 1:
            os.rename(log, tmp_path / "moved.jsonl")

    searcher = make_searcher(log_path=str(log), max_params=8000, min_param_ratio=0.01,
                             n_epochs=2, padding="exact", callbacks=[mover])
    with pytest.raises(LogError, match="moved or deleted"):
        searcher.grid_search(GRID)
    searcher.close()


# ---- K-11: --resume on a torn log whose tail cannot be cut off (append-only) --------------

def test_K11_resume_on_a_torn_append_only_log_is_one_line(tmp_path, spec, trainer, capsys,
                                                          monkeypatch):
    log = tmp_path / "run.jsonl"
    status, out, err = run_main(capsys, "search", spec, "--quiet", "--log", log)
    assert status == 0, err
    with open(log, "a") as f:
        f.write('{"type": "trial", "key": "cut sh')  # a run killed mid-write
    before = log.read_bytes()
    trainer.calls.clear()

    real_open = open

    def append_only(file, mode="r", *args, **kwargs):
        # chattr +a: opening for writing without O_APPEND fails with EPERM
        if os.fspath(file) == str(log) and ("+" in mode or "w" in mode):
            raise PermissionError(errno.EPERM, "Operation not permitted", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(search_log, "open", append_only, raising=False)
    with pytest.warns(RuntimeWarning, match="torn last line"):
        status, out, err = run_main(capsys, "search", spec, "--quiet", "--log", log,
                                    "--resume")
    line = one_error_line(err)
    assert status == 2 and str(log) in line and "incomplete line" in line
    assert "Operation not permitted" in line
    assert trainer.calls == []
    assert log.read_bytes() == before


def test_output_error_is_exported_and_is_a_dendrax_error():
    import dendrax.search

    assert dendrax.search.OutputError is OutputError
    assert issubclass(OutputError, DendraxError) and issubclass(OutputError, OSError)
    assert results_module.write_atomic is write_atomic


# ---- from_arrays: inputs the fuzz test (tests/test_fuzz.py::test_fuzz_from_arrays) found -------

def _good_arrays():
    rng = np.random.default_rng(0)
    y, yt = np.arange(40) % 4, np.arange(8) % 4
    return {"x_train": rng.normal(size=(40, 6)), "y_train": y,
            "x_test": rng.normal(size=(8, 6)), "y_test": yt}


HUGE = 10**5000  # Python refuses to print it: a message must not try


@pytest.mark.parametrize("change, named", [
    ({"x_train": [[1.0, 2.0], [3.0]]}, "x_train"),                      # ragged list
    ({"y_test": [[0], [1, 2]] * 4}, "y_test"),
    ({"x_train": np.ma.masked_array(np.zeros((40, 6)), mask=True)}, "x_train"),
    ({"x_train": np.zeros((40, 0)), "x_test": np.zeros((8, 0))}, "no features"),
    ({"y_train": np.where(np.arange(40) == 0, np.inf, np.arange(40) % 4)}, "y_train"),
    ({"y_train": np.where(np.arange(40) == 0, 1e20, np.arange(40) % 4)}, "y_train"),
    ({"y_train": np.where(np.arange(40) == 0, np.iinfo(np.uint64).max,
                          np.arange(40) % 4).astype(np.uint64)}, "y_train"),
    ({"image_shape": 5}, "image_shape"),
    ({"image_shape": ("a", 1, 1)}, "image_shape"),
    ({"image_shape": (-1, -6, 1)}, "image_shape"),                       # product 6
    ({"image_shape": (float("nan"), 6, 1)}, "image_shape"),
    ({"image_shape": (1.5, 4, 1)}, "image_shape"),
    ({"image_shape": (True, 6, 1)}, "image_shape"),
    ({"image_shape": "1x6"}, "image_shape"),
    ({"class_names": 5}, "class_names"),
    ({"class_names": "abcd"}, "class_names"),                            # one name per letter
    ({"class_names": [HUGE, 1, 2, 3]}, "class_names"),
    ({"class_names": (c for c in "abcd")}, "class_names"),
    ({"class_names": [None, "b", "c", "d"]}, "class_names"),
    ({"name": None}, "name"),
    ({"name": ""}, "name"),
    ({"name": 3}, "name"),
    ({"seed": HUGE}, "seed"),
    ({"seed": 2**63}, "seed"),
    ({"subset_size": -HUGE}, "subset_size"),
    ({"validation_fraction": HUGE}, "validation_fraction"),
    ({"normalise": HUGE}, "normalise"),
    ({"normalise": ["auto"]}, "normalise"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_from_arrays_fuzz_findings_are_data_errors(change, named):
    from dendrax.data import DataError, from_arrays

    arguments = {**_good_arrays(), **change}
    with pytest.raises(DataError) as caught:
        from_arrays(**arguments)
    message = str(caught.value)
    assert named in message and len(message) < 600


def test_from_arrays_still_takes_good_spellings():
    from dendrax.data import from_arrays

    arrays = _good_arrays()
    for kwargs in ({"image_shape": [2, 3, 1]}, {"image_shape": np.array([1, 6, 1])},
                   {"class_names": np.array(["a", "b", "c", "d"])},
                   {"class_names": [0, 1, 2, 3]}, {"seed": 2**63 - 1},
                   {"x_train": arrays["x_train"].tolist()}, {"y_train": arrays["y_train"][:, None]},
                   {"x_train": np.ma.masked_array(arrays["x_train"])}):
        dataset = from_arrays(**{**arrays, **kwargs})
        assert dataset.n_classes == 4 and dataset.in_dim == 6 and dataset.n_val >= 1
        assert all(isinstance(name, str) for name in dataset.class_names)


def test_write_atomic_writes_through_a_symlink_and_keeps_a_files_mode(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    os.chmod(real, 0o640)
    link = tmp_path / "link.json"
    os.symlink(real, link)
    write_json(str(link), [1])
    assert link.is_symlink() and json.loads(real.read_text()) == [1]
    assert (real.stat().st_mode & 0o777) == 0o640
    with pytest.raises(OutputError, match="must be the path of a file"):
        write_atomic(HUGE, b"")  # a message that cannot print the value still says why


def test_write_atomic_takes_a_name_at_the_file_system_limit(tmp_path):
    name = "结" * 80 + ".json"  # 245 bytes: its temporary name must stay within 255
    check_output(str(tmp_path / name), "--out")
    write_json(str(tmp_path / name), {"a": 1})
    assert json.loads((tmp_path / name).read_text()) == {"a": 1}
