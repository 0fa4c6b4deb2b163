"""Fixed costs: compiled programs are cached across processes (on by default, with an
opt-out), compiled ahead on a background thread, and none of it changes a result."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess

import pytest
import sys
from pathlib import Path

import numpy as np

from conftest import prototype_data
from dendrax.population import compile as compile_module, train_configs
from dendrax.config import ModelConfig
from dendrax.spec import TrainSettings

HERE = Path(__file__).resolve().parent

# Trains two buckets of a tiny search in a fresh process and prints how many programs
# XLA really compiled and how many came from the persistent cache.
CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import jax
from jax import monitoring
counts = {{"compiled": 0, "cache_hits": 0}}
def on_duration(event, seconds, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        counts["compiled"] += 1
def on_event(event, **kwargs):
    if event == "/jax/compilation_cache/cache_hits":
        counts["cache_hits"] += 1
monitoring.register_event_duration_secs_listener(on_duration)
monitoring.register_event_listener(on_event)
from conftest import prototype_data
from dendrax.population import train_configs
from dendrax.config import ModelConfig
from dendrax.spec import TrainSettings
data = prototype_data(n_train=128, n_val=32, n_test=32, in_dim=64, image_shape=(8, 8, 1))
configs = [ModelConfig(n_neurons=3, n_dendrites=2, n_dendrite_inputs=k, seed=s)
           for k in (6, 8) for s in range(2)]
outcomes = train_configs(configs, data, TrainSettings(n_epochs=2, batch_size=32, padding="exact"),
                         log=None)
# A program loaded from the cache reports a compile event too.
counts["compiled"] -= counts["cache_hits"]
print(json.dumps({{**counts, "loss": [o.history["train_loss"] for o in outcomes]}}))
"""


def _run_child(cache_home: Path, **env) -> dict:
    environment = {**os.environ, "XDG_CACHE_HOME": str(cache_home), **env}
    environment.pop("JAX_COMPILATION_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", CHILD.format(here=str(HERE))],
                          capture_output=True, text=True, timeout=600, env=environment)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # fresh processes that compile
def test_a_second_process_compiles_nothing_and_gets_the_same_results(tmp_path):
    cold = _run_child(tmp_path)
    assert cold["compiled"] >= 4  # init and epoch of each of the two buckets, at least
    assert list((tmp_path / "dendrax" / "jax").iterdir())  # the cache was written
    warm = _run_child(tmp_path)
    assert warm["compiled"] == 0 and warm["cache_hits"] >= 4
    assert warm["loss"] == cold["loss"]


@pytest.mark.slow  # fresh processes that compile
def test_the_cache_can_be_turned_off(tmp_path):
    off = _run_child(tmp_path, DENDRAX_COMPILATION_CACHE="0")
    again = _run_child(tmp_path, DENDRAX_COMPILATION_CACHE="0")
    assert not (tmp_path / "dendrax" / "jax").exists()
    assert again["compiled"] == off["compiled"] > 0 and again["cache_hits"] == 0
    assert again["loss"] == off["loss"]


DATA = prototype_data(n_train=192, n_val=32, n_test=32, in_dim=64, image_shape=(8, 8, 1))
CONFIGS = [ModelConfig(n_neurons=n, n_dendrites=d, n_dendrite_inputs=k, seed=n * d + k,
                       steps_to_resample=2)
           for n, d, k in [(3, 2, 6), (4, 2, 8), (3, 3, 7), (2, 2, 5)]]


def _histories(outcomes):
    return [{m: o.history[m] for m in ("train_loss", "val_loss", "test_accuracy", "swaps")}
            for o in outcomes]


def test_compiling_ahead_and_padding_auto_change_no_result():
    base = TrainSettings(n_epochs=2, batch_size=32, padding="exact", compile_ahead=False)
    reference = _histories(train_configs(CONFIGS, DATA, base, log=None))
    compile_module.clear_programs()  # compile everything again, this time ahead of use
    ahead = _histories(train_configs(CONFIGS, DATA, dataclasses.replace(base, compile_ahead=True),
                                     log=None))
    assert ahead == reference  # bit for bit
    auto = train_configs(CONFIGS, DATA, dataclasses.replace(base, padding="auto"), log=None)
    for got, want in zip(_histories(auto), reference):
        assert got["swaps"] == want["swaps"]
        for metric in ("train_loss", "val_loss", "test_accuracy"):
            np.testing.assert_allclose(got[metric], want[metric], rtol=1e-5, atol=1e-6)


def test_a_compile_is_reported_as_its_own_phase():
    compile_module.clear_programs()
    events = []
    train_configs(CONFIGS[:1], DATA, TrainSettings(n_epochs=2, batch_size=32),
                  progress=events.append, log=None)
    phases = [e.phase for e in events]
    assert phases == ["compile", "start", "train", "train"]
    events.clear()
    train_configs(CONFIGS[:1], DATA, TrainSettings(n_epochs=1, batch_size=32),
                  progress=events.append, log=None)  # compiled already: no compile phase
    assert [e.phase for e in events] == ["start", "train"]
