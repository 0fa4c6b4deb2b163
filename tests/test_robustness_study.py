"""searcher.robustness and ``dendrax robustness``: a study's runs train as ONE search call,
one model per run (seeds_per_config does not multiply them), through the crash-safe log
with resume; the report reads the trainer's histories in the design's order."""

import functools
import json
import os
import textwrap

import pytest

from dendrax import cli
from dendrax.config import ModelConfig
from dendrax.errors import ConfigError
from dendrax.robustness import RobustnessReport
from dendrax.search import HyperparameterSearcher
from conftest import FakeTrainer, fake_data, hashed_scores, make_searcher, run_child_search

HERE = os.path.dirname(os.path.abspath(__file__))
A = {"n_neurons": 4, "n_dendrites": 3, "n_dendrite_inputs": 16}
B = {"n_neurons": 6, "n_dendrites": 3, "n_dendrite_inputs": 16}  # another shape
BUDGET = {"max_params": 2000, "min_param_ratio": 0.1}


def _searcher(**kwargs):
    return make_searcher(**{**BUDGET, "n_epochs": 2, **kwargs})


def _check_scores(report, trainer):
    """Each run's scores are the fake trainer's for exactly that run's config."""
    trained = {json.dumps(c.to_dict(), sort_keys=True): c for c in trainer.trained}
    for run, scores in zip(report.design.runs, report.scores):
        config = ModelConfig.from_dict({"lr": 5e-4, "weight_decay": 0.01, **run.params})
        assert json.dumps(config.to_dict(), sort_keys=True) in trained
        val, test = hashed_scores(config)
        assert scores["val"][-1] == pytest.approx(val) and scores["test"][-1] == pytest.approx(test)


@pytest.mark.parametrize("design, n_seeds, levels, runs", [
    ("replicate", 3, None, 6), ("paired", 3, None, 6),
    ("factorial", None, {"init": 2, "order": 2, "rewire": 2}, 16)])
def test_a_study_is_one_search_call_one_model_per_run(design, n_seeds, levels, runs):
    trainer = FakeTrainer()
    searcher = _searcher(trainer=trainer, seeds_per_config=4)
    report = searcher.robustness([A, B], n_seeds=n_seeds, design=design, levels=levels)
    assert isinstance(report, RobustnessReport)
    assert len(trainer.calls) == 1 and len(trainer.calls[0]) == runs == len(report.design)
    assert searcher.seeds_per_config == 4  # restored
    assert searcher.results == []  # not added to the search's results
    assert report.n_test == 32 and report.seed == searcher.seed
    _check_scores(report, trainer)
    if design == "factorial":
        assert all(c.init_seed is not None and c.order_seed is not None
                   and c.rewire_seed is not None for c in trainer.trained)
        assert set(report.variance_components()) == set(report.design.names)
    else:
        assert all(c.init_seed is None for c in trainer.trained)
    if design != "replicate":
        assert len(report.paired_differences()) == 1
    assert "Robustness study" in report.format()


def test_the_study_seed_is_the_searchers_unless_given():
    first = _searcher().robustness([A], n_seeds=2)
    again = _searcher().robustness([A], n_seeds=2)
    other = _searcher().robustness([A], n_seeds=2, seed=9)
    assert first.to_dict() == again.to_dict()
    assert first.design.seed == 0 and other.design.seed == 9
    assert [r.params["seed"] for r in first.design.runs] != \
        [r.params["seed"] for r in other.design.runs]


@pytest.mark.parametrize("kwargs, match", [
    ({"design": "crossed", "n_seeds": 2}, "design"),
    ({"design": "replicate"}, "n_seeds"),
    ({"design": "factorial", "levels": {"init": 2, "weights": 2}}, "levels"),
    ({"design": "paired", "n_seeds": 2, "seed": -1}, "seed"),
])
def test_a_bad_study_is_a_config_error_before_anything_trains(kwargs, match):
    trainer = FakeTrainer()
    with pytest.raises(ConfigError, match=match):
        _searcher(trainer=trainer).robustness([A, B], **kwargs)
    assert trainer.calls == []


