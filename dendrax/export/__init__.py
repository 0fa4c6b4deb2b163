"""Finished searches into the trackers researchers already use (each an optional extra):

  to_optuna(results, storage)      an Optuna study (``pip install 'dendrax[optuna]'``)
  to_tensorboard(results, logdir)  TensorBoard runs with the HParams plugin's summaries
                                   (``pip install 'dendrax[tensorboard]'``)
  to_mlflow(results, tracking_uri) an MLflow parent run with a nested run per config
                                   (``pip install 'dendrax[mlflow]'``)

Each takes a list of :class:`~dendrax.search.SearchResult` (a searcher's ``results``, or a
log read back by ``dendrax show``) and the search's settings, and never imports JAX.
"""

from dendrax.export.common import export_settings
from dendrax.export.mlflow_runs import to_mlflow
from dendrax.export.optuna_study import to_optuna
from dendrax.export.tensorboard import to_tensorboard

__all__ = ["export_settings", "to_mlflow", "to_optuna", "to_tensorboard"]
