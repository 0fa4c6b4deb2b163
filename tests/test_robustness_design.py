"""dendrax.robustness: the designs' runs and seeds, and the report's statistics on synthetic
scores whose structure is known."""

from __future__ import annotations

import itertools
import json
import math
import os

import numpy as np
import pytest

from dendrax import robustness as rb
from dendrax import stats
from dendrax.config import ModelConfig

ON_OFF = {"on": {"synaptic_resampling": True}, "off": {"synaptic_resampling": False}}
THREE = [{"lr": 1e-3}, {"lr": 5e-4}, {"lr": 1e-4}]


# ---- designs ---------------------------------------------------------------------------------

def test_design_sizes():
    assert len(rb.replicate(THREE, 5)) == 15
    assert len(rb.paired(ON_OFF, 8)) == 16
    assert len(rb.factorial({"lr": 1e-3})) == 64
    two_streams = rb.factorial({"lr": 1e-3}, levels={"init": 2, "order": 3})
    assert len(two_streams) == 6 and two_streams.factors == ("init", "order")
    assert all("rewire_seed" not in r.params for r in two_streams.runs)  # held fixed
    assert len(rb.factorial(ON_OFF, levels={"init": 2, "order": 2, "rewire": 2})) == 16
    assert [r.index for r in rb.replicate(THREE, 5).runs] == list(range(15))


def test_seeds_are_deterministic_and_depend_on_the_master_seed():
    for make in (lambda s: rb.replicate(THREE, 4, s), lambda s: rb.paired(THREE, 4, s),
                 lambda s: rb.factorial(THREE, {"init": 3, "order": 3}, s)):
        assert make(7) == make(7)
        assert [r.params for r in make(7).runs] != [r.params for r in make(8).runs]


def test_replicate_seeds_are_distinct_and_streams_unset():
    design = rb.replicate(THREE, 6, seed=3)
    seeds = [r.params["seed"] for r in design.runs]
    assert len(set(seeds)) == 18  # no config shares a seed with another: independent runs
    assert not any(f in r.params for r in design.runs for f in rb.SEED_FIELDS.values())
    assert all(0 <= s < 2**31 for s in seeds)


def test_paired_configs_share_the_searchers_seeds():
    from dendrax.search.pipeline import replicate_seed

    design = rb.paired(THREE, 5, seed=11)
    per_config = [[r.params["seed"] for r in design.runs if r.config_index == c]
                  for c in range(3)]
    assert per_config[0] == per_config[1] == per_config[2]
    assert per_config[0] == [replicate_seed(11, j) for j in range(5)]
    assert len(set(per_config[0])) == 5


def test_factorial_covers_the_grid_with_one_seed_per_level():
    design = rb.factorial({"lr": 1e-3}, levels={"init": 4, "order": 3, "rewire": 2}, seed=5)
    cells = [(r.levels["init"], r.levels["order"], r.levels["rewire"]) for r in design.runs]
    assert sorted(cells) == list(itertools.product(range(4), range(3), range(2)))
    for r in design.runs:
        assert r.params["seed"] == 5
        for stream in rb.STREAMS:
            assert r.params[f"{stream}_seed"] == rb.stream_seed(5, stream, r.levels[stream])
    for stream, n in (("init", 4), ("order", 3), ("rewire", 2)):
        assert len({r.params[f"{stream}_seed"] for r in design.runs}) == n
    # The streams draw different seeds at the same level.
    assert len({rb.stream_seed(5, s, 0) for s in rb.STREAMS}) == 3


@pytest.mark.parametrize("kind", rb.DESIGNS)
def test_seeds_do_not_depend_on_the_order_of_configs(kind):
    forward = rb.make_design(kind, THREE, n_seeds=4, levels={"init": 2, "order": 2}, seed=2)
    backward = rb.make_design(kind, THREE[::-1], n_seeds=4, levels={"init": 2, "order": 2},
                              seed=2)
    fields = ["seed", "init_seed", "order_seed"]

    def runs(design):
        return sorted(json.dumps([rb._config_key(design.configs[r.config_index]), r.levels,
                                  [r.params.get(f) for f in fields]]) for r in design.runs)

    assert runs(forward) == runs(backward)


