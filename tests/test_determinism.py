"""The same spec and seed give the same result JSON (times excluded) across processes."""

import json
import subprocess

import pytest
import sys
import textwrap

from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {here!r})
    from conftest import SMALL_DATA
    from dendrax import HyperparameterSearcher

    data = SMALL_DATA
    searcher = HyperparameterSearcher(max_params=600, min_param_ratio=0.1, n_epochs=2,
                                      batch_size=64, verbose=False, seeds_per_config=2,
                                      data=data, seed=5)
    searcher.grid_search({{"n_neurons": [3], "n_dendrites": [4], "n_dendrite_inputs": [8],
                           "lr": [1e-3, 3e-3], "steps_to_resample": [3]}})
    searcher.save_results(sys.argv[1])
""").format(here=str(HERE))

TIME_FIELDS = {"train_time", "bucket_wall_time", "compile_time", "timestamp", "created",
               "elapsed", "wall_time", "started", "finished"}


def _strip_times(value):
    if isinstance(value, dict):
        return {k: _strip_times(v) for k, v in value.items()
                if k not in TIME_FIELDS and "time" not in k}
    if isinstance(value, list):
        return [_strip_times(v) for v in value]
    return value


@pytest.mark.slow  # fresh processes that compile
def test_same_spec_and_seed_give_the_same_results(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    outputs = []
    for run in range(2):
        out = tmp_path / f"run{run}.json"
        subprocess.run([sys.executable, str(script), str(out)], check=True, timeout=300)
        outputs.append(_strip_times(json.loads(out.read_text())))
    assert outputs[0] == outputs[1]
    results = outputs[0]
    assert len(results) == 2 and all(len(r["seeds"]) == 2 for r in results)
