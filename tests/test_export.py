"""Exporters (dendrax.export): each writes a search that the tool's own reader reads back:
Optuna's storage, TensorBoard's event reader, MLflow's client on a local file store."""

import os
import sys
import types

import numpy as np
import pytest

from dendrax import cli
from dendrax.search.results import epoch_stats
from dendrax.errors import ConfigError
from conftest import FakeTrainer, make_searcher

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPACE = {"n_neurons": (6, 14), "n_dendrites": [4, 6, 8], "n_dendrite_inputs": (32, 128),
         "synaptic_resampling": [True, False],
         "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "search.jsonl"
    s = make_searcher(FakeTrainer(diverges=lambda c: c.n_neurons in (7, 13)), seeds_per_config=2,
                      n_epochs=3, max_params=100_000, min_param_ratio=0.01,
                      log_path=str(log))
    s.random_search(SPACE, n_trials=12)
    assert any(r.diverged for r in s.results)
    return s


def test_optuna_study_reads_back(searcher, tmp_path):
    optuna = pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 'search.db'}"
    searcher.to_optuna(url, study_name="s")
    study = optuna.load_study(study_name="s", storage=url)
    trials = study.get_trials()
    assert len(trials) == len(searcher.results)
    by_config = {str(sorted(t.user_attrs["config"].items())): t for t in trials}
    for r in searcher.results:
        t = by_config[str(sorted(r.config.items()))]
        assert t.params == {k: r.params[k] for k in SPACE}
        assert t.user_attrs["seeds"] == r.seeds and t.user_attrs["total_params"] == r.total_params
        if r.diverged:
            assert t.state == optuna.trial.TrialState.FAIL and t.value is None
            continue
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert t.value == pytest.approx(r.val_accuracy)
        assert t.user_attrs["test_accuracy"] == pytest.approx(r.test_accuracy)
        curve = np.mean([h["val_accuracy"] for h in r.history], axis=0)
        assert [t.intermediate_values[e] for e in (1, 2, 3)] == pytest.approx(curve)
    dist = trials[0].distributions
    assert isinstance(dist["lr"], optuna.distributions.FloatDistribution) and dist["lr"].log
    assert (dist["n_neurons"].low, dist["n_neurons"].high) == (6, 14)
    assert dist["n_dendrites"].choices == (4, 6, 8)
    assert study.best_value == pytest.approx(searcher.get_best_results(1)[0].val_accuracy)
    assert study.user_attrs["n_epochs"] == 3
    with pytest.raises(ConfigError, match="already holds a study"):
        searcher.to_optuna(url, study_name="s")


def test_show_to_optuna_from_a_log(searcher, tmp_path, capsys):
    optuna = pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert cli.main(["show", searcher.log_path, "--to-optuna", url]) == 0
    assert "optuna-dashboard" in capsys.readouterr().out
    (summary,) = optuna.get_all_study_summaries(storage=url)
    study = optuna.load_study(study_name=summary.study_name, storage=url)
    assert len(study.trials) == len(searcher.results)
    assert study.best_value == pytest.approx(searcher.get_best_results(1)[0].val_accuracy)
    # the log's space gives the distributions: lr is log-uniform
    assert study.best_trial.distributions["lr"].log


def test_tensorboard_runs_read_back(searcher, tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX")
    # TensorBoard's reader uses its TensorFlow stub when this module exists: importing all
    # of TensorFlow would take longer than the test.
    monkeypatch.setitem(sys.modules, "tensorboard.compat.notf", types.ModuleType("notf"))
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from tensorboard.plugins.hparams import plugin_data_pb2

    runs = searcher.to_tensorboard(str(tmp_path / "tb"))
    assert len(runs) == len(searcher.results)
    best = searcher.get_best_results(1)[0]
    reader = accumulator.EventAccumulator(runs[0])
    reader.Reload()
    values = [s.value for s in reader.Scalars("val_accuracy")]
    assert [s.step for s in reader.Scalars("val_accuracy")] == [1, 2, 3]
    assert values == pytest.approx(epoch_stats(best, "val_accuracy")[0], rel=1e-6)
    assert reader.Scalars("hparams/val_accuracy")[-1].value == pytest.approx(best.val_accuracy)
    content = reader.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["n_neurons"].number_value == best.params["n_neurons"]
    assert start.hparams["synaptic_resampling"].bool_value == best.params["synaptic_resampling"]
    assert start.hparams["search/dataset"].string_value == searcher.dataset
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in experiment.metric_infos} == {
        "hparams/val_accuracy", "hparams/test_accuracy", "hparams/params"}


def test_mlflow_parent_and_nested_runs_read_back(searcher, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    # MLflow 3 keeps its file store in maintenance mode, behind this switch.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    parent_id = searcher.to_mlflow(uri, experiment="exp")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("exp")
    parent = client.get_run(parent_id)
    assert parent.data.params["dataset"] == searcher.dataset
    best = searcher.get_best_results(1)[0]
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(best.val_accuracy)
    children = client.search_runs([experiment.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    assert len(children) == len(searcher.results)
    statuses = sorted(c.info.status for c in children)
    assert statuses.count("FAILED") == sum(r.diverged for r in searcher.results)
    index = next(i for i, r in enumerate(searcher.results, 1) if r is best)
    child = next(c for c in children if c.data.tags["dendrax.index"] == str(index))
    assert child.data.params["seeds"] == str(best.seeds)
    assert child.data.params["n_neurons"] == str(best.params["n_neurons"])
    assert child.data.metrics["val_accuracy_mean"] == pytest.approx(best.val_accuracy)
    history = client.get_metric_history(child.info.run_id, "val_accuracy")
    assert [m.step for m in history] == [1, 2, 3]
    assert [m.value for m in history] == pytest.approx(epoch_stats(best, "val_accuracy")[0])


def test_missing_extras_are_named(searcher, tmp_path, monkeypatch):
    for module, extra, call in (
            ("tensorboardX", "tensorboard", lambda: searcher.to_tensorboard(str(tmp_path))),
            ("mlflow", "mlflow", lambda: searcher.to_mlflow(tmp_path.as_uri())),
            ("optuna", "optuna", lambda: searcher.to_optuna("sqlite://"))):
        monkeypatch.setitem(sys.modules, module, None)
        with pytest.raises(ImportError, match=rf"dendrax\[{extra}\]"):
            call()


