"""HyperparameterSearcher with a fake trainer: budget, buckets, ranking, seeds, saving."""

import json
import math

import numpy as np
import pytest

from dendrax.config import ModelConfig
from dendrax.search import (HyperparameterSearcher, LogError, SearchResult, group_by_shape,
                            replicate_seed, seed_stats, t_quantile)
from conftest import CONFIG_7198, FakeTrainer, make_searcher


def one(config):
    return {k: [v] for k, v in config.items()}


# ---- the original's helpers ------------------------------------------------------------

def test_constructor_defaults_match_the_original():
    s = make_searcher()
    assert (s.dataset, s.subset_size, s.max_params, s.min_param_ratio, s.n_epochs, s.lr,
            s.weight_decay, s.batch_size, s.n_classes) == (
        "fashion-mnist", None, 8000, 0.8, 15, 0.0005, 0.01, 256, 10)
    assert s.min_params == 6400
    assert HyperparameterSearcher.__init__.__defaults__[-1] is True  # verbose=True


def test_estimate_params_is_exact():
    est = HyperparameterSearcher.estimate_params
    assert est(784, 12, 6, 96) == 7198
    # soma_disabled: Dendritic(no soma) -> Linear(n_dendrites -> n_neurons) -> Linear(-> 10)
    assert est(784, 12, 25, 64, architecture="soma_disabled") == 2067
    assert est(784, 10, 6, 64, architecture="dendritic_with_hidden", hidden_dim=8) == (
        60 * 64 + 60 + 60 + 10 + 10 * 8 + 8 + 8 * 10 + 10)
    # in_dim matters only for fully-connected branches
    assert est(784, 4, 2, 96) == est(3072, 4, 2, 96)
    assert est(3072, 4, 2, 96, strategy="fully-connected") == 8 * 3072 + 8 + 8 + 4 + 50


def test_create_model_returns_config_and_count():
    config, total = make_searcher(lr=0.001).create_model(CONFIG_7198)
    assert isinstance(config, ModelConfig)
    assert (config.n_neurons, config.n_dendrites, config.n_dendrite_inputs) == (12, 6, 96)
    assert config.lr == 0.001 and total == 7198


def test_is_valid_config_checks_both_ends_of_the_budget():
    s = make_searcher(max_params=7198, min_param_ratio=1.0)
    assert s.is_valid_config(CONFIG_7198)
    assert not s.is_valid_config({**CONFIG_7198, "n_dendrite_inputs": 97})  # above
    assert not s.is_valid_config({**CONFIG_7198, "n_dendrite_inputs": 95})  # below
    assert not s.is_valid_config({"n_neurons": 0})                         # invalid


# ---- budget filtering ---------------------------------------------------------------------

def test_budget_rejects_at_both_ends_with_reasons_and_trains_the_rest():
    trainer = FakeTrainer()
    s = make_searcher(trainer, max_params=7000, min_param_ratio=0.8)
    s.grid_search({"n_neurons": [6, 10, 12], "n_dendrites": [6], "n_dendrite_inputs": [96]})
    counts = {n: HyperparameterSearcher.estimate_params(784, n, 6, 96) for n in (6, 10, 12)}
    assert counts[6] < 5600 <= counts[10] <= 7000 < counts[12]
    assert [c.n_neurons for c in trainer.trained] == [10]
    reasons = {r.params["n_neurons"]: (r.total_params, r.reason) for r in s.rejected}
    assert reasons == {6: (counts[6], f"{counts[6]:,} below 80% floor (5,600)"),
                       12: (7198, "7,198 > max 7,000")}


def test_budget_boundaries_are_inclusive():
    s = make_searcher(max_params=7198, min_param_ratio=1.0)
    assert s.budget.reason(7198) is None
    assert s.budget.reason(7199) == "7,199 > max 7,198"
    assert s.budget.reason(7197) == "7,197 below 100% floor (7,198)"


def test_rejections_are_printed_when_verbose(capsys):
    s = make_searcher(verbose=True, max_params=7000)
    s.grid_search({"n_neurons": [10, 12], "n_dendrites": [6], "n_dendrite_inputs": [96]})
    out = capsys.readouterr().out
    assert "1 of 2 configurations are outside the budget" in out
    assert "7,198 > max 7,000: n_neurons=12, n_dendrites=6" in out


# ---- buckets and the single trainer call -------------------------------------------------

