"""The `dendrax` command, the original README's Quick Start, and the progress display.

The end-to-end test runs `python -m dendrax` in subprocesses with the real trainer on the
embedded Fashion-MNIST sample (named with data_dir, so no other source is consulted); it
is marked slow. Every check that trains nothing calls ``cli.main`` in this process and
reads what it printed. The README Quick Start and the in-process searches use the fake
trainer: what they check is the API and the plumbing.
"""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dendrax import cli, examples
from dendrax.data import SAMPLE_DIR
from dendrax.search.progress import format_duration
from dendrax.search import HyperparameterSearcher
from conftest import fake_data, FakeTrainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, env=None, cwd=None):
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = REPO + os.pathsep + environment.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "dendrax", *args], capture_output=True,
                          text=True, env=environment, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    """A private compilation cache, so the tests never write the user's."""
    return {"JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax-cache"))}


def run_main(capsys, *args) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `dendrax ARGS`, run in this process."""
    capsys.readouterr()  # drop what came before
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


# ---- end to end, in subprocesses --------------------------------------------------------

@pytest.mark.slow  # four processes; the searches compile and train
def test_search_log_show_and_resume_end_to_end(tmp_path, jax_cache):
    spec = {"dataset": "fashion-mnist", "data_dir": str(SAMPLE_DIR), "subset_size": 512,
            "max_params": 8000, "n_epochs": 1, "seeds_per_config": 2,
            "grid": {"n_neurons": [12], "n_dendrites": [6], "n_dendrite_inputs": [96],
                     "synaptic_resampling": [True, False]}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    log, out = tmp_path / "search.jsonl", tmp_path / "results.json"

    done = run_cli("search", "spec.json", "--log", str(log), "--out", str(out), "--top", "3",
                   cwd=tmp_path, env=jax_cache)
    assert done.returncode == 0, done.stderr
    assert "TOP 2 OF 2 CONFIGURATIONS" in done.stdout and "7,198/8,000" in done.stdout
    assert "bucket 1/1" in done.stdout  # progress, not --quiet
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["type"] for r in lines] == ["header"] + ["trial"] * 4
    saved = json.loads(out.read_text())
    assert [r["rank"] for r in saved] == [1, 2]
    assert all(r["n_seeds"] == 2 and r["total_params"] == 7198 for r in saved)

    shown = run_cli("show", str(log))
    assert shown.returncode == 0, shown.stderr
    assert "4 models, 2 configurations" in shown.stdout
    assert "TOP 2 OF 2" in shown.stdout and "synaptic_resampling=False" in shown.stdout
    val = f"{saved[0]['val_accuracy']:.4f}"
    assert val in shown.stdout  # the same numbers as the search printed

    again = run_cli("search", "spec.json", "--log", str(log), cwd=tmp_path, env=jax_cache)
    assert again.returncode == 2 and "--resume" in again.stderr

    resumed = run_cli("search", "spec.json", "--log", str(log), "--resume", "--quiet",
                      cwd=tmp_path, env=jax_cache)
    assert resumed.returncode == 0, resumed.stderr
    assert "bucket" not in resumed.stdout and "TOP 2 OF 2" in resumed.stdout
    assert len(log.read_text().splitlines()) == 5  # nothing retrained


# ---- in process, nothing trains ----------------------------------------------------------

def test_estimate_prints_the_exact_count(capsys):
    status, out, _ = run_main(capsys, "estimate", "--architecture", "dendritic_simple",
                              "--n-neurons", "12", "--n-dendrites", "6",
                              "--n-dendrite-inputs", "96")
    assert status == 0 and out.strip() == "7198"
    # That it loads no JAX: tests/test_architecture.py, "cli estimate".


def test_estimate_of_the_dense_baseline_needs_only_its_width(capsys):
    status, out, _ = run_main(capsys, "estimate", "--architecture", "mlp", "--hidden-dim", "10")
    assert status == 0 and out.strip() == str(784 * 10 + 10 + 10 * 10 + 10)
    status, out, _ = run_main(capsys, "estimate", "--architecture", "mlp", "--hidden-dim", "0")
    assert status == 0 and out.strip() == "7850"
    status, _, err = run_main(capsys, "estimate", "--architecture", "mlp")
    assert status == 2 and "needs hidden_dim" in err
    status, _, err = run_main(capsys, "estimate", "--n-neurons", "12")
    assert status == 2 and "n_dendrites" in err


@pytest.mark.parametrize("spec, message", [
    ({"grid": {"n_neurons": [0]}}, "n_neurons=0"),
    ({"grid": {"n_neurons": [12]}, "max_param": 8000}, "did you mean 'max_params'"),
    ({"max_params": 8000}, "exactly one of 'grid'"),
])
def test_bad_specs_exit_2_with_one_line(tmp_path, capsys, spec, message):
    (tmp_path / "spec.json").write_text(json.dumps({"data_dir": str(SAMPLE_DIR), **spec}))
    status, _, err = run_main(capsys, "search", str(tmp_path / "spec.json"))
    assert status == 2
    assert message in err and "Traceback" not in err
    assert err.startswith("dendrax: error: ")
    assert len(err.strip().splitlines()) == 1


def test_show_of_a_missing_log_exits_2(tmp_path, capsys):
    status, _, err = run_main(capsys, "show", str(tmp_path / "nope.jsonl"))
    assert status == 2 and "no search log" in err


# ---- in process, fake trainer ------------------------------------------------------------

@pytest.fixture
def fake_searcher(monkeypatch):
    """Make the CLI's searchers train with the fake trainer on fake_data."""
    trainer = FakeTrainer()
    searcher = functools.partial(HyperparameterSearcher, data=fake_data(), trainer=trainer)
    monkeypatch.setattr(cli, "HyperparameterSearcher", searcher)
    monkeypatch.setattr(examples, "HyperparameterSearcher", searcher)
    monkeypatch.setattr("dendrax.population.compile_cache.enable_compilation_cache",
                        lambda: None)
    return trainer


