"""Finished searches into the trackers researchers already use (each an optional extra):

  to_optuna(record, storage)      an Optuna study (``pip install 'dendrax[optuna]'``)
  to_tensorboard(record, logdir)  TensorBoard runs with the HParams plugin's summaries
                                  (``pip install 'dendrax[tensorboard]'``)
  to_mlflow(record, tracking_uri) an MLflow parent run with a nested run per config
                                  (``pip install 'dendrax[mlflow]'``)

Each takes a :class:`~dendrax.search.record.SearchRecord` (``searcher.record()``, or a log
read back by ``read_search``, as ``dendrax show`` does), so a search exports the same
from either, and never imports JAX.

Each checks its target before writing anything (``check_storage``, ``check_logdir``,
``check_tracking_uri``; ``dendrax show`` runs them before reading the log), and raises
:class:`ExportError` (a DendraxError) naming the target and what to do for anything that
goes wrong with it, whatever the tracker's library or the file system raised.
"""

from dendrax.export.common import ExportError, MissingExtraError, export_settings
from dendrax.export.mlflow_runs import check_tracking_uri, to_mlflow
from dendrax.export.optuna_study import check_storage, to_optuna
from dendrax.export.tensorboard import check_logdir, to_tensorboard

__all__ = ["ExportError", "MissingExtraError", "check_logdir", "check_storage",
           "check_tracking_uri", "export_settings", "to_mlflow", "to_optuna",
           "to_tensorboard"]