def test_group_by_shape_by_shape():
    configs = [ModelConfig(n_neurons=12, n_dendrites=6, n_dendrite_inputs=96, seed=0),
               ModelConfig(n_neurons=10, n_dendrites=6, n_dendrite_inputs=96),
               ModelConfig(n_neurons=12, n_dendrites=6, n_dendrite_inputs=96, seed=1,
                           percentage_resample=0.5, lr=0.01),
               ModelConfig(architecture="soma_disabled", n_neurons=12, n_dendrites=25),
               ModelConfig(architecture="soma_disabled", n_neurons=12, n_dendrites=25,
                           synaptic_resampling=False)]
    buckets = group_by_shape(configs, 784)
    assert list(buckets.values()) == [[0, 2], [1], [3, 4]]
    assert list(buckets) == [configs[0].shape(784), configs[1].shape(784),
                             configs[3].shape(784)]


def test_trainer_is_called_once_with_every_model():
    trainer = FakeTrainer()
    s = make_searcher(trainer, seeds_per_config=2, max_params=100_000, min_param_ratio=0.01)
    s.grid_search({"n_neurons": [8, 10], "percentage_resample": [0.1, 0.3]})
    assert len(trainer.calls) == 1
    assert len(trainer.trained) == 8                      # 4 configs x 2 seeds
    assert len(s.results) == 4 and all(r.n_seeds == 2 for r in s.results)
    assert {r.bucket for r in s.results} == {"dendritic_simple|soma|n8|d6|k128|random",
                                             "dendritic_simple|soma|n10|d6|k128|random"}
    settings = trainer.settings[0]
    assert (settings.n_epochs, settings.batch_size, settings.data_order) == (15, 256, "own")


def test_searcher_lr_and_weight_decay_are_defaults_a_grid_can_override():
    trainer = FakeTrainer()
    s = make_searcher(trainer, lr=0.002, weight_decay=0.05)
    s.grid_search({**one(CONFIG_7198), "weight_decay": [0.0, 0.1]})
    s.grid_search(one(CONFIG_7198))
    assert [(c.lr, c.weight_decay) for c in trainer.trained] == [
        (0.002, 0.0), (0.002, 0.1), (0.002, 0.05)]


def test_identical_draws_train_once():
    trainer = FakeTrainer()
    s = make_searcher(trainer)
    s.random_search({**one(CONFIG_7198), "synaptic_resampling": [True, False]}, n_trials=20)
    assert len(trainer.trained) == 2 and len(s.results) == 2


def test_explicit_seeds_in_a_grid_are_seeds_of_one_config():
    trainer = FakeTrainer()
    s = make_searcher(trainer)
    s.grid_search({**one(CONFIG_7198), "seed": [42, 123, 456]})
    assert [c.seed for c in trainer.trained] == [42, 123, 456]
    (result,) = s.results
    assert result.seeds == [42, 123, 456] and result.n_seeds == 3
    assert "seed" not in result.params


def test_per_trial_seeds_derive_from_the_master_seed():
    trainer = FakeTrainer()
    make_searcher(trainer, seed=7, seeds_per_config=3).grid_search(one(CONFIG_7198))
    seeds = [c.seed for c in trainer.trained]
    assert seeds == [7, replicate_seed(7, 1), replicate_seed(7, 2)]
    assert len(set(seeds)) == 3


# ---- ranking -------------------------------------------------------------------------------

def test_ranking_uses_validation_never_test():
    # Config A is best on test but worst on validation; B is the reverse.
    scores = {8: (0.70, 0.95), 10: (0.90, 0.60), 12: (0.80, 0.80)}
    trainer = FakeTrainer(score=lambda c: scores[c.n_neurons])
    s = make_searcher(trainer, max_params=100_000, min_param_ratio=0.01)
    s.grid_search({"n_neurons": [8, 10, 12]})
    best = s.get_best_results(3)
    assert [r.params["n_neurons"] for r in best] == [10, 12, 8]
    assert best[0].test_accuracy == pytest.approx(0.60)
    assert best[0].val_accuracy == pytest.approx(0.90)


def test_val_lcb_prefers_the_config_that_is_good_on_every_seed():
    # "steady" has the lower mean but a much tighter spread than "erratic".
    def score(c):
        jitter = (c.seed % 2) * 2 - 1
        return (0.84 + 0.001 * jitter, 0.5) if c.n_neurons == 8 else (0.86 + 0.05 * jitter, 0.5)

    ranked = {}
    for rank_by in ("val_mean", "val_lcb"):
        s = make_searcher(FakeTrainer(score=score), rank_by=rank_by,
                          max_params=100_000, min_param_ratio=0.01)
        s.grid_search({"n_neurons": [8, 10], "seed": [10, 11, 12, 13]})
        ranked[rank_by] = [r.params["n_neurons"] for r in s.get_best_results()]
    assert ranked == {"val_mean": [10, 8], "val_lcb": [8, 10]}


