"""searcher.optuna_search: Optuna proposes, the searcher budget-checks, trains each round as
one population (fake trainer), logs, and tells the mean validation accuracy back."""

import json
import os
import sys

import pytest

from dendrax.errors import ConfigError
from dendrax.search import replicate_seed
from conftest import FakeTrainer, hashed_scores, make_searcher

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)
State = optuna.trial.TrialState

SPACE = {"n_neurons": (4, 16), "n_dendrites": [4, 6, 8],
         "n_dendrite_inputs": {"type": "randint", "low": 16, "high": 128},
         "percentage_resample": {"type": "uniform", "low": 0.1, "high": 0.5},
         "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
         "architecture": "dendritic_simple"}
WIDE = {"max_params": 100_000, "min_param_ratio": 0.001}  # every config of SPACE fits
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_two_rounds_of_four_train_as_two_populations_and_tell_back(tmp_path):
    trainer = FakeTrainer()
    log = tmp_path / "log.jsonl"
    s = make_searcher(trainer, seeds_per_config=2, log_path=str(log), **WIDE)
    study = optuna.create_study(direction="maximize",  # in memory
                                sampler=optuna.samplers.TPESampler(seed=1))
    returned = s.optuna_search(SPACE, n_rounds=2, trials_per_round=4, study=study)
    assert returned is study
    assert len(study.trials) == 8
    assert all(t.state in (State.COMPLETE, State.PRUNED) for t in study.trials)
    # Each round is ONE trainer call: its 4 configs x 2 seeds.
    assert [len(call) for call in trainer.calls] == [8, 8]
    assert len(s.results) == 8
    for trial, result in zip(study.trials, s.results):
        assert trial.state == State.COMPLETE
        assert result.params == {**trial.params, "architecture": "dendritic_simple"}
        # The told value is the mean validation accuracy over the config's seeds.
        config = s._config(result.params)
        seeds = [replicate_seed(config.seed, r) for r in range(2)]
        vals = [hashed_scores(config.replace(seed=seed))[0] for seed in seeds]
        assert trial.value == pytest.approx(sum(vals) / 2) == pytest.approx(result.val_accuracy)
        assert trial.user_attrs["total_params"] == result.total_params
    # Logged like any search: one header per round, one line per trained model.
    records = [json.loads(line) for line in log.read_text().splitlines()]
    headers = [r for r in records if r["type"] == "header"]
    assert [h["spec"]["strategy"] for h in headers] == ["optuna", "optuna"]
    assert sum(r["type"] == "trial" for r in records) == 16
    assert s.get_best_results(1)[0].val_accuracy == pytest.approx(study.best_value)


def test_outside_the_budget_is_pruned_invalid_and_diverged_fail():
    trainer = FakeTrainer(diverges=lambda c: c.n_neurons == 10)
    s = make_searcher(trainer, max_params=7198, min_param_ratio=0.5)
    space = {"n_neurons": [10, 12, 13], "n_dendrites": [6], "n_dendrite_inputs": [96, 900]}
    study = s.optuna_search(space, n_rounds=3, trials_per_round=4,
                            sampler=optuna.samplers.RandomSampler(seed=3))
    states = {}
    for t in study.trials:
        states.setdefault((t.params["n_neurons"], t.params["n_dendrite_inputs"]),
                          set()).add(t.state)
        if t.params["n_dendrite_inputs"] == 900:            # more inputs than features
            assert t.state == State.FAIL and "exceeds the 784" in t.user_attrs["dendrax_invalid"]
        elif t.params["n_neurons"] == 13:                   # 7,797 parameters
            assert t.state == State.PRUNED
            assert t.user_attrs["dendrax_rejected"] == "7,797 > max 7,198"
        elif t.params["n_neurons"] == 10:
            assert t.state == State.FAIL and t.user_attrs["dendrax_diverged"]
        else:
            assert t.state == State.COMPLETE and t.user_attrs["total_params"] == 7198
    assert len(study.trials) == 12 and len(states) >= 4   # every kind was proposed
    assert all(c.n_dendrite_inputs == 96 and c.n_neurons != 13 for c in trainer.trained)
    assert {r.params["n_neurons"] for r in s.rejected} == {13}


def test_tpe_by_default_and_a_storage_makes_it_resumable(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = make_searcher(**WIDE).optuna_search(SPACE, 1, 4, storage=storage)
    assert isinstance(first.sampler, optuna.samplers.TPESampler)
    assert getattr(first.sampler, "_constant_liar", True)  # private; may be renamed
    again = make_searcher(**WIDE).optuna_search(SPACE, 1, 4, storage=storage)
    assert again.study_name == first.study_name and len(again.trials) == 8


def test_bad_arguments_are_config_errors():
    s = make_searcher(**WIDE)
    with pytest.raises(ConfigError, match="sampler='cmaes'"):
        s.optuna_search(SPACE, 1, sampler="cmaes")
    with pytest.raises(ConfigError, match="maximize"):
        s.optuna_search(SPACE, 1, study=optuna.create_study(direction="minimize"))
    with pytest.raises(ConfigError, match="not both"):
        s.optuna_search(SPACE, 1, study=optuna.create_study(direction="maximize"),
                        sampler="tpe")
    with pytest.raises(ConfigError, match="n_rounds=0"):
        s.optuna_search(SPACE, 0)


def test_a_crash_in_training_leaves_no_trial_running():
    s = make_searcher(FakeTrainer(fail_after_buckets=0), **WIDE)
    study = optuna.create_study(direction="maximize")
    with pytest.raises(RuntimeError, match="killed"):
        s.optuna_search(SPACE, 1, 3, study=study)
    assert [t.state for t in study.trials] == [State.FAIL] * 3


def test_without_optuna_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"pip install 'dendrax\[optuna\]'"):
        make_searcher(**WIDE).optuna_search(SPACE, 1)


