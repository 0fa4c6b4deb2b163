"""The population axis is sharded across local devices (4 forced CPU devices here), padded
to a multiple of the device count, with the same results as one device."""

import json
import os
import subprocess

import pytest
import sys
import textwrap
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

CHILD = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {here!r})
    import jax
    from conftest import TINY_DATA
    from dendrax import ModelConfig, TrainSettings
    from dendrax.population import train_configs, train_population

    devices = int(sys.argv[1])
    data = TINY_DATA
    configs = [ModelConfig(n_neurons=3, n_dendrites=2, n_dendrite_inputs=8, seed=s,
                           steps_to_resample=3, lr=1e-3 * (1 + s)) for s in range(6)]
    settings = TrainSettings(n_epochs=2, batch_size=32, devices=devices)
    outcomes = train_configs(configs, data, settings, log=None)
    state = train_population(configs, data, settings).state
    shardings = {{str(leaf.sharding) for leaf in jax.tree_util.tree_leaves(state.params)}}
    print("RESULT " + json.dumps({{
        "devices": jax.local_device_count(),
        "members": int(state.step.shape[0]),
        "sharded": any("population" in s for s in shardings),
        "histories": [o.history for o in outcomes]}}))
""").format(here=str(HERE))


def _run(devices, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, str(script), str(devices)], env=env, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.slow  # a fresh process with 4 host devices compiles
def test_sharded_population_matches_a_single_device(tmp_path):
    sharded = _run(4, tmp_path)
    single = _run(1, tmp_path)
    assert sharded["devices"] == 4
    assert sharded["members"] == 6  # 6 members padded to 8 for 4 devices; padding dropped
    assert sharded["sharded"] and not single["sharded"]
    for a, b in zip(sharded["histories"], single["histories"]):
        for metric in ("train_loss", "val_accuracy", "test_loss"):
            np.testing.assert_allclose(a[metric], b[metric], rtol=1e-5, atol=1e-6)
        assert a["swaps"] == b["swaps"]
