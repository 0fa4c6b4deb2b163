"""A finished search as MLflow runs (``pip install 'dendrax[mlflow]'``).

A parent run for the search (its settings as params; the best config's validation and
test accuracy as metrics) and one nested run per configuration (tag mlflow.parentRunId):
its hyperparameters and parameter count as params; per-epoch means over seeds as metrics
with step = epoch (val_accuracy, test_accuracy, train_accuracy, train_loss, val_loss,
test_loss, swaps); the final val_accuracy_mean / val_accuracy_std / test_accuracy_mean /
test_accuracy_std; status FAILED when a seed diverged. Written through MlflowClient, so no
global MLflow state (active run, tracking URI) is touched.
"""

from __future__ import annotations

import time

from dendrax.export.common import export_settings, finite, hyperparameters, require, run_name
from dendrax.search.record import SearchRecord
from dendrax.search.results import epoch_stats
from dendrax.search.table import hyperparameter_names, varying_parameters
from dendrax.spec import METRICS


def to_mlflow(record: SearchRecord, tracking_uri: str | None = None, *,
              experiment: str = "dendrax", run_name_prefix: str = "dendrax search") -> str:
    """Log a search ``record`` to MLflow at ``tracking_uri`` (e.g.
    ``"file:///tmp/mlruns"``, a database or a server; None: MLflow's default) under
    ``experiment`` (created if missing): its settings on the parent run, its results in
    search order as nested runs. Returns the parent run's id."""
    require("mlflow", "mlflow", "to_mlflow")
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    now = int(time.time() * 1000)
    settings = export_settings(record)
    results = list(record.results)
    parent = client.create_run(experiment_id, run_name=f"{run_name_prefix} "
                               f"({settings.get('dataset', '')}, {len(results)} configs)")
    parent_id = parent.info.run_id
    best = record.ranked
    summary = [Metric("n_configs", len(results), now, 0)]
    if best:
        summary += [Metric("best_val_accuracy", float(best[0].val_accuracy), now, 0)]
        if finite(best[0].test_accuracy):
            summary += [Metric("best_test_accuracy", float(best[0].test_accuracy), now, 0)]
    client.log_batch(parent_id, metrics=summary,
                     params=[Param(k, str(v)) for k, v in settings.items()])
    names = hyperparameter_names(results)
    short = varying_parameters(results)
    for index, result in enumerate(results, 1):
        child = client.create_run(experiment_id, run_name=run_name(index, result, short),
                                  tags={"mlflow.parentRunId": parent_id})
        params = {**hyperparameters(result, names), "total_params": result.total_params,
                  "n_seeds": result.n_seeds, "seeds": result.seeds, "bucket": result.bucket}
        metrics = [Metric(m, float(v), now, e) for m in METRICS
                   for e, v in enumerate(epoch_stats(result, m)[0], 1) if finite(v)]
        finals = {"val_accuracy_mean": result.val_accuracy,
                  "test_accuracy_mean": result.test_accuracy,
                  "val_accuracy_std": result.val_stats.std if result.val_stats else None,
                  "test_accuracy_std": result.test_stats.std if result.test_stats else None}
        metrics += [Metric(k, float(v), now, 0) for k, v in finals.items() if finite(v)]
        for start in range(0, len(metrics), 1000):  # log_batch takes at most 1000 metrics
            client.log_batch(child.info.run_id, metrics=metrics[start:start + 1000],
                             params=[Param(k, str(v)) for k, v in params.items()]
                             if start == 0 else [],
                             tags=[RunTag("dendrax.index", str(index))] if start == 0 else [])
        client.set_terminated(child.info.run_id,
                              status="FAILED" if result.diverged else "FINISHED")
    client.set_terminated(parent_id, status="FINISHED")
    return parent_id