def test_configs_from_model_configs_and_names():
    design = rb.paired([ModelConfig(n_neurons=8), ModelConfig(n_neurons=12)], 2)
    assert design.names == ("n_neurons=8", "n_neurons=12")
    assert design.runs[0].params["n_dendrites"] == ModelConfig().n_dendrites
    assert rb.replicate({"lr": 1e-3}, 3).names == ("config",)
    assert rb.replicate({}, 2).configs == ({},)  # the default config
    with pytest.raises(ValueError, match="same apart from their seeds"):
        rb.paired([{"lr": 1e-3, "seed": 1}, {"lr": 1e-3, "seed": 2}], 2)
    with pytest.raises(ValueError, match="levels name streams"):
        rb.factorial({"lr": 1e-3}, levels={"dropout": 2})
    with pytest.raises(ValueError, match="n_seeds"):
        rb.replicate(THREE, 0)
    with pytest.raises(ValueError, match="design="):
        rb.make_design("crossed", THREE, n_seeds=2)


# ---- the report ------------------------------------------------------------------------------

def _factorial_report(init_sd=0.006, order_sd=0.0, noise_sd=0.001, levels=6, seed=0):
    design = rb.factorial({"lr": 1e-3}, levels={"init": levels, "order": levels, "rewire": 2})
    rng = np.random.default_rng(seed)
    # Level effects scaled to sample variance exactly init_sd² and order_sd².
    init, order = (z / z.std(ddof=1) * sd for z, sd in
                   ((rng.normal(size=levels), init_sd), (rng.normal(size=levels), order_sd)))
    scores = []
    for r in design.runs:
        test = 0.85 + init[r.levels["init"]] + order[r.levels["order"]] + rng.normal(0, noise_sd)
        scores.append({"val": [0.80, test + 0.01], "test": [0.79, test]})
    return rb.RobustnessReport(design, scores, n_test=10_000, n_boot=2000)


def test_variance_components_find_the_source_of_the_spread():
    report = _factorial_report()
    vc = report.variance_components()["config"]
    assert vc.factors == ("init", "order", "rewire")
    assert vc["init"].raw == pytest.approx(0.006 ** 2, rel=0.1)
    assert vc["init"].share > 0.9 and vc["init"].ci[0] > 0
    assert vc["order"].share < 0.05 and vc["rewire"].share < 0.05
    assert vc["residual"].variance == pytest.approx(0.001 ** 2, rel=0.5)
    # The same numbers as dendrax.stats on the report's final scores.
    direct = stats.variance_components(
        report.final("test"), {f: [r.levels[f] for r in report.design.runs]
                               for f in ("init", "order", "rewire")}, n_draws=2000)
    assert direct == vc


def test_paired_comparison_and_the_choice_by_validation():
    design = rb.paired(ON_OFF, 16, seed=1)
    rng = np.random.default_rng(4)
    seed_effect = rng.normal(0, 0.005, 16)
    scores = []
    for r in design.runs:
        base = 0.85 + seed_effect[r.levels["seed"]] + rng.normal(0, 0.0005)
        test = base + (0.003 if r.config_index == 0 else 0.0)
        val = base + (0.0 if r.config_index == 0 else 0.002)  # validation prefers "off"
        scores.append({"val": [val], "test": [test]})
    report = rb.RobustnessReport(design, scores, n_test=10_000, n_boot=2000)
    (pair, difference), = report.paired_differences().items()
    assert pair == ("on", "off")
    assert difference.t_ci[0] < 0.003 < difference.t_ci[1] and difference.t_ci[0] > 0
    assert difference.std < 0.001  # pairing removed the seeds' shared 0.5-point spread
    assert report.summaries()["on"].std > 0.003
    matrix = report.improvement()
    assert matrix.names == ("on", "off") and 0.5 < matrix.probability[0][1] < 0.8
    assert report.best() == "off"  # chosen by validation, although "on" tests higher
    (plan,) = report.seed_plan(delta=0.005)
    assert plan["paired"] and plan["seeds"] == stats.seeds_needed(0.005, difference.std)
    text = report.format()
    assert "off *" in text and "on *" not in text
    assert "Validation is what any choice uses" in text and "on − off" in text


