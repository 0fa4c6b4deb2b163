"""Callbacks: on_epoch(bucket, epoch, members) and on_result(result), from Python and from
`dendrax search --callback module:name`; the trainer's progress events carry them."""

import functools
import json
import sys
import textwrap

import numpy as np
import pytest

from dendrax import cli
from dendrax.search import HyperparameterSearcher
from dendrax.search.callbacks import Callback, load_callback
from dendrax.errors import ConfigError
from conftest import TINY_DATA
from conftest import fake_data, FakeTrainer, make_searcher

GRID = {"n_neurons": [8, 12], "n_dendrites": [4], "n_dendrite_inputs": [16]}


class Recorder(Callback):
    def __init__(self):
        self.epochs, self.results = [], []

    def on_epoch(self, bucket, epoch, members):
        self.epochs.append((bucket, epoch, members))

    def on_result(self, result):
        self.results.append(result)


def test_on_result_gets_each_config_once_and_the_same_object():
    recorder, seen = Recorder(), []
    s = make_searcher(seeds_per_config=2, max_params=100_000, min_param_ratio=0.01,
                      callbacks=[recorder, seen.append])
    s.grid_search({"n_neurons": [8, 12], "n_dendrites": [4, 6], "n_dendrite_inputs": [64]})
    assert len(recorder.results) == 4 and all(r.n_seeds == 2 for r in recorder.results)
    assert {id(r) for r in recorder.results} == {id(r) for r in s.results}
    assert [id(r) for r in seen] == [id(r) for r in recorder.results]


def test_a_bad_callback_is_a_config_error():
    with pytest.raises(ConfigError, match="neither on_epoch nor on_result"):
        make_searcher(callbacks=[42])


def test_on_epoch_gets_every_members_metrics_from_the_real_trainer():
    """One compiled population (one shape, two learning rates, two seeds each): the runner
    reports compile, the start of training and each epoch, with every member's metrics."""
    from dendrax.population import train_configs

    data = TINY_DATA
    events = []

    def trainer(configs, data, settings, *, progress=None, **kwargs):
        def both(event):
            events.append(event)
            progress(event)
        return train_configs(configs, data, settings, progress=both, **kwargs)

    recorder = Recorder()
    s = HyperparameterSearcher(data=data, verbose=False, n_epochs=2, batch_size=64,
                               max_params=10_000, min_param_ratio=0.01, seeds_per_config=2,
                               callbacks=[recorder], trainer=trainer)
    s.grid_search({**GRID, "n_neurons": [8], "lr": [1e-3, 5e-3]})
    phases = [(e.phase, e.epoch) for e in events]
    assert phases[-3:] == [("start", 0), ("train", 1), ("train", 2)]
    assert phases[:-3] in ([], [("compile", 0)])  # compile: only if the program was not ready
    assert len(events[-1].members) == 4
    assert {o.n_devices for o in s._completed.values()} == {1}  # logged with each model
    assert [e for _, e, _ in recorder.epochs] == [1, 2]
    for bucket, epoch, members in recorder.epochs:
        assert bucket == events[-1].bucket and len(members) == 4
        for m in members:  # the same numbers the history records
            result = next(r for r in s.results if r.params["lr"] == m["params"]["lr"])
            i = result.seeds.index(m["seed"])
            assert m["val_accuracy"] == pytest.approx(
                result.history[i]["val_accuracy"][epoch - 1])
            assert m["train_loss"] == pytest.approx(result.history[i]["train_loss"][epoch - 1])
            assert np.isfinite(m["val_accuracy"])


def test_cli_callback_module_name(tmp_path, monkeypatch, capsys):
    (tmp_path / "mytracker.py").write_text(textwrap.dedent("""
        seen = []
        def record(result):
            seen.append(result.params)
        class Epochs:
            count = 0
            def on_epoch(self, bucket, epoch, members):
                type(self).count += len(members)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"max_params": 100_000, "min_param_ratio": 0.001,
                                "n_epochs": 1, "grid": GRID}))
    trainer = FakeTrainer()
    monkeypatch.setattr(cli, "HyperparameterSearcher", functools.partial(
        HyperparameterSearcher, data=fake_data(), trainer=trainer))
    assert cli.main(["search", str(spec), "--quiet", "--callback", "mytracker:record",
                     "--callback", "mytracker:Epochs"]) == 0
    tracker = sys.modules["mytracker"]
    assert sorted(p["n_neurons"] for p in tracker.seen) == [8, 12]
    assert tracker.Epochs.count == 0  # the fake trainer reports no per-member metrics
    with pytest.raises(ConfigError, match="MODULE:NAME"):
        load_callback("mytracker")
    with pytest.raises(ConfigError, match="has no 'nope'"):
        load_callback("mytracker:nope")