def test_a_config_outside_the_budget_or_invalid_is_refused_before_training():
    trainer = FakeTrainer()
    with pytest.raises(ConfigError, match="outside the budget"):
        _searcher(trainer=trainer).robustness([A, {**B, "n_neurons": 400}], n_seeds=2)
    with pytest.raises(ConfigError, match="n_dendrites"):
        _searcher(trainer=trainer).robustness([A, {**B, "n_dendrites": 0}], n_seeds=2)
    with pytest.raises(ConfigError, match="halving"):
        _searcher(trainer=trainer, halving_eta=2).robustness([A], n_seeds=2)
    with pytest.raises(ConfigError, match="data_order"):
        _searcher(trainer=trainer, data_order="shared").robustness([A], design="factorial")
    # Without an order factor, a shared batch order is fine.
    _searcher(trainer=FakeTrainer(), data_order="shared").robustness(
        [A], design="factorial", levels={"init": 2, "rewire": 2})
    assert trainer.calls == []


def test_a_logged_study_resumes_without_training_again(tmp_path):
    log = str(tmp_path / "study.jsonl")
    first_trainer = FakeTrainer(fail_after_buckets=1)  # dies after its first bucket
    with pytest.raises(RuntimeError, match="killed"):
        _searcher(trainer=first_trainer, log_path=log).robustness([A, B], n_seeds=3,
                                                                  design="paired")
    done = {json.dumps(c.to_dict(), sort_keys=True) for c in first_trainer.calls[0][:3]}
    trainer = FakeTrainer()
    with _searcher(trainer=trainer, log_path=log, resume=True) as searcher:
        report = searcher.robustness([A, B], n_seeds=3, design="paired")
    retrained = {json.dumps(c.to_dict(), sort_keys=True) for c in trainer.trained}
    assert len(retrained) == 3 and not retrained & done
    full = _searcher().robustness([A, B], n_seeds=3, design="paired")
    assert report.to_dict() == full.to_dict()
    nothing = FakeTrainer()
    with _searcher(trainer=nothing, log_path=log, resume=True) as searcher:
        assert searcher.robustness([A, B], n_seeds=3, design="paired").to_dict() == \
            full.to_dict()
    assert nothing.calls == []


# ---- a SIGKILL mid-study -----------------------------------------------------------------

CHILD = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {here!r})
    from conftest import fake_data, recording_trainer
    from dendrax.search import HyperparameterSearcher

    log_path, trained_path, resume = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    trainer = recording_trainer(trained_path)

    searcher = HyperparameterSearcher(max_params=2000, min_param_ratio=0.1, n_epochs=1,
                                      verbose=False, seeds_per_config=3, data=fake_data(),
                                      log_path=log_path, resume=resume, trainer=trainer)
    configs = [{{"n_neurons": n, "n_dendrites": d, "n_dendrite_inputs": 16}}
               for n in (4, 6) for d in (3, 5)]
    report = searcher.robustness(configs, design="factorial",
                                 levels={{"init": 2, "order": 1, "rewire": 2}})
    print("RESULT " + json.dumps(report.scores))