def test_diverged_runs_are_left_out_and_counted():
    report = _factorial_report(levels=2)
    report.scores[3]["test"][-1] = math.nan
    report._cache.clear()
    assert report.config_scores("test")["config"].size == 7
    assert report.variance_components() == {}  # no longer a complete crossed grid
    assert "7/8" in report.format()


def test_replicate_report_plans_unpaired():
    design = rb.replicate(THREE, 5)
    rng = np.random.default_rng(0)
    scores = [{"val": [0.8], "test": [0.85 + 0.01 * r.config_index + rng.normal(0, 0.004)]}
              for r in design.runs]
    report = rb.RobustnessReport(design, scores, n_boot=500)
    assert report.paired_differences() == {} and report.variance_components() == {}
    plan = report.seed_plan(delta=0.005)
    assert [p["paired"] for p in plan] == [False] * 3
    assert plan[0]["seeds"] == stats.seeds_needed(0.005, report.summaries()["lr=0.001"].std,
                                                  paired=False)
    p = np.array(report.improvement().probability)
    assert p[0, 2] < 0.5 < p[2, 0]  # lr=0.001 scores lowest, lr=0.0001 highest
    assert report.noise_floor() == {}  # n_test unknown


def test_epoch_curves_and_histories():
    design = rb.replicate({"lr": 1e-3}, 4)
    histories = [{"val_accuracy": [0.5 + 0.01 * i, 0.6 + 0.01 * i],
                  "test_accuracy": [0.5 + 0.01 * i, 0.62 + 0.01 * i] + [0.7] * (i == 0)}
                 for i in range(4)]
    report = rb.RobustnessReport.from_histories(design, histories, n_boot=500)
    curve = report.epoch_curves("test")["config"]
    assert curve["epoch"] == [1, 2, 3]
    assert curve["mean"][:2] == pytest.approx([0.515, 0.635])
    assert all(lo <= m <= hi for lo, m, hi in zip(curve["low"][:2], curve["mean"][:2],
                                                   curve["high"][:2]))
    assert math.isnan(curve["low"][2])  # one run reached epoch 3: no interval
    assert report.final("val").tolist() == pytest.approx([0.6, 0.61, 0.62, 0.63])


def test_save_load_round_trip(tmp_path):
    report = _factorial_report(levels=2)
    report.scores[0]["val"][0] = math.nan  # stored as null
    path = str(tmp_path / "study.json")
    assert report.save(path) == path
    assert os.listdir(tmp_path) == ["study.json"]  # no temporary file left behind
    text = open(path).read()
    assert "NaN" not in text and "null" in text
    loaded = rb.RobustnessReport.load(path)
    assert loaded.design == report.design
    assert json.dumps(loaded.to_dict()) == json.dumps(report.to_dict())
    assert loaded.format() == report.format()
    with pytest.raises(ValueError, match="not a dendrax robustness report"):
        rb.RobustnessReport.from_dict({"format": "other"})


def test_to_dataframe_has_one_row_per_run_and_epoch():
    pytest.importorskip("pandas", reason="pandas is not installed")
    report = _factorial_report(levels=2)
    frame = report.to_dataframe()
    assert len(frame) == 8 * 2
    assert {"run", "config", "init", "order", "rewire", "seed", "init_seed", "epoch", "val",
            "test"} <= set(frame.columns)
    last = frame[frame.epoch == 2].sort_values("run")
    assert last.test.tolist() == pytest.approx(report.final("test").tolist())
