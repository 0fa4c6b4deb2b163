"""Issue 29, cause 6: the exporters' own errors (one test per case of
reliability-round2.md, named after its id).

Every export target that cannot be used is one line, `dendrax: error: ...`, exit status 2,
naming the target, found before the log is read where possible; the log is never touched.
Through the Python API the same problems raise ExportError (a DendraxError). Root tricks
(chattr +i) are replaced by a patched os.access / os.makedirs that refuse as an immutable
folder would.
"""

import errno
import json
import os
import socket
import sys
import threading
import time

import pytest

from dendrax import cli, export
from dendrax.errors import ConfigError, DendraxError
from dendrax.export import ExportError
from dendrax.search.log import spec_hash
from dendrax.search.record import read_search
from conftest import FakeTrainer, make_searcher

GRID = {"n_neurons": [8, 12], "n_dendrites": [4], "n_dendrite_inputs": [32]}


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    path = tmp_path_factory.mktemp("log") / "run.jsonl"
    make_searcher(FakeTrainer(), seeds_per_config=2, n_epochs=3, max_params=100_000,
                  min_param_ratio=0.01, log_path=str(path)).grid_search(GRID)
    return path


@pytest.fixture
def record(log):
    return read_search(str(log))


def show(argv, capsys):
    """(status, stdout, stderr) of `dendrax show ARGV`."""
    status = cli.main(["show", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def refused(log, option, target, capsys, *names, read_log=False):
    """`dendrax show LOG OPTION TARGET` fails with one line naming the target (and every
    one of ``names``), exit status 2, nothing exported, the log unchanged. Unless
    ``read_log``, the target is refused before the log is read: a missing log then fails
    on the target, not on the log."""
    before = log.read_bytes()
    status, out, err = show([str(log), option, target], capsys)
    assert status == 2, (out, err)
    assert err.startswith("dendrax: error: ") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert repr(target) in err or target in err, err
    for name in names:
        assert name in err, err
    assert not any(tool in out for tool in ("Optuna:", "TensorBoard:", "MLflow:")), out
    assert log.read_bytes() == before
    if not read_log:
        missing = log.parent / "no-such-log.jsonl"
        status, _, err_missing = show([str(missing), option, target], capsys)
        assert status == 2 and "no-such-log" not in err_missing, err_missing
    return err


# ---- Optuna ------------------------------------------------------------------------

def test_E5_optuna_url_that_is_not_a_url_is_one_line(log, capsys):
    pytest.importorskip("optuna")
    err = refused(log, "--to-optuna", "notaurl", capsys, "not a database URL")
    assert "sqlite:///" in err  # says what a URL looks like


def test_E6_optuna_database_in_a_missing_folder_is_one_line(log, tmp_path, capsys):
    pytest.importorskip("optuna")
    folder = tmp_path / "nonexistent" / "dir"
    refused(log, "--to-optuna", f"sqlite:///{folder / 'x.db'}", capsys, "does not exist")
    assert not (tmp_path / "nonexistent").exists()


def test_E7_optuna_database_that_is_a_folder_is_one_line(log, tmp_path, capsys):
    pytest.importorskip("optuna")
    refused(log, "--to-optuna", f"sqlite:///{tmp_path}", capsys, "names a folder")
    assert list(tmp_path.iterdir()) == []


def test_E8_optuna_database_that_is_the_log_is_refused_and_the_log_intact(log, tmp_path,
                                                                        capsys):
    pytest.importorskip("optuna")
    refused(log, "--to-optuna", f"sqlite:///{log}", capsys, "search log")
    other = tmp_path / "notes.txt"  # any file that is not a database
    other.write_text("some notes\n")
    refused(log, "--to-optuna", f"sqlite:///{other}", capsys, "not an SQLite database")
    assert other.read_text() == "some notes\n"


def test_E9_optuna_redis_url_is_one_line(log, capsys):
    pytest.importorskip("optuna")
    refused(log, "--to-optuna", "redis://localhost:1", capsys, "JournalStorage")


def test_unknown_database_kind_is_one_line(log, capsys):
    pytest.importorskip("optuna")
    refused(log, "--to-optuna", "nosuchdb://host/x", capsys, "'nosuchdb'")


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:///:memory:"])
def test_E11_optuna_in_memory_database_is_refused(log, record, url, capsys):
    pytest.importorskip("optuna")
    refused(log, "--to-optuna", url, capsys, "in memory")
    with pytest.raises(ExportError, match="in memory"):
        export.to_optuna(record, url)


@pytest.mark.parametrize("url", ["", "   "])
def test_E12_empty_optuna_url_is_refused(log, record, url, capsys):
    pytest.importorskip("optuna")
    refused(log, "--to-optuna", url, capsys, "empty")
    with pytest.raises(ExportError, match="empty"):
        export.to_optuna(record, url)


def test_optuna_database_errors_become_export_errors_and_leave_no_half_study(
        record, tmp_path, monkeypatch):
    optuna = pytest.importorskip("optuna")
    from sqlalchemy.exc import OperationalError

    url = f"sqlite:///{tmp_path / 'search.db'}"
    real = optuna.study.Study.add_trials

    def failing(self, trials):
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(optuna.study.Study, "add_trials", failing)
    with pytest.raises(ExportError, match=r"search\.db.*OperationalError.*disk I/O error"):
        export.to_optuna(record, url, study_name="s")
    assert optuna.get_all_study_names(url) == []  # deleted, so a retry is not refused
    monkeypatch.setattr(optuna.study.Study, "add_trials", real)
    assert len(export.to_optuna(record, url, study_name="s").trials) == len(record.results)


def test_optuna_duplicate_study_is_still_a_config_error(record, tmp_path):
    pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 'search.db'}"
    export.to_optuna(record, url)
    with pytest.raises(ConfigError, match="already holds a study"):
        export.to_optuna(record, url)


# ---- TensorBoard -------------------------------------------------------------------

def test_E16_tensorboard_folder_that_is_a_file_is_one_line(log, tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    afile = tmp_path / "afile"
    afile.write_text("x\n")
    refused(log, "--to-tensorboard", str(afile), capsys, "is a file")
    refused(log, "--to-tensorboard", str(afile / "sub"), capsys, "is a file")
    refused(log, "--to-tensorboard", str(log), capsys, "search log")
    assert afile.read_text() == "x\n"


def test_tensorboard_url_and_overlong_names_are_refused(log, tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    refused(log, "--to-tensorboard", "s3://bucket/tb", capsys, "is a URL", "local folder")
    refused(log, "--to-tensorboard", str(tmp_path / ("x" * 300)), capsys, "300 bytes long")
    refused(log, "--to-tensorboard", "a/" * 3000, capsys, "over the")
    assert list(tmp_path.iterdir()) == []


def immutable(monkeypatch, folder):
    """What chattr +i does to ``folder`` for root: nothing can be created in it."""
    folder = os.path.abspath(folder)
    real_access, real_makedirs = os.access, os.makedirs

    def access(path, mode, *args, **kwargs):
        if os.path.abspath(path) == folder and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    def makedirs(path, *args, **kwargs):
        if os.path.abspath(path).startswith(folder + os.sep):
            raise PermissionError(errno.EPERM, "Operation not permitted", path)
        return real_makedirs(path, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "makedirs", makedirs)


def test_E17_tensorboard_folder_that_cannot_be_written_is_one_line(log, record, tmp_path,
                                                                   monkeypatch, capsys):
    pytest.importorskip("tensorboardX")
    imm = tmp_path / "imm"
    imm.mkdir()
    immutable(monkeypatch, imm)
    refused(log, "--to-tensorboard", str(imm), capsys, "cannot write")
    refused(log, "--to-tensorboard", str(imm / "sub"), capsys, "not writable")
    # A folder the check passes but the writes then fail in (the check raced, or an ACL
    # os.access does not see): an ExportError naming it, nothing left behind.
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: True)
    with pytest.raises(ExportError, match=r"imm.*Operation not permitted"):
        export.to_tensorboard(record, str(imm / "sub"))
    assert list(imm.iterdir()) == []


def test_tensorboard_full_disk_leaves_no_half_export(record, tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX")
    from tensorboardX.event_file_writer import EventsWriter

    calls = []
    real = EventsWriter.write_event

    def write_event(self, event):
        calls.append(1)
        if len(calls) > 30:  # partway through the second run
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, event)

    monkeypatch.setattr(EventsWriter, "write_event", write_event)
    target = tmp_path / "tb" / "search"
    with pytest.raises(ExportError, match=r"tb.*No space left on device"):
        export.to_tensorboard(record, str(target))
    assert not (tmp_path / "tb").exists()  # it created both folders, and removed them
    monkeypatch.setattr(EventsWriter, "write_event", real)
    assert len(export.to_tensorboard(record, str(target))) == len(record.results)


def event_files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*tfevents*"))


def test_E18_second_tensorboard_export_into_one_folder_is_refused(log, tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    tb = tmp_path / "tb"
    status, out, err = show([str(log), "--to-tensorboard", str(tb)], capsys)
    assert status == 0 and "TensorBoard: 2 runs" in out, err
    written = event_files(tb)
    assert len(written) == 2  # one event file per run
    refused(log, "--to-tensorboard", str(tb), capsys, "already holds TensorBoard runs",
            "new folder")
    assert event_files(tb) == written  # nothing duplicated


def test_E18_resumed_larger_log_into_the_old_folder_is_refused(log, tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    # the log as an interrupted search left it: its first model only
    partial = tmp_path / "partial.jsonl"
    partial.write_text("\n".join(log.read_text().splitlines()[:2]) + "\n")
    tb = tmp_path / "tb"
    status, out, err = show([str(partial), "--to-tensorboard", str(tb)], capsys)
    assert status == 0 and "TensorBoard: 1 runs" in out, err
    written = event_files(tb)
    refused(log, "--to-tensorboard", str(tb), capsys, "already holds TensorBoard runs")
    assert event_files(tb) == written  # no second set of runs beside the first
    with pytest.raises(ExportError, match="already holds TensorBoard runs"):
        export.to_tensorboard(read_search(str(log)), str(tb))
    # an empty folder, or one holding other files only, is a fine target
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "README").write_text("runs of the June search\n")
    assert show([str(log), "--to-tensorboard", str(tmp_path / "fresh")], capsys)[0] == 0
    assert len(event_files(tmp_path / "fresh")) == 2


def big_budget_log(log, tmp_path):
    """The log with max_params=10**23 in its header (what older versions accepted)."""
    lines = log.read_text().splitlines()
    header = json.loads(lines[0])
    header["spec"]["budget"]["max_params"] = 10 ** 23
    header["spec_hash"] = spec_hash(header["spec"])
    lines[0] = json.dumps(header)
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_E25_max_params_beyond_64_bits_exports_to_tensorboard(log, tmp_path, capsys,
                                                              monkeypatch):
    pytest.importorskip("tensorboardX")
    monkeypatch.setitem(sys.modules, "tensorboard.compat.notf", type(sys)("notf"))
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from tensorboard.plugins.hparams import plugin_data_pb2

    big = big_budget_log(log, tmp_path)
    status, out, err = show([str(big), "--to-tensorboard", str(tmp_path / "tb")], capsys)
    assert status == 0 and "TensorBoard: 2 runs" in out, err
    run = sorted((tmp_path / "tb").iterdir())[0]
    reader = accumulator.EventAccumulator(str(run))
    reader.Reload()
    content = reader.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["search/max_params"].number_value == 1e23


# ---- MLflow ------------------------------------------------------------------------

def test_E19_mlflow_store_that_is_a_file_is_one_line(log, tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    afile = tmp_path / "afile"
    afile.write_text("x\n")
    monkeypatch.chdir(tmp_path)
    refused(log, "--to-mlflow", afile.as_uri(), capsys, "is a file")
    refused(log, "--to-mlflow", "afile", capsys, "is a file")
    refused(log, "--to-mlflow", "afile/sub", capsys, "is a file, not a folder")
    assert afile.read_text() == "x\n"


def test_E20_mlflow_store_that_cannot_be_written_is_one_line(log, record, tmp_path,
                                                             monkeypatch, capsys):
    pytest.importorskip("mlflow")
    imm = tmp_path / "imm"
    imm.mkdir()
    immutable(monkeypatch, imm)
    refused(log, "--to-mlflow", imm.as_uri(), capsys, "cannot write")
    refused(log, "--to-mlflow", (imm / "sub").as_uri(), capsys, "not writable")
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: True)
    with pytest.raises(ExportError, match=r"imm.*Operation not permitted"):
        export.to_mlflow(record, (imm / "sub").as_uri())
    assert list(imm.iterdir()) == []


def test_E21_unknown_mlflow_scheme_is_one_line(log, capsys):
    pytest.importorskip("mlflow")
    refused(log, "--to-mlflow", "notauri://x", capsys, "'notauri'", "sqlite:///mlflow.db")


def test_E22_help_example_for_mlflow_works_without_the_file_store_switch(
        log, tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(SystemExit):
        cli.main(["show", "--help"])
    assert "sqlite:///mlflow.db" in capsys.readouterr().out
    uri = (tmp_path / "mlruns").as_uri()  # the file store of the old example
    status, out, err = show([str(log), "--to-mlflow", uri], capsys)
    assert status == 0 and "MLflow: parent run" in out, err
    assert "MLFLOW_ALLOW_FILE_STORE=true mlflow ui" in out  # how to view it
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # set for the export only
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    experiment = MlflowClient(uri).get_experiment_by_name("dendrax")
    assert len(MlflowClient(uri).search_runs([experiment.experiment_id])) == 3
    # a user who switched the file store off explicitly is told, not overruled
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")
    refused(log, "--to-mlflow", (tmp_path / "other").as_uri(), capsys,
            "MLFLOW_ALLOW_FILE_STORE=true", "'false'")
    assert not (tmp_path / "other").exists()


def test_E23_unreachable_mlflow_server_fails_fast_naming_the_uri(log, record, capsys):
    pytest.importorskip("mlflow")
    start = time.monotonic()
    refused(log, "--to-mlflow", "http://127.0.0.1:1", capsys, "cannot reach",
            "127.0.0.1:1")
    with pytest.raises(ExportError, match=r"'http://127\.0\.0\.1:1'.*cannot reach"):
        export.to_mlflow(record, "http://127.0.0.1:1")
    refused(log, "--to-mlflow", "http://", capsys, "names no server")
    refused(log, "--to-mlflow", "http://localhost:99999", capsys, "out of range")
    assert time.monotonic() - start < 30


def test_E23_a_server_that_answers_the_check_is_exported_to_with_bounded_retries(
        record, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    uri = f"http://127.0.0.1:{server.getsockname()[1]}"
    try:
        assert export.check_tracking_uri(uri) == uri  # it accepts connections
    finally:
        server.close()
    seen = {}

    class Client:  # what MLflow sees while the export runs
        def __init__(self, tracking_uri):
            seen.update({k: os.environ.get(k) for k in export.mlflow_runs.HTTP_LIMITS})
            raise mlflow.exceptions.MlflowException("API request failed: 503 Service Unavailable")

    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: socket.socket())
    monkeypatch.setattr("mlflow.tracking.MlflowClient", Client)
    for name in export.mlflow_runs.HTTP_LIMITS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")  # the user's own setting wins
    with pytest.raises(ExportError, match=rf"'{uri}'.*MlflowException: API request failed"):
        export.to_mlflow(record, uri)
    assert seen == {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                    "MLFLOW_HTTP_REQUEST_TIMEOUT": "7"}
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # restored


def test_E23_a_server_that_accepts_but_never_answers_ends_in_an_export_error(record,
                                                                             monkeypatch):
    """The TCP check passes; MLflow's requests then time out, and the bounded retries end
    the export (the request timeout is the user's 1 s here, instead of dendrax's 20 s)."""
    pytest.importorskip("mlflow")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])  # and never answer
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    uri = f"http://127.0.0.1:{server.getsockname()[1]}"
    start = time.monotonic()
    try:
        with pytest.raises(ExportError, match=rf"'{uri}'.*Max retries exceeded"):
            export.to_mlflow(record, uri)
    finally:
        server.close()
        for connection in held:
            connection.close()
    assert time.monotonic() - start < 30  # MLflow's own defaults: minutes
    assert 2 <= len(held) <= 1 + 3  # the check, then a request and at most two retries


def test_mlflow_in_memory_and_log_as_database_are_refused(log, capsys):
    pytest.importorskip("mlflow")
    refused(log, "--to-mlflow", "sqlite://", capsys, "in memory")
    refused(log, "--to-mlflow", f"sqlite:///{log}", capsys, "search log")
    refused(log, "--to-mlflow", "", capsys, "empty")


def test_mlflow_failure_midway_marks_the_parent_run_failed(record, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    calls = []
    real = MlflowClient.log_batch

    def log_batch(self, run_id, *args, **kwargs):
        calls.append(run_id)
        if len(calls) == 2:  # the first nested run
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, run_id, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", log_batch)
    uri = (tmp_path / "mlruns").as_uri()
    with pytest.raises(ExportError, match=r"mlruns.*No space left on device"):
        export.to_mlflow(record, uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert MlflowClient(uri).get_run(calls[0]).info.status == "FAILED"


# ---- every exporter ----------------------------------------------------------------

@pytest.mark.parametrize("exporter", ["to_optuna", "to_tensorboard", "to_mlflow"])
def test_api_errors_are_dendrax_errors_naming_the_target(record, tmp_path, exporter):
    pytest.importorskip({"to_optuna": "optuna", "to_tensorboard": "tensorboardX",
                         "to_mlflow": "mlflow"}[exporter])
    afile = tmp_path / "afile"
    afile.write_text("x\n")
    call = getattr(export, exporter)
    for target in ("", "a\x00b", str(afile / "sub"), "x" * 5000, 42):
        if exporter == "to_optuna" and isinstance(target, str) and target:
            target = "sqlite:///" + target
        with pytest.raises(DendraxError) as caught:
            call(record, target)
        assert isinstance(caught.value, ExportError)
        assert repr(target) in str(caught.value)


def test_missing_extra_is_a_dendrax_error_before_the_log_is_read(log, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    status, _, err = show([str(tmp_path / "no-such-log.jsonl"), "--to-tensorboard",
                           str(tmp_path / "tb")], capsys)
    assert status == 2 and "dendrax[tensorboard]" in err and "no-such-log" not in err
    with pytest.raises(ImportError):  # as it always was
        export.to_tensorboard(read_search(str(log)), str(tmp_path / "tb"))
