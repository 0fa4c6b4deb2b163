"""Finished searches into the trackers researchers already use (each an optional extra):

  to_optuna(record, storage)      an Optuna study (``pip install 'dendrax[optuna]'``)
  to_tensorboard(record, logdir)  TensorBoard runs with the HParams plugin's summaries
                                  (``pip install 'dendrax[tensorboard]'``)
  to_mlflow(record, tracking_uri) an MLflow parent run with a nested run per config
                                  (``pip install 'dendrax[mlflow]'``)

Each takes a :class:`~dendrax.search.record.SearchRecord` (``searcher.record()``, or a log
read back by ``read_search``, as ``dendrax show`` does), so a search exports the same
from either, and never imports JAX.
"""

from dendrax.export.common import export_settings
from dendrax.export.mlflow_runs import to_mlflow
from dendrax.export.optuna_study import to_optuna
from dendrax.export.tensorboard import to_tensorboard

__all__ = ["export_settings", "to_mlflow", "to_optuna", "to_tensorboard"]