def test_diverged_configs_are_shown_but_never_ranked(capsys):
    trainer = FakeTrainer(score=lambda c: (0.99 if c.n_neurons == 8 else 0.8, 0.8),
                          diverges=lambda c: c.n_neurons == 8 and c.seed != 0)
    s = make_searcher(trainer, seeds_per_config=2, max_params=100_000, min_param_ratio=0.01)
    s.grid_search({"n_neurons": [8, 10]})
    diverged = [r for r in s.results if r.diverged]
    assert len(diverged) == 1 and diverged[0].diverged_seeds == [
        {"seed": replicate_seed(0, 1), "epoch": 1, "step": 5}]
    assert [r.params["n_neurons"] for r in s.get_best_results()] == [10]
    s.print_results()
    out = capsys.readouterr().out
    assert "DIVERGED, NOT RANKED (1)" in out and "1/2 seeds diverged" in out


# ---- multi-seed statistics -----------------------------------------------------------------

def test_t_quantile_matches_tables():
    table = {1: 12.706204736174707, 2: 4.302652729749464, 4: 2.7764451051977934,
             9: 2.2621571627982053, 30: 2.0422724563012373, 1000: 1.9623390808264078}
    for df, expected in table.items():
        assert t_quantile(0.975, df) == pytest.approx(expected, rel=1e-10)
    assert t_quantile(0.025, 4) == pytest.approx(-2.7764451051977934, rel=1e-10)
    assert t_quantile(0.5, 3) == pytest.approx(0.0, abs=1e-12)


def test_t_quantile_matches_scipy_where_available():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 5, 7, 15, 63, 250):
        for p in (0.6, 0.9, 0.975, 0.995):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9)


def test_multi_seed_stats_match_numpy():
    trainer = FakeTrainer()
    s = make_searcher(trainer, seeds_per_config=5)
    s.grid_search(one(CONFIG_7198))
    (result,) = s.results
    vals = np.array([trainer.score(c)[0] for c in trainer.trained])
    tests = np.array([trainer.score(c)[1] for c in trainer.trained])
    for values, mean, stats in ((vals, result.val_accuracy, result.val_stats),
                                (tests, result.test_accuracy, result.test_stats)):
        half = 2.7764451051977934 * values.std(ddof=1) / math.sqrt(5)
        assert mean == pytest.approx(values.mean(), abs=1e-12)
        assert stats.n == 5
        assert stats.mean == pytest.approx(values.mean(), abs=1e-12)
        assert stats.std == pytest.approx(values.std(ddof=1), rel=1e-12)
        assert stats.ci_low == pytest.approx(values.mean() - half, rel=1e-9)
        assert stats.ci_high == pytest.approx(values.mean() + half, rel=1e-9)
        assert (stats.min, stats.max) == (values.min(), values.max())
    assert result.seeds == [c.seed for c in trainer.trained]
    assert len(result.history) == 5 and len(result.history[0]["val_accuracy"]) == 15


def test_single_seed_has_no_spread():
    assert seed_stats([0.8]) is None
    s = make_searcher()
    s.grid_search(one(CONFIG_7198))
    assert s.results[0].val_stats is None and s.results[0].test_stats is None


def test_print_results_shows_mean_and_std(capsys):
    s = make_searcher(seeds_per_config=3)
    s.grid_search({**one(CONFIG_7198), "synaptic_resampling": [True, False]})
    s.print_results(5)
    out = capsys.readouterr().out
    assert "TOP 2 OF 2 CONFIGURATIONS (ranked by mean validation accuracy" in out
    assert "never used for ranking" in out
    assert " ± " in out and "7,198/8,000" in out


def test_seed_stats_match_numpy_for_any_sample_size():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 8, 30):
        values = rng.uniform(0.6, 0.9, n)
        stats = seed_stats(values)
        assert stats.n == n and stats.mean == pytest.approx(values.mean(), abs=1e-12)
        assert stats.std == pytest.approx(values.std(ddof=1), rel=1e-12)
        assert (stats.min, stats.max) == (values.min(), values.max())
        half = t_quantile(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)
        assert (stats.ci_low, stats.ci_high) == pytest.approx(
            (values.mean() - half, values.mean() + half), rel=1e-12)
    five = seed_stats([0.80, 0.82, 0.85, 0.81, 0.84])
    assert five.ci_high - five.mean == pytest.approx(
        2.7764451 * np.std([0.80, 0.82, 0.85, 0.81, 0.84], ddof=1) / math.sqrt(5), rel=1e-7)