def test_yaml_spec_with_distributions(tmp_path, fake_searcher, capsys):
    pytest.importorskip("yaml")
    (tmp_path / "spec.yaml").write_text(
        "max_params: 8000\nn_epochs: 2\n"
        "distributions:\n"
        "  n_neurons: {range: [10, 14]}\n"
        "  n_dendrites: [6, 8]\n"
        "  n_dendrite_inputs: {type: randint, low: 64, high: 128}\n"
        "n_trials: 30\n")
    assert cli.main(["search", str(tmp_path / "spec.yaml"), "--quiet", "--top", "2",
                     "--out", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "TOP 2 OF" in out and "Results saved" in out
    assert {c.n_neurons for c in fake_searcher.trained} <= {10, 11, 12, 13, 14}
    assert fake_searcher.settings[0].n_epochs == 2


def test_yaml_without_pyyaml_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ImportError
    (tmp_path / "spec.yml").write_text("grid: {n_neurons: [12]}\n")
    assert cli.main(["search", str(tmp_path / "spec.yml")]) == 2
    assert "pyyaml" in capsys.readouterr().err


def test_scenario_passes_its_options(fake_searcher, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["scenario", "budget", "--max-params", "5000", "--n-epochs", "1",
                     "--n-trials", "20", "--seeds-per-config", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "OPTIMIZING FOR BUDGET: 5000" in out and "bucket" not in out
    assert fake_searcher.settings[0].n_epochs == 1
    assert len({c.seed for c in fake_searcher.trained}) > 1
    assert cli.main(["scenario", "quick", "--n-trials", "3"]) == 2  # a fixed grid


def test_quickstart_says_which_data_it_used(capsys):
    trainer = FakeTrainer()
    searcher = examples.quickstart(verbose=False, data=fake_data(is_sample=True),
                                   trainer=trainer)
    out = capsys.readouterr().out
    assert "EMBEDDED SAMPLE" in out and "apt-get install dataset-fashion-mnist" in out
    assert "TOP 5 OF 8 CONFIGURATIONS" in out and "Data used:" in out
    assert len(trainer.trained) == 8 * examples.QUICKSTART["seeds_per_config"]
    assert searcher.max_params == 8000


# ---- the original README's Quick Start, verbatim but for n_epochs and subset_size ----------

def test_readme_quick_start_runs_unchanged(tmp_path, monkeypatch, capsys):
    # The fake trainer stands in for JAX (this grid has four shape buckets: ~20 s of
    # compiles); the data is real: the embedded sample, through $DENDRAX_DATA_DIR.
    monkeypatch.setattr(HyperparameterSearcher, "trainer", FakeTrainer())
    monkeypatch.setenv("DENDRAX_DATA_DIR", str(SAMPLE_DIR))
    monkeypatch.chdir(tmp_path)

    from dendrax import HyperparameterSearcher as Searcher

    # Create searcher with 8000 parameter budget
    searcher = Searcher(
        dataset="fashion-mnist",
        max_params=8000,
        n_epochs=1,
        subset_size=1000,
        verbose=True
    )

    # Define parameter search space
    param_grid = {
        'n_neurons': [8, 10, 12],
        'n_dendrites': [4, 6, 8],
        'n_dendrite_inputs': [64, 96, 128],
        'soma_enabled': [True, False],
        'architecture': ['dendritic_simple'],
        'synaptic_resampling': [True, False]
    }

    # Run search
    searcher.grid_search(param_grid, max_trials=20)

    # View results
    searcher.print_results(5)
    searcher.save_results("my_search_results.json")

    out = capsys.readouterr().out
    assert "TOP 5 OF 8 CONFIGURATIONS" in out
    saved = json.loads((tmp_path / "my_search_results.json").read_text())
    assert len(saved) == 8
    best = searcher.get_best_results(1)[0]
    assert best.params and 6400 <= best.total_params <= 8000
    print(f"Best config: {best.params}")
    print(f"Accuracy: {best.test_accuracy:.3f}")
    print(f"Parameters: {best.total_params}")


def test_format_duration():
    assert [format_duration(s) for s in (0, 42.4, 725, 3723, float("nan"))] == [
        "0:00", "0:42", "12:05", "1:02:03", "?"]


def test_the_readme_spec_runs(tmp_path, monkeypatch):
    """The spec under "Your first real search" in the README, as written, with the fake
    trainer: it parses, fills its budget and trains n_trials configs."""
    readme = (Path(REPO) / "README.md").read_text()
    text = readme.split("## Your first real search")[1].split("```json")[1].split("```")[0]
    spec = tmp_path / "search.json"
    spec.write_text(text)
    trainer = FakeTrainer()
    monkeypatch.setattr(cli, "HyperparameterSearcher", functools.partial(
        HyperparameterSearcher, data=fake_data(), trainer=trainer))
    assert cli.main(["search", str(spec), "--quiet", "--log", str(tmp_path / "run.jsonl")]) == 0
    options = json.loads(text)
    assert len({c.to_dict()["n_neurons"] for c in trainer.trained}) > 1
    assert len(trainer.trained) == options["n_trials"] * options["seeds_per_config"]
