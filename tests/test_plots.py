"""Figures (dendrax.plots): each is a real, non-blank PNG, from a searcher and from a log."""

import os
import sys

import numpy as np
import pytest

from dendrax import cli, plots
from dendrax.search.record import read_search
from dendrax.search.results import format_value
from dendrax.search.table import varying_parameters
from conftest import FakeTrainer, make_searcher

matplotlib_image = pytest.importorskip("matplotlib.image")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SPACE = {"n_neurons": (6, 14), "n_dendrites": [4, 6, 8], "n_dendrite_inputs": (32, 128),
         "synaptic_resampling": [True, False], "steps_to_resample": [1, 2],
         "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}


def edited_trainer(trainer, edit):
    """``trainer`` whose outcomes pass through ``edit(outcomes, settings)`` before the
    searcher sees them, in each on_bucket_done call and in the returned list."""

    def call(configs, data, settings, *, on_bucket_done=None, **kwargs):
        def done(outcomes):  # before the searcher reads them
            edit(outcomes, settings)
            on_bucket_done(outcomes)
        outcomes = trainer(configs, data, settings, on_bucket_done=done, **kwargs)
        edit(outcomes, settings)
        return outcomes
    return call


def swaps_trainer():
    """Fake histories whose swap counts vary by epoch and seed."""
    def swaps(outcomes, settings):
        for o in outcomes:
            o.history["swaps"] = [(e % 3 + 1) * (o.config.seed % 5 + 1) *
                                  o.config.synaptic_resampling
                                  for e in range(settings.n_epochs)]

    return edited_trainer(FakeTrainer(diverges=lambda c: c.n_neurons == 13), swaps)


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


def test_figures_of_edge_cases_are_still_drawn(tmp_path):
    s = make_searcher(FakeTrainer(diverges=lambda c: True))
    s.grid_search({"n_neurons": [12], "n_dendrites": [6], "n_dendrite_inputs": [96]})
    paths = plots.plot_search(s.record(), str(tmp_path))  # everything diverged
    for path in paths.values():
        assert os.path.getsize(path) > 3_000
    with pytest.raises(ValueError, match="metric"):
        plots.plot_search(s.record(), str(tmp_path), metric="train")


def test_searched_parameters_and_rounds_per_epoch(searcher):
    assert set(varying_parameters(searcher.results)) == set(SPACE)
    # 64 samples / batch 16 = 4 steps per epoch; a round every 3 steps: 12 steps, 4 rounds.
    rounds = plots.rounds_per_epoch(4, 3, 3)
    assert rounds.tolist() == [1, 1, 2] and rounds.sum() == 12 // 3
    assert plots.rounds_per_epoch(211, 128, 4).sum() == 4 * 211 // 128


def test_missing_matplotlib_is_one_clear_line(searcher, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now fails
    assert cli.main(["plot", searcher.log_path, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'dendrax[plot]'" in err and len(err.strip().splitlines()) == 1


# ---- each figure, checked through matplotlib's objects ---------------------------------------

def halving_trainer():
    """Fake histories where every config with n_neurons < 10 stopped at epoch 2."""
    def stop(outcomes, settings):
        for o in outcomes:
            if o.config.n_neurons < 10 and not o.diverged:
                o.history = {k: v[:2] for k, v in o.history.items()}
                o.stopped_epoch = 2

    return edited_trainer(swaps_trainer(), stop)


@pytest.fixture(scope="module")
def halved(tmp_path_factory):
    s = make_searcher(halving_trainer(), seeds_per_config=3, n_epochs=6, batch_size=16,
                      max_params=100_000, min_param_ratio=0.01)
    s.random_search(SPACE, n_trials=16)
    return s


def legend_texts(figure):
    return [t.get_text() for legend in figure.legends for t in legend.get_texts()]


def test_training_curves_legend_names_only_what_varies_and_is_not_cut(halved):
    best = halved.get_best_results(3)
    figure = plots.training_curves(halved.results, top=3, caption="fashion-mnist · 6 epochs")
    left, right = figure.axes[:2]
    assert left.get_xlabel() == "epoch" and left.get_ylabel() == "validation accuracy"
    assert right.get_ylabel() == "training loss"
    assert len(left.get_lines()) == 3
    labels = legend_texts(figure)
    assert len(labels) == 3 and all(label.startswith(f"#{i}") for i, label in
                                    enumerate(labels, 1))
    varying = varying_parameters(best)
    for label, result in zip(labels, best):
        flat = label.replace("\n   ", " ")
        assert "…" not in flat
        for name in varying:  # every varying parameter, with its value
            assert f"{name}={format_value(result.config[name])}" in flat
        for name in set(result.config) - set(varying):
            assert f"{name}=" not in flat  # nothing that is the same for all three
    assert figure._supxlabel.get_text() == "fashion-mnist · 6 epochs"
    # The legend sits outside the axes, inside the figure: nothing is cut off.
    figure.canvas.draw()
    box = figure.legends[0].get_window_extent()
    frame = figure.bbox
    assert box.x0 >= frame.x0 and box.x1 <= frame.x1 + 1 and box.y0 >= frame.y0 - 1
    assert box.x0 >= left.get_window_extent().x1


def test_accuracy_by_hyperparameter_jitters_numbers_and_boxes_categories(halved):
    figure = plots.accuracy_by_hyperparameter(halved.results)
    panels = {ax.get_title(): ax for ax in figure.axes if ax.get_visible()}
    assert set(panels) == set(SPACE)
    alive = [r for r in halved.results if not r.diverged]
    n_neurons = panels["n_neurons"]
    (points,) = n_neurons.collections
    xs = points.get_offsets()[:, 0]
    truth = np.array([r.config["n_neurons"] for r in alive])
    assert len(xs) == len(alive)
    assert np.all(np.abs(xs - truth) <= 0.15) and np.any(xs != truth)  # jittered, near
    assert panels["lr"].get_xscale() == "log"
    resampling = panels["synaptic_resampling"]
    assert [t.get_text() for t in resampling.get_xticklabels()] == ["False", "True"]
    assert len(resampling.lines) >= 2 * 5  # a box (whiskers, caps, median...) per value
    assert len(panels["n_dendrites"].collections) == 1  # numeric: a scatter, no boxes


def test_rewiring_swaps_is_a_fraction_of_connections(halved):
    best = halved.get_best_results(2)
    figure = plots.rewiring_swaps(halved.results, top=2, steps_per_epoch=4, in_dim=784)
    ax = figure.axes[0]
    assert ax.get_ylabel() == "fraction of connections rewired per resampling round"
    for line, result in zip(ax.get_lines(), best):
        config = result.config
        rounds = plots.rounds_per_epoch(4, config["steps_to_resample"], 6)
        swaps = np.mean([h["swaps"] for h in result.history], axis=0)
        from dendrax.config import ModelConfig
        shape = ModelConfig.from_dict(config).shape(784)
        expected = swaps / rounds / (shape.n_branches * shape.k)
        assert line.get_ydata() == pytest.approx(expected, nan_ok=True)
        assert np.nanmax(line.get_ydata()) <= 1.0


def test_seed_robustness_shows_every_seed_with_mean_and_interval(halved):
    best = halved.get_best_results(4)
    figure = plots.seed_robustness(halved.results, top=4)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["#1", "#2", "#3", "#4"]
    seeds = [c for c in ax.collections if len(c.get_offsets()) == 3]
    assert len(seeds) == 4
    for points, result in zip(seeds, best):
        ys = sorted(points.get_offsets()[:, 1])
        assert ys == pytest.approx(sorted(h["val_accuracy"][-1] for h in result.history))
    assert "mean and 95% t-interval (within 0–1)" in legend_texts(figure)
    low, high = ax.get_ylim()
    assert low >= -0.05 and high <= 1.05


def test_halving_figure_marks_the_stopped(halved):
    figure = plots.halving(halved.results)
    ax = figure.axes[0]
    assert "rungs at epoch 2" in ax.get_title()
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [2]
    alive = [r for r in halved.results if not r.diverged]
    stopped = sum(r.stopped_by_halving * r.n_seeds for r in alive)
    finished = sum(r.n_seeds for r in alive) - stopped
    assert stopped and finished
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        f"stopped by halving ({stopped} models)", f"trained to the end ({finished} models)"]
    crosses = [line for line in ax.lines if line.get_marker() == "x" and len(line.get_xdata())]
    assert len(crosses) == stopped and all(line.get_xdata()[0] == 2 for line in crosses)


@pytest.mark.parametrize("fmt,magic", [("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_vector_formats_and_caption_from_a_log(searcher, tmp_path, fmt, magic, capsys):
    assert cli.main(["plot", searcher.log_path, "--out", str(tmp_path), "--format", fmt]) == 0
    for name in plots.FIGURES:
        with open(tmp_path / f"{name}.{fmt}", "rb") as f:
            assert f.read(5).startswith(magic)
    if fmt == "svg":
        text = (tmp_path / "training_curves.svg").read_text()
        assert "6 epochs" in text and "2 seeds per config" in text


def test_caption_line():
    spec = {"dataset": "fashion-mnist", "n_epochs": 3, "subset_size": 2000}
    assert plots.caption_line(spec, []) == ("fashion-mnist · 3 epochs · subset of 2,000 "
                                            "training examples")


def test_every_figure_from_a_real_fashion_mnist_log(tmp_path):
    """tests/data/fashion-mnist-search.jsonl: docs/img/search-spec.json run for real (10
    configs, 2 seeds, 6 epochs, halving η=2, 6,000 training images)."""
    log = os.path.join(REPO, "tests", "data", "fashion-mnist-search.jsonl")
    record = read_search(log)
    results = list(record.results)
    assert len(results) == 10 and record.settings["dataset"] == "fashion-mnist"
    assert record.steps_per_epoch == 6000 // 256 and record.in_dim == 784
    caption = plots.caption_line(record.settings, results)
    assert caption == ("fashion-mnist · 6 epochs · subset of 6,000 training examples · "
                       "2 seeds per config · 10 configs")
    paths = plots.plot_search(record, str(tmp_path), top=5)
    for path in paths.values():
        assert_real_png(path)
    swaps = plots.rewiring_swaps(results, top=5, steps_per_epoch=6000 // 256, in_dim=784)
    fractions = np.concatenate([line.get_ydata() for line in swaps.axes[0].get_lines()])
    # percentage_resample in [0.1, 0.5] of each branch's connections, minus dropped
    # conflicting draws: every round rewires between 5% and 50% of the connections.
    assert np.all((fractions > 0.05) & (fractions < 0.5))
    halving = plots.halving(results).axes[0]
    assert halving.get_title() == "Successive halving: rungs at epoch 1, 2, 4"
    curves = plots.training_curves(results, top=5)
    assert curves.axes[0].get_ylim()[1] < 1 and len(curves.axes[0].get_lines()) == 5