def test_table_shows_each_configs_mean_and_std_and_the_ranking_basis(capsys):
    s = make_searcher(seeds_per_config=3, rank_by="val_lcb")
    s.grid_search({**one(CONFIG_7198), "synaptic_resampling": [True, False]})
    s.print_results(5)
    out = capsys.readouterr().out
    assert "ranked by lower 95% confidence bound of validation accuracy" in out
    for r in s.get_best_results():
        assert f"{r.val_accuracy:.4f} ± {r.val_stats.std:.4f}" in out
        assert f"{r.test_accuracy:.4f} ± {r.test_stats.std:.4f}" in out


# ---- saving ----------------------------------------------------------------------------------

def test_save_report_writes_every_field(tmp_path):
    trainer = FakeTrainer(diverges=lambda c: c.n_neurons == 11)
    s = make_searcher(trainer, seeds_per_config=2, max_params=7198)
    s.grid_search({"n_neurons": [11, 12, 13], "n_dendrites": [6], "n_dendrite_inputs": [96]})
    path = tmp_path / "report.json"
    s.save_report(str(path))
    doc = json.loads(path.read_text())
    assert doc["settings"]["matmul_dtype"] == "float32"
    assert doc["settings"]["dataset"] == "fashion-mnist"
    assert doc["settings"]["seeds_per_config"] == 2 and doc["settings"]["n_epochs"] == 15
    assert doc["budget"] == {"max_params": 7198, "min_param_ratio": 0.8, "min_params": 5758}
    assert doc["ranking"]["rank_by"] == "val_mean"
    assert [r["rank"] for r in doc["results"]] == [1, None]          # ranked, then diverged
    assert doc["results"][1]["diverged"] is True
    fields = {f for f in SearchResult.__dataclass_fields__}
    assert fields <= set(doc["results"][0])
    first = doc["results"][0]
    assert first["params"] == {"n_neurons": 12, "n_dendrites": 6, "n_dendrite_inputs": 96}
    assert first["total_params"] == 7198 and first["n_seeds"] == 2
    assert set(first["val_stats"]) == {"n", "mean", "std", "ci_low", "ci_high", "min", "max",
                                       "confidence"}
    finals = [h["val_accuracy"][-1] for h in first["history"]]
    assert first["val_stats"]["max"] == pytest.approx(max(finals))
    assert first["val_accuracy"] == pytest.approx(sum(finals) / 2)
    assert doc["rejected"] == [{"params": {"n_neurons": 13, "n_dendrites": 6,
                                           "n_dendrite_inputs": 96},
                                "total_params": 7797, "reason": "7,797 > max 7,198"}]
    # Diverged histories hold NaN; the file stays strict JSON (NaN written as null).
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    # save_results writes the same records as the original's list.
    s.save_results(str(tmp_path / "results.json"))
    assert json.loads((tmp_path / "results.json").read_text()) == doc["results"]


# 11 neurons diverge: two ranked results, then two diverged ones.
GRID = {"n_neurons": [11, 12], "n_dendrites": [6], "n_dendrite_inputs": [96, 100]}
ORIGINAL_FIELDS = ["params", "test_accuracy", "train_accuracy", "total_params", "train_time",
                   "final_test_loss"]


def test_save_results_writes_the_originals_list_of_records(tmp_path):
    """A script written for the original's file keeps working: a JSON list, one record per
    result, the original's six fields first; pandas reads it both ways."""
    import pandas as pd

    trainer = FakeTrainer(diverges=lambda c: c.n_neurons == 11)
    s = make_searcher(trainer, seeds_per_config=2, max_params=8000)
    s.grid_search(GRID)
    path = tmp_path / "results.json"
    s.save_results(str(path))
    with open(path) as f:
        records = json.load(f)
    assert isinstance(records, list) and len(records) == len(s.results) == 4
    assert [list(r)[:6] for r in records] == [ORIGINAL_FIELDS] * 4
    assert isinstance(records[0]["test_accuracy"], float)
    assert [r["rank"] for r in records] == [1, 2, None, None] and records[2]["diverged"] is True
    assert all(r["matmul_dtype"] == "float32" and r["n_seeds"] == 2 for r in records)
    best = s.get_best_results(1)[0]
    assert records[0]["params"] == best.params
    assert records[0]["test_accuracy"] == pytest.approx(best.test_accuracy)
    with open(path) as f:
        frame = pd.DataFrame(json.load(f))
    assert len(frame) == 4 and set(ORIGINAL_FIELDS) <= set(frame.columns)
    frame = pd.read_json(path)
    assert len(frame) == 4 and set(ORIGINAL_FIELDS) <= set(frame.columns)
    assert frame["total_params"].tolist() == [r["total_params"] for r in records]
    assert frame["params"][0] == best.params


