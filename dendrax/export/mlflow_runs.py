"""A finished search as MLflow runs (``pip install 'dendrax[mlflow]'``).

A parent run for the search (its settings as params; the best config's validation and
test accuracy as metrics) and one nested run per configuration (tag mlflow.parentRunId):
its hyperparameters and parameter count as params; per-epoch means over seeds as metrics
with step = epoch (val_accuracy, test_accuracy, train_accuracy, train_loss, val_loss,
test_loss, swaps); the final val_accuracy_mean / val_accuracy_std / test_accuracy_mean /
test_accuracy_std; status FAILED when a seed diverged. Written through MlflowClient, so no
global MLflow state (active run, tracking URI) is touched.

The tracking URI is checked before anything is written (:func:`check_tracking_uri`): empty,
an unknown scheme, an in-memory SQLite database, a local store that is a file or cannot be
created, or a server that does not answer (a TCP connection within
``CONNECT_TIMEOUT`` seconds) is an ExportError naming the URI. During the export MLflow's
HTTP retries are bounded (``HTTP_LIMITS``, each only where the environment does not set it),
so a server that stops answering fails the export in about a minute instead of hanging, and
a local file store (``file:///tmp/mlruns`` or a plain folder, which MLflow 3 keeps in
maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE``) is opted into unless that variable is
set. Whatever MLflow raises becomes an ExportError; a parent run left by a failure is
marked FAILED.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Iterator, Sequence

from dendrax.export.common import (ExportError, check_folder, check_sqlite_file, describe,
                                   export_settings, finite, hyperparameters, require,
                                   run_name, text_target, writing)
from dendrax.search.record import SearchRecord
from dendrax.search.results import epoch_stats
from dendrax.search.table import hyperparameter_names, varying_parameters
from dendrax.spec import METRICS


EXAMPLE = "sqlite:///mlflow.db"
CONNECT_TIMEOUT = 5.0
# MLflow's defaults retry a dead server for minutes (7 retries, backoff factor 2, 120 s
# per request); an export sets these instead, each only where the environment does not.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
               "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
SCHEMES = ("file", "http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks",
           "databricks-uc", "uc")
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")


def _schemes() -> tuple[str, ...]:
    """The tracking URI schemes MLflow knows here (plugins included), else the usual ones."""
    try:
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry

        known = tuple(k for k in _tracking_store_registry._registry if k)
        return known or SCHEMES
    except Exception:
        return SCHEMES


def _connect(host: str, port: int, timeout: float) -> str | None:
    """None if a TCP connection to host:port opens within ``timeout`` seconds (the name
    lookup included, run in a thread so it cannot hang), else why not."""
    outcome: list[str | None] = []

    def attempt():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except socket.gaierror as error:
            outcome.append(f"unknown host {host!r} ({error.strerror or error})")
        except socket.timeout:
            outcome.append(f"no answer within {timeout:g} s")
        except OSError as error:
            outcome.append(error.strerror or describe(error))

    thread = threading.Thread(target=attempt, daemon=True, name="dendrax-mlflow-check")
    thread.start()
    thread.join(timeout + 1.0)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def local_store(uri: str) -> str | None:
    """The folder of a local file store URI (``file:///x``, or a plain path), else None."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return urllib.request.url2pathname(parsed.path) or "/"
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a plain path (C:\ on Windows)
        return uri
    return None


def check_tracking_uri(tracking_uri: Any, what: str = "to_mlflow tracking_uri", *,
                       avoid: Sequence[Any] = (), timeout: float = CONNECT_TIMEOUT) -> str:
    """Check an MLflow tracking URI before writing anything (see the module doc) and
    return it (None: MLflow's default, ``mlflow.get_tracking_uri()``, checked as such).
    ``what`` names it in messages ("--to-mlflow" on the command line); ``avoid`` holds
    paths a local store must not be (the search log). Raises ExportError."""
    require("mlflow", "mlflow", "to_mlflow")
    if tracking_uri is None:
        import mlflow

        tracking_uri = mlflow.get_tracking_uri()
        what = f"{what} (MLflow's default)"
    uri = text_target(tracking_uri, what, EXAMPLE)
    try:
        parsed = urllib.parse.urlparse(uri)
        scheme = parsed.scheme.lower()
    except ValueError as error:  # e.g. an invalid IPv6 address
        raise ExportError(f"{what} {uri!r} is not a URI ({error}); give one such as "
                          f"{EXAMPLE}, http://HOST:5000 or a folder") from None
    folder = local_store(uri)
    if folder is not None:
        if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
            raise ExportError(f"{what} {uri!r} names a folder on host {parsed.netloc!r}; "
                              f"a file store is local: file:///PATH")
        check_folder(folder, what, avoid=avoid, name=uri)
        allowed = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
        if allowed is not None and allowed.strip().lower() not in ("true", "1"):
            raise ExportError(f"{what} {uri!r} is a local file store, which MLflow 3 opens "
                              f"only with MLFLOW_ALLOW_FILE_STORE=true, and it is {allowed!r} "
                              f"here (dendrax sets it for the export only when it is unset): "
                              f"unset it or set it to true, or use a database such as "
                              f"{EXAMPLE}")
        return uri
    base = scheme.split("+")[0]
    if base not in _schemes():
        raise ExportError(f"{what} {uri!r}: MLflow has no tracking store for {scheme!r} "
                          f"URIs; give a database ({EXAMPLE}), a server "
                          f"(http://HOST:5000) or a folder (known schemes: "
                          f"{', '.join(sorted(_schemes()))})")
    if base in ("http", "https"):
        try:
            host, port = parsed.hostname, parsed.port
        except ValueError as error:  # a port that is not a number, or out of range
            raise ExportError(f"{what} {uri!r}: {error}; give a server as "
                              f"http://HOST:PORT") from None
        if not host:
            raise ExportError(f"{what} {uri!r} names no server; give one as "
                              f"http://HOST:PORT")
        port = port or (443 if base == "https" else 80)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        proxied = urllib.request.getproxies().get(base) and not urllib.request.proxy_bypass(
            host)
        if not proxied:  # through a proxy, the bounded retries are the only guard
            problem = _connect(host, port, timeout)
            if problem is not None:
                todo = ("check the URI" if problem.startswith("unknown host") else
                        f"start it (mlflow server --host {host} --port {port}) or check "
                        f"the URI")
                raise ExportError(f"{what} {uri!r}: cannot reach an MLflow server at "
                                  f"{address} ({problem}); {todo}")
    elif base == "sqlite":
        try:
            from sqlalchemy.engine import make_url

            url = make_url(uri)
            database = url.database
        except ImportError:  # MLflow's database stores need SQLAlchemy: it says so itself
            return uri
        except Exception as error:
            raise ExportError(f"{what} {uri!r} is not a database URL ({describe(error)}); "
                              f"give one such as {EXAMPLE}") from None
        if not database or database == ":memory:":
            raise ExportError(f"{what} {uri!r} names no database file, so SQLite would "
                              f"keep the runs in memory, lost when the process ends; name a "
                              f"file, e.g. {EXAMPLE}")
        if "uri" not in url.query:  # not an SQLite URI filename, whose options are SQLite's
            check_sqlite_file(database, uri, what, create_folders=True, avoid=avoid,
                              example=EXAMPLE)
    return uri


@contextlib.contextmanager
def mlflow_environment(file_store: bool) -> Iterator[None]:
    """MLflow's environment for one export: bounded HTTP retries, and a local file store
    allowed; each variable only where the user has not set it, and restored after."""
    wanted = dict(HTTP_LIMITS)
    if file_store:
        wanted["MLFLOW_ALLOW_FILE_STORE"] = "true"
    added = [name for name in wanted if name not in os.environ]
    for name in added:
        os.environ[name] = wanted[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def to_mlflow(record: SearchRecord, tracking_uri: str | None = None, *,
              experiment: str = "dendrax", run_name_prefix: str = "dendrax search") -> str:
    """Log a search ``record`` to MLflow at ``tracking_uri`` (e.g.
    ``"file:///tmp/mlruns"``, a database or a server; None: MLflow's default) under
    ``experiment`` (created if missing): its settings on the parent run, its results in
    search order as nested runs. Returns the parent run's id."""
    require("mlflow", "mlflow", "to_mlflow")
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    given = tracking_uri
    tracking_uri = check_tracking_uri(tracking_uri)
    file_store = local_store(tracking_uri) is not None
    now = int(time.time() * 1000)
    settings = export_settings(record)
    results = list(record.results)
    best = record.ranked
    summary = [Metric("n_configs", len(results), now, 0)]
    if best:
        summary += [Metric("best_val_accuracy", float(best[0].val_accuracy), now, 0)]
        if finite(best[0].test_accuracy):
            summary += [Metric("best_test_accuracy", float(best[0].test_accuracy), now, 0)]
    names = hyperparameter_names(results)
    short = varying_parameters(results)
    children = []  # everything to log, before anything is written
    for index, result in enumerate(results, 1):
        params = {**hyperparameters(result, names), "total_params": result.total_params,
                  "n_seeds": result.n_seeds, "seeds": result.seeds, "bucket": result.bucket}
        metrics = [Metric(m, float(v), now, e) for m in METRICS
                   for e, v in enumerate(epoch_stats(result, m)[0], 1) if finite(v)]
        finals = {"val_accuracy_mean": result.val_accuracy,
                  "test_accuracy_mean": result.test_accuracy,
                  "val_accuracy_std": result.val_stats.std if result.val_stats else None,
                  "test_accuracy_std": result.test_stats.std if result.test_stats else None}
        metrics += [Metric(k, float(v), now, 0) for k, v in finals.items() if finite(v)]
        children.append((index, run_name(index, result, short), params, metrics,
                         "FAILED" if result.diverged else "FINISHED"))
    target = f"to_mlflow tracking_uri {tracking_uri!r}" + (
        " (MLflow's default)" if given is None else "")
    hint = ("check that the folder is writable and the disk has room" if file_store else
            "check the URI, that the store or server is up and writable, and its credentials")
    parent_id = None
    with mlflow_environment(file_store), writing(target, hint):
        client = MlflowClient(tracking_uri)
        try:
            found = client.get_experiment_by_name(experiment)
            experiment_id = (found.experiment_id if found
                             else client.create_experiment(experiment))
            parent = client.create_run(experiment_id, run_name=f"{run_name_prefix} "
                                       f"({settings.get('dataset', '')}, {len(results)} "
                                       f"configs)")
            parent_id = parent.info.run_id
            client.log_batch(parent_id, metrics=summary,
                             params=[Param(k, str(v)) for k, v in settings.items()])
            for index, name, params, metrics, status in children:
                child = client.create_run(experiment_id, run_name=name,
                                          tags={"mlflow.parentRunId": parent_id})
                for start in range(0, max(len(metrics), 1), 1000):  # at most 1000 a batch
                    client.log_batch(child.info.run_id, metrics=metrics[start:start + 1000],
                                     params=[Param(k, str(v)) for k, v in params.items()]
                                     if start == 0 else [],
                                     tags=[RunTag("dendrax.index", str(index))]
                                     if start == 0 else [])
                client.set_terminated(child.info.run_id, status=status)
            client.set_terminated(parent_id, status="FINISHED")
        except BaseException:  # the parent run says the export failed
            if parent_id is not None:
                with contextlib.suppress(Exception):
                    client.set_terminated(parent_id, status="FAILED")
            raise
    return parent_id
