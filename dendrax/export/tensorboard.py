"""A finished search as TensorBoard runs (``pip install 'dendrax[tensorboard]'``, which
brings tensorboardX: it writes TensorBoard's event files without TensorFlow).

One run (a subfolder of ``logdir``) per configuration, holding
  scalars per epoch (mean over seeds): val_accuracy, test_accuracy, train_accuracy,
      train_loss, val_loss, test_loss, swaps;
  the HParams plugin's summary: the searched hyperparameters and the final metrics
      hparams/val_accuracy, hparams/test_accuracy (means over seeds) and hparams/params,
      which TensorBoard's HPARAMS tab tabulates and plots against each other.
"""

from __future__ import annotations

import os
from typing import Any

from dendrax.export.common import export_settings, finite, hyperparameters, require, run_name
from dendrax.search.record import SearchRecord
from dendrax.search.results import epoch_stats
from dendrax.search.table import hyperparameter_names, varying_parameters
from dendrax.spec import METRICS

FINAL_METRICS = ("hparams/val_accuracy", "hparams/test_accuracy", "hparams/params")


def _hparam_value(value: Any) -> Any:
    """HParams values are bool, number or string; anything else is written as text."""
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def to_tensorboard(record: SearchRecord, logdir: str) -> list[str]:
    """Write one TensorBoard run per configuration of a search ``record`` into ``logdir``
    (created); returns the run folders, ranked first (best first), then diverged. The
    search's settings (dataset, epochs, budget...) are recorded as hyperparameters of
    every run."""
    tensorboardx = require("tensorboardX", "tensorboard", "to_tensorboard")
    from tensorboardX.summary import hparams

    results = record.ordered
    names = hyperparameter_names(results)
    short = varying_parameters(results)
    extra = {f"search/{k}": _hparam_value(v) for k, v in export_settings(record).items()}
    os.makedirs(logdir, exist_ok=True)
    runs = []
    for index, result in enumerate(results, 1):
        path = os.path.join(logdir, run_name(index, result, short).replace(" ", "_")
                            .replace("/", "-"))
        with tensorboardx.SummaryWriter(path) as writer:
            for metric in METRICS:
                for epoch, value in enumerate(epoch_stats(result, metric)[0], 1):
                    if finite(value):
                        writer.add_scalar(metric, value, epoch)
            finals = {"hparams/val_accuracy": result.val_accuracy,
                      "hparams/test_accuracy": result.test_accuracy,
                      "hparams/params": float(result.total_params)}
            finals = {k: float(v) for k, v in finals.items() if finite(v)}
            values = {k: _hparam_value(v) for k, v in hyperparameters(result, names).items()}
            experiment, start, end = hparams({**values, **extra}, finals)
            for summary in (experiment, start, end):
                writer.file_writer.add_summary(summary)
            for tag, value in finals.items():
                writer.add_scalar(tag, value, result.epochs_trained)
        runs.append(path)
    return runs