def test_load_results_reads_both_formats(tmp_path):
    from dendrax.search import load_results

    trainer = FakeTrainer(diverges=lambda c: c.n_neurons == 11)
    s = make_searcher(trainer, seeds_per_config=2, max_params=8000)
    s.grid_search(GRID)
    s.save_results(str(tmp_path / "new.json"))
    s.save_report(str(tmp_path / "report.json"))
    ordered = s.get_best_results(5) + [r for r in s.results if r.diverged]
    for name in ("new.json", "report.json"):
        loaded = load_results(str(tmp_path / name))
        assert [r.params for r in loaded] == [r.params for r in ordered]
        assert loaded[0].val_stats == ordered[0].val_stats
        assert loaded[0].test_accuracy == ordered[0].test_accuracy
        assert loaded[2].diverged and np.isnan(loaded[2].test_accuracy)
    # dendrax's earlier save_results document: a dict with "results" (no rank key needed).
    old = {"version": 1, "settings": {}, "budget": {}, "rejected": [],
           "results": [{k: v for k, v in r.items() if k not in ("rank", "matmul_dtype")}
                       for r in json.loads((tmp_path / "new.json").read_text())]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert [r.params for r in load_results(str(tmp_path / "old.json"))] == \
        [r.params for r in ordered]
    # The original's own file (its six fields only) loads too.
    (tmp_path / "original.json").write_text(json.dumps([
        {"params": {"n_neurons": 12}, "test_accuracy": 0.85, "train_accuracy": 0.87,
         "total_params": 7198, "train_time": 9.3, "final_test_loss": 0.42}]))
    (only,) = load_results(str(tmp_path / "original.json"))
    assert only.test_accuracy == 0.85 and only.params == {"n_neurons": 12}
    (tmp_path / "bad.json").write_text(json.dumps({"front": []}))
    with pytest.raises(LogError, match="not a results file"):
        load_results(str(tmp_path / "bad.json"))


def test_results_accumulate_like_the_original():
    s = make_searcher()
    s.grid_search(one(CONFIG_7198))
    s.random_search({**CONFIG_7198, "synaptic_resampling": [False]}, n_trials=1)
    assert len(s.results) == 2
    s.results = []                                           # the original's reset idiom
    s.grid_search(one(CONFIG_7198))
    assert len(s.results) == 1


def test_train_and_evaluate_returns_none_outside_the_budget():
    trainer = FakeTrainer()
    s = make_searcher(trainer, max_params=7000)
    assert s.train_and_evaluate(CONFIG_7198) is None
    assert trainer.calls == [] and s.rejected[0].reason == "7,198 > max 7,000"
    result = s.train_and_evaluate({**CONFIG_7198, "n_neurons": 11})
    assert result.total_params == 6599 and s.results == []


@pytest.mark.parametrize("name, value", [("n_epochs", 3), ("batch_size", 64),
                                         ("max_params", 5000), ("min_param_ratio", 0.5),
                                         ("min_params", 100), ("seed", 7)])
def test_X5_settings_held_elsewhere_cannot_be_set_after_construction(name, value):
    """The original's users set ``searcher.n_epochs = 3`` after building it; that once
    reached the log but not the trainer (reliability round 2, case X-5). Now each is read
    from the one place it is held (settings or budget), and assigning it says to pass it
    to the constructor."""
    s = make_searcher(FakeTrainer(), n_epochs=2, batch_size=32, max_params=9000,
                      min_param_ratio=0.5, seed=3)
    before = getattr(s, name)
    assert before == {"n_epochs": 2, "batch_size": 32, "max_params": 9000,
                      "min_param_ratio": 0.5, "min_params": 4500, "seed": 3}[name]
    with pytest.raises(AttributeError, match=rf"pass {name}={value!r} to HyperparameterSearcher"):
        setattr(s, name, value)
    assert getattr(s, name) == before
    assert (s.settings.n_epochs, s.settings.batch_size) == (2, 32)
    assert (s.budget.max_params, s.budget.min_param_ratio) == (9000, 0.5)
