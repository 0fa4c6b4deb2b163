"""dendrax.robustness_plots: every figure drawn from synthetic studies, as real files."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="matplotlib is not installed")

from dendrax import robustness as rb  # noqa: E402
from dendrax import robustness_plots as plots  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def _report(design):
    rng = np.random.default_rng(0)
    scores = []
    for r in design.runs:
        final = 0.85 + 0.003 * r.config_index + 0.002 * r.levels.get("init", 0) \
            + rng.normal(0, 0.002)
        curve = [final - 0.1, final - 0.03, final]
        scores.append({"val": [v + 0.005 for v in curve], "test": curve})
    return rb.RobustnessReport(design, scores, n_test=10_000, n_boot=500)


@pytest.fixture(scope="module")
def factorial_report():
    configs = {"on": {"synaptic_resampling": True}, "off": {"synaptic_resampling": False}}
    return _report(rb.factorial(configs, levels={"init": 3, "order": 2, "rewire": 2}))


@pytest.mark.parametrize("name", plots.FIGURES)
def test_each_figure_writes_a_png(factorial_report, tmp_path, name):
    path = str(tmp_path / f"{name}.png")
    assert getattr(plots, name)(factorial_report, path, caption="synthetic") == path
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG and len(data) > 5000


def test_plot_report_skips_what_the_design_lacks(tmp_path, monkeypatch):
    # Figures never go through pyplot: with pyplot unimportable they are still drawn
    # (whatever other tests of the session imported).
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    written = plots.plot_report(_report(rb.replicate({"lr": 1e-3}, 6)), str(tmp_path / "f"),
                                fmt="svg")
    assert [p.rsplit("/", 1)[1] for p in written] == [
        "score_distributions.svg", "performance_profiles.svg", "epoch_curves.svg"]
    assert open(written[0]).read().lstrip().startswith("<?xml")


def test_pdf_and_bad_extensions(factorial_report, tmp_path):
    path = plots.epoch_curves(factorial_report, str(tmp_path / "curves.pdf"))
    assert open(path, "rb").read(5) == b"%PDF-"
    with pytest.raises(ValueError, match="png"):
        plots.epoch_curves(factorial_report, str(tmp_path / "curves.jpg"))
    with pytest.raises(ValueError, match="factorial"):
        plots.variance_components(_report(rb.paired([{"lr": 1e-3}, {"lr": 1e-4}], 3)),
                                  str(tmp_path / "v.png"))
