"""The searcher's bucket plan: the padding option, labels, the progress count, the log.

A planning fake trainer buckets configs with dendrax.plan.plan_buckets exactly as
dendrax.population.plan_configs does on a CPU, so the searcher's plan can be compared with
what "trained"; no JAX.
"""

import functools
import json

import pytest

from dendrax import cli
from dendrax.plan import plan_buckets
from dendrax.config import count_params
from dendrax.errors import ConfigError
from dendrax.search import HyperparameterSearcher
from dendrax.spec import TrialOutcome
from conftest import fake_data, FakeTrainer, hashed_scores, make_searcher

# Many shapes: with exact buckets nearly one program per draw, padded far fewer.
SPACE = {"n_neurons": (6, 14), "n_dendrites": (3, 8), "n_dendrite_inputs": (32, 128)}
WIDE = {"max_params": 100_000, "min_param_ratio": 0.01}


class PlanningTrainer(FakeTrainer):
    """Buckets by plan_buckets (backend "cpu", like train.plan_configs on a CPU) and reports
    each bucket's label and padding overhead in its outcomes, as train_configs does."""

    def __call__(self, configs, data, settings, *, progress=None, on_bucket_done=None,
                 on_plan=None, log=print):
        self.calls.append(list(configs))
        self.settings.append(settings)
        outcomes = [None] * len(configs)
        plan = plan_buckets(configs, data.in_dim, settings.padding, n_classes=data.n_classes,
                            samples=settings.n_epochs * len(data.x_train))
        on_plan(plan)
        for bucket in plan:
            done = []
            for i in bucket.members:
                val, test = hashed_scores(configs[i])
                outcomes[i] = TrialOutcome(
                    config=configs[i], total_params=count_params(configs[i]),
                    history={"val_accuracy": [val], "test_accuracy": [test]},
                    bucket=bucket.label, bucket_size=len(bucket.members),
                    padding_overhead=bucket.overhead)
                done.append(outcomes[i])
            on_bucket_done(done)
        return outcomes


def planned(searcher, padding, backend="cpu"):
    configs = [t for call in searcher.trainer.calls for t in call]
    return plan_buckets(configs, 784, padding, n_classes=10,
                        samples=searcher.n_epochs * len(searcher.data.x_train), backend=backend)


@pytest.mark.parametrize("padding", ["exact", "padded", "pow2"])
def test_padding_reaches_the_trainer_and_labels_follow_the_plan(padding, capsys):
    trainer = PlanningTrainer()
    s = make_searcher(trainer, padding=padding, verbose=True, **WIDE)
    s.random_search(SPACE, n_trials=12)
    out = capsys.readouterr().out
    assert trainer.settings[0].padding == padding and len(trainer.calls) == 1
    buckets = planned(s, padding)
    kind = "shape" if padding == "exact" else padding
    assert f"in {len(buckets)} {kind} bucket" + ("s" if len(buckets) > 1 else "") in out
    assert f"bucket {len(buckets)}/{len(buckets)} " in out  # the progress display
    configs = trainer.calls[0]
    by_shape = {(configs[i].n_neurons, configs[i].n_dendrites, configs[i].n_dendrite_inputs):
                b.label for b in buckets for i in b.members}
    for r in s.results:
        shape = tuple(r.params[k] for k in ("n_neurons", "n_dendrites", "n_dendrite_inputs"))
        assert r.bucket == by_shape[shape]


def test_padded_plans_fewer_buckets_than_exact():
    counts = {}
    for padding in ("exact", "padded"):
        s = make_searcher(PlanningTrainer(), padding=padding, **WIDE)
        s.random_search(SPACE, n_trials=12)
        counts[padding] = len(planned(s, padding))
    assert counts["padded"] < counts["exact"] == 12


def test_an_unknown_padding_policy_is_refused():
    with pytest.raises(ConfigError, match="padding='tight'"):
        make_searcher(padding="tight")


def test_log_records_each_trials_bucket_and_padding_overhead(tmp_path):
    log = tmp_path / "log.jsonl"
    s = make_searcher(PlanningTrainer(), padding="padded", log_path=str(log), **WIDE)
    s.random_search(SPACE, n_trials=12)
    trials = [json.loads(line) for line in log.read_text().splitlines()][1:]
    assert len(trials) == 12
    overheads = {b.label: b.overhead for b in planned(s, "padded")}
    for t in trials:
        assert t["bucket"] in overheads  # the label of the trainer's own plan
        assert t["padding_overhead"] == pytest.approx(overheads[t["bucket"]])
    assert any(t["padding_overhead"] > 0 for t in trials)


def test_padding_is_not_in_the_spec_so_a_search_resumes_across_it(tmp_path):
    log = str(tmp_path / "log.jsonl")
    make_searcher(PlanningTrainer(), padding="exact", log_path=log, **WIDE).random_search(
        SPACE, n_trials=6)
    trainer = PlanningTrainer()
    s = make_searcher(trainer, padding="pow2", log_path=log, resume=True, **WIDE)
    s.random_search(SPACE, n_trials=6)
    assert trainer.calls == [] and len(s.results) == 6
    # A resumed config keeps the label its trainer reported (exact shapes, here).
    assert all("|n" in r.bucket for r in s.results)


def test_save_report_records_padding(tmp_path):
    s = make_searcher(padding="pow2", **WIDE)
    s.random_search(SPACE, n_trials=2)
    s.save_report(str(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text())["settings"]["padding"] == "pow2"


def test_cli_padding_flag_and_spec_key(tmp_path, monkeypatch, capsys):
    trainer = FakeTrainer()
    monkeypatch.setattr(cli, "HyperparameterSearcher", functools.partial(
        HyperparameterSearcher, data=fake_data(), trainer=trainer))
    monkeypatch.setattr("dendrax.population.compile_cache.enable_compilation_cache",
                        lambda: None)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"padding": "pow2", "n_epochs": 1, **WIDE,
                                "grid": {"n_neurons": [8, 10]}}))
    assert cli.main(["search", str(spec), "--quiet"]) == 0
    assert cli.main(["search", str(spec), "--quiet", "--padding", "padded"]) == 0
    assert [s.padding for s in trainer.settings] == ["pow2", "padded"]
    with pytest.raises(SystemExit):
        cli.main(["search", str(spec), "--padding", "tight"])
    assert "invalid choice: 'tight'" in capsys.readouterr().err