""").format(here=HERE)


def _run(tmp_path, name, resume, kill_after_lines=None):
    return run_child_search(tmp_path, CHILD, name, resume, kill_after_lines)


@pytest.mark.slow  # runs studies in fresh processes
def test_sigkill_mid_study_then_resume_loses_and_repeats_nothing(tmp_path):
    full, _ = _run(tmp_path, "full", resume=False)
    assert len(full) == 16  # 4 configs × 2 × 1 × 2, not × seeds_per_config

    _run(tmp_path, "killed", resume=False, kill_after_lines=4)
    log = tmp_path / "killed.jsonl"
    done_before = [json.loads(line) for line in log.read_text().splitlines()
                   if line.strip().startswith("{") and '"type": "trial"' in line]
    assert 4 <= len(done_before) < 16, "the kill must land mid-study"

    resumed, second = _run(tmp_path, "killed", resume=True)
    retrained = set(second.read_text().splitlines())
    finished = {json.dumps(r["config"], sort_keys=True) for r in done_before}
    assert not retrained & finished, "a finished run was trained again"
    assert len(retrained) + len(finished) == 16, "a run was lost"
    assert resumed == full


# ---- the command line ----------------------------------------------------------------------

@pytest.fixture
def fake_cli(monkeypatch):
    trainer = FakeTrainer()
    searcher = functools.partial(HyperparameterSearcher, data=fake_data(), trainer=trainer)
    monkeypatch.setattr(cli, "HyperparameterSearcher", searcher)
    return trainer


SPEC = {"max_params": 2000, "min_param_ratio": 0.1, "n_epochs": 2, "seed": 4,
        "configs": [A, B], "design": "factorial", "levels": {"init": 2, "order": 2}}


def test_cli_robustness_prints_saves_and_draws(fake_cli, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    spec = tmp_path / "study.json"
    spec.write_text(json.dumps(SPEC))
    out = tmp_path / "out"
    assert cli.main(["robustness", str(spec), "--out", str(out), "--quiet",
                     "--log", str(tmp_path / "study.jsonl")]) == 0
    printed = capsys.readouterr().out
    assert "Variance components" in printed and "P(row > column)" in printed
    report = RobustnessReport.load(str(out / "robustness.json"))
    assert len(report.design) == 8 and report.design.seed == 4
    assert len(fake_cli.trained) == 8
    assert {"score_distributions.png", "variance_components.png"} <= set(os.listdir(out))
    # --resume trains nothing more and reads the same report
    assert cli.main(["robustness", str(spec), "--out", str(out), "--quiet", "--resume",
                     "--log", str(tmp_path / "study.jsonl")]) == 0
    assert len(fake_cli.trained) == 8
    assert RobustnessReport.load(str(out / "robustness.json")).to_dict() == report.to_dict()


@pytest.mark.parametrize("change, match", [
    ({"configs": None}, "configs"), ({"n_seed": 3}, "n_seeds"),
    ({"design": "nested"}, "design")])
def test_cli_robustness_bad_spec_is_one_line_exit_2(fake_cli, tmp_path, capsys, change, match):
    spec = {k: v for k, v in {**SPEC, **change}.items() if v is not None}
    path = tmp_path / "study.json"
    path.write_text(json.dumps(spec))
    assert cli.main(["robustness", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dendrax: error:") and match in err[0]
    assert fake_cli.calls == []


def test_cli_robustness_out_that_cannot_be_made_fails_before_training(fake_cli, tmp_path,
                                                                      capsys):
    spec = tmp_path / "study.json"
    spec.write_text(json.dumps(SPEC))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["robustness", str(spec), "--out", str(blocker / "sub")]) == 2
    assert "--out" in capsys.readouterr().err
    assert fake_cli.calls == []


def test_the_readme_spec_runs(fake_cli, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    readme = open(os.path.join(HERE, "..", "README.md"), encoding="utf-8").read()
    section = readme.split("## Robustness studies", 1)[1]
    block = section.split("```json", 1)[1].split("```", 1)[0]
    spec = tmp_path / "study.json"
    spec.write_text(block)
    assert cli.main(["robustness", str(spec), "--out", str(tmp_path / "study"),
                     "--quiet"]) == 0
    report = RobustnessReport.load(str(tmp_path / "study" / "robustness.json"))
    assert report.design.kind == "factorial" and len(report.design) == 128
    assert set(report.variance_components()) == {"on", "off"}
    assert "Paired differences" in capsys.readouterr().out
