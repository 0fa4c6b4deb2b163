"""Figures (dendrax.plots): each is a real, non-blank PNG, from a searcher and from a log."""

import os
import subprocess
import sys

import numpy as np
import pytest

from dendrax import cli, plots
from conftest import FakeTrainer, make_searcher

matplotlib_image = pytest.importorskip("matplotlib.image")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SPACE = {"n_neurons": (6, 14), "n_dendrites": [4, 6, 8], "n_dendrite_inputs": (32, 128),
         "synaptic_resampling": [True, False], "steps_to_resample": [1, 2],
         "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}


def swaps_trainer():
    """Fake histories whose swap counts vary by epoch and seed."""
    trainer = FakeTrainer(diverges=lambda c: c.n_neurons == 13)
    plain = trainer.__call__

    def call(configs, data, settings, **kwargs):
        outcomes = plain(configs, data, settings, **kwargs)
        for o in outcomes:
            o.history["swaps"] = [(e % 3 + 1) * (o.config.seed % 5 + 1) *
                                  o.config.synaptic_resampling for e in range(settings.n_epochs)]
        return outcomes
    return call


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "search.jsonl"
    s = make_searcher(swaps_trainer(), seeds_per_config=2, n_epochs=6, batch_size=16,
                      max_params=100_000, min_param_ratio=0.01, log_path=str(log))
    s.random_search(SPACE, n_trials=24)
    assert any(r.diverged for r in s.results)
    return s


def assert_real_png(path):
    assert os.path.getsize(path) > 5_000, path
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib_image.imread(path)[..., :3]
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500
    assert pixels.std() > 0.05, f"{path} is (nearly) blank"
    # Not just a frame: a good share of the image differs from the background.
    assert np.mean(np.abs(pixels - pixels[0, 0]).sum(-1) > 0.1) > 0.01


def test_searcher_plot_writes_four_real_pngs(searcher, tmp_path):
    paths = searcher.plot(str(tmp_path / "figures"), top=4)
    assert sorted(paths) == sorted(plots.FIGURES)
    for name, path in paths.items():
        assert path == str(tmp_path / "figures" / f"{name}.png")
        assert_real_png(path)


def test_dendrax_plot_reads_a_log_without_jax(searcher, tmp_path):
    out = tmp_path / "img"
    code = ("import sys; from dendrax.cli import main; "
            f"status = main(['plot', {searcher.log_path!r}, '--out', {str(out)!r}, "
            "'--top', '3', '--metric', 'test']); "
            "print('jax' in sys.modules, status)")
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": REPO}, timeout=120)
    *printed, imported_jax, status = probe.stdout.split()
    assert (imported_jax, status) == ("False", "0"), probe.stderr
    assert sorted(printed) == sorted(str(out / f"{name}.png") for name in plots.FIGURES)
    for path in printed:
        assert_real_png(path)


def test_figures_of_edge_cases_are_still_drawn(tmp_path):
    s = make_searcher(FakeTrainer(diverges=lambda c: True))
    s.grid_search({"n_neurons": [12], "n_dendrites": [6], "n_dendrite_inputs": [96]})
    paths = plots.plot_search(s.results, str(tmp_path))  # everything diverged
    for path in paths.values():
        assert os.path.getsize(path) > 3_000
    with pytest.raises(ValueError, match="metric"):
        plots.plot_search(s.results, str(tmp_path), metric="train")


def test_searched_parameters_and_rounds_per_epoch(searcher):
    assert set(plots.searched_parameters(searcher.results)) == set(SPACE)
    # 64 samples / batch 16 = 4 steps per epoch; a round every 3 steps: 12 steps, 4 rounds.
    rounds = plots.rounds_per_epoch(4, 3, 3)
    assert rounds.tolist() == [1, 1, 2] and rounds.sum() == 12 // 3
    assert plots.rounds_per_epoch(211, 128, 4).sum() == 4 * 211 // 128


def test_missing_matplotlib_is_one_clear_line(searcher, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now fails
    assert cli.main(["plot", searcher.log_path, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'dendrax[plot]'" in err and len(err.strip().splitlines()) == 1
