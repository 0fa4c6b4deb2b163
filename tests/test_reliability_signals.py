"""Reliability, third round: signals and callbacks (cause 8 of issue 29) and successive
halving replayed on resume (cause 4). Each test is named after its case in
reliability-round2.md."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

from dendrax import cli, examples
from dendrax.config import count_params
from dendrax.plan import plan_buckets
from dendrax.search import HyperparameterSearcher
from dendrax.search.callbacks import Callback, CallbackExit
from dendrax.search.interrupts import Terminated
from dendrax.search.record import read_search
from dendrax.search.table import result_rows
from dendrax.spec import Progress, TrialOutcome
from conftest import FakeTrainer, fake_data, make_searcher, unit_hash, TINY_DATA

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRID = {"n_neurons": [8, 10, 12], "n_dendrites": [4], "n_dendrite_inputs": [16]}
WIDE = dict(max_params=100_000, min_param_ratio=0.001)


class EpochTrainer(FakeTrainer):
    """A FakeTrainer that reports every epoch with its members' metrics (as the real
    runner does) and, like the runner, times its epochs with the progress calls inside."""

    def __call__(self, configs, data, settings, *, progress=None, on_bucket_done=None,
                 on_plan=None, log=print):
        self.calls.append(list(configs))
        plan = plan_buckets(configs, data.in_dim, "exact", n_classes=data.n_classes)
        if on_plan is not None:
            on_plan(plan)
        outcomes = [None] * len(configs)
        n = settings.n_epochs
        for bucket in plan:
            members = [configs[i] for i in bucket.members]
            t0 = time.perf_counter()
            for epoch in range(1, n + 1):
                metrics = {m: [self.score(c)[0] * epoch / n for c in members]
                           for m in ("train_loss", "train_accuracy", "val_loss",
                                     "val_accuracy", "test_loss", "test_accuracy", "swaps")}
                if progress is not None:
                    progress(Progress(bucket=bucket.label, chunk_models=len(members),
                                      epoch=epoch, n_epochs=n, alive=len(members),
                                      best_val_accuracy=0.8, members=tuple(members),
                                      metrics=metrics))
            wall = time.perf_counter() - t0
            done = []
            for i, config in zip(bucket.members, members):
                val, test = self.score(config)
                history = {m: [val * (e + 1) / n for e in range(n)]
                           for m in ("train_loss", "train_accuracy", "val_loss",
                                     "val_accuracy", "test_loss", "test_accuracy")}
                history["swaps"] = [0.0] * n
                outcomes[i] = TrialOutcome(
                    config=config, total_params=count_params(config, data.in_dim,
                                                             data.n_classes),
                    history=history, bucket=bucket.label, bucket_size=len(members),
                    bucket_wall_time=wall, train_time=wall / len(members))
                done.append(outcomes[i])
            if on_bucket_done is not None:
                on_bucket_done(done)
        return outcomes


def _callback_module(tmp_path, monkeypatch, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)


@pytest.fixture
def cli_trainer(monkeypatch):
    """The CLI's searchers train with a FakeTrainer on fake_data."""
    trainer = FakeTrainer()
    searcher = functools.partial(HyperparameterSearcher, data=fake_data(), trainer=trainer)
    monkeypatch.setattr(cli, "HyperparameterSearcher", searcher)
    monkeypatch.setattr(examples, "HyperparameterSearcher", searcher)
    monkeypatch.setattr("dendrax.population.compile_cache.enable_compilation_cache",
                        lambda: None)
    return trainer


def _spec(tmp_path, **extra) -> str:
    spec = {"max_params": 100_000, "min_param_ratio": 0.001, "n_epochs": 2,
            "grid": GRID, **extra}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return str(path)


def _table(results) -> list[dict]:
    """The results table without timings and bucket labels (which depend on how the
    models were grouped, not on what they computed)."""
    return [{k: v for k, v in row.items() if "time" not in k and "bucket" not in k}
            for row in result_rows(results)]


# ---- callbacks -----------------------------------------------------------------------------

def test_C1_a_raising_on_result_is_reported_once_and_the_search_goes_on(tmp_path):
    calls = []

    def raise_on_second_result(result):
        calls.append(result)
        if len(calls) >= 2:
            raise ValueError("tracker upload failed (simulated)")

    log = tmp_path / "l.jsonl"
    clean = make_searcher(**WIDE)
    clean.grid_search(GRID)
    s = make_searcher(callbacks=[raise_on_second_result], log_path=str(log), **WIDE)
    with pytest.warns(RuntimeWarning) as caught:
        s.grid_search(GRID)
    mine = [w for w in caught if "tracker upload failed" in str(w.message)]
    assert len(mine) == 1  # the 2nd and 3rd results raised: reported once
    assert "raise_on_second_result" in str(mine[0].message)
    assert "ValueError" in str(mine[0].message)
    assert len(calls) == 3 and len(s.results) == 3  # called for every result
    assert _table(s.results) == _table(clean.results)
    assert read_search(str(log)).n_models == 3


def test_C1_the_cli_warns_and_exits_0_with_the_whole_table(tmp_path, monkeypatch, capsys,
                                                          cli_trainer):
    _callback_module(tmp_path, monkeypatch, "cbs_c1", """
        N = {"r": 0}
        def raise_on_second_result(result):
            N["r"] += 1
            if N["r"] == 2:
                raise ValueError("tracker upload failed (simulated)")
    """)
    log = tmp_path / "l.jsonl"
    with pytest.warns(RuntimeWarning, match=r"callback cbs_c1\.raise_on_second_result raised "
                                            r"ValueError: tracker upload failed"):
        status = cli.main(["search", _spec(tmp_path), "--quiet", "--log", str(log),
                           "--callback", "cbs_c1:raise_on_second_result"])
    out, err = capsys.readouterr()
    assert status == 0 and "Traceback" not in err
    assert "TOP" in out and read_search(str(log)).n_models == 3


def test_C2_an_on_epoch_raising_connection_error_loses_no_bucket(tmp_path):
    class RaiseOnEpoch(Callback):
        n = 0

        def on_epoch(self, bucket, epoch, members):
            self.n += 1
            if self.n == 3:
                raise ConnectionError("wandb unreachable (simulated)")

    log = tmp_path / "l.jsonl"
    cb = RaiseOnEpoch()
    s = make_searcher(trainer=EpochTrainer(), callbacks=[cb], log_path=str(log),
                      n_epochs=3, **WIDE)
    with pytest.warns(RuntimeWarning, match=r"RaiseOnEpoch\.on_epoch raised ConnectionError"):
        s.grid_search(GRID)
    assert cb.n == 9  # 3 buckets × 3 epochs: still called after its failure
    assert len(s.results) == 3 and read_search(str(log)).n_models == 3


def test_C3_stop_iteration_from_a_callback_does_not_end_the_search(tmp_path):
    class StopIter(Callback):
        def on_result(self, result):
            raise StopIteration

    s = make_searcher(callbacks=[StopIter()], log_path=str(tmp_path / "l.jsonl"), **WIDE)
    with pytest.warns(RuntimeWarning, match=r"StopIter\.on_result raised StopIteration"):
        s.grid_search(GRID)
    assert len(s.results) == 3


def test_C4_callback_time_is_not_training_time(tmp_path):
    class Slow(Callback):
        def on_epoch(self, bucket, epoch, members):
            time.sleep(0.1)

    fast = make_searcher(trainer=EpochTrainer(), n_epochs=3, **WIDE)
    fast.grid_search(GRID)
    slow = make_searcher(trainer=EpochTrainer(), callbacks=[Slow()], n_epochs=3,
                         log_path=str(tmp_path / "l.jsonl"), **WIDE)
    t0 = time.perf_counter()
    slow.grid_search(GRID)
    assert time.perf_counter() - t0 >= 0.9  # 9 epochs × 0.1 s did happen
    # Without the fix each model's train_time would hold its bucket's 0.3 s of sleeping.
    for r in slow.results:
        assert r.train_time < 0.05
    for o in slow._completed.values():
        assert o.bucket_wall_time < 0.05
    logged = read_search(str(tmp_path / "l.jsonl"))
    assert all(r.train_time < 0.05 for r in logged.results)


def test_C6_an_async_callback_runs(tmp_path):
    seen = []

    async def async_result(result):
        await asyncio.sleep(0)
        seen.append(result.params["n_neurons"])

    class AsyncEpoch(Callback):
        epochs = []

        async def on_epoch(self, bucket, epoch, members):
            await asyncio.sleep(0)
            self.epochs.append(epoch)

    cb = AsyncEpoch()
    with warnings.catch_warnings():
        # "coroutine ... was never awaited" would fail here
        warnings.filterwarnings("error", message=".*never awaited", category=RuntimeWarning)
        s = make_searcher(trainer=EpochTrainer(), callbacks=[async_result, cb], n_epochs=2,
                          **WIDE)
        s.grid_search(GRID)
    assert sorted(seen) == [8, 10, 12]
    assert cb.epochs == [1, 2] * 3


def test_C6_an_async_callback_runs_inside_a_running_event_loop():
    seen = []

    async def async_result(result):
        await asyncio.sleep(0)
        seen.append(result.params["n_neurons"])

    async def notebook_cell():  # Jupyter runs cells inside its event loop
        s = make_searcher(callbacks=[async_result], **WIDE)
        s.grid_search(GRID)

    asyncio.run(notebook_cell())
    assert sorted(seen) == [8, 10, 12]


def test_C7_a_callback_class_needing_arguments_is_a_one_line_error(tmp_path, monkeypatch,
                                                                   capsys, cli_trainer):
    _callback_module(tmp_path, monkeypatch, "cbs_c7", """
        from dendrax.search.callbacks import Callback
        class NeedsArgs(Callback):
            def __init__(self, project):
                self.project = project
    """)
    status = cli.main(["search", _spec(tmp_path), "--callback", "cbs_c7:NeedsArgs"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("dendrax: error: --callback 'cbs_c7:NeedsArgs'")
    assert "NeedsArgs" in err and "project" in err and "Traceback" not in err
    assert cli_trainer.calls == []  # nothing trained


def test_C8_a_callback_module_raising_at_import_is_a_one_line_error(tmp_path, monkeypatch,
                                                                    capsys, cli_trainer):
    _callback_module(tmp_path, monkeypatch, "broken_import",
                     'raise RuntimeError("missing API key (simulated)")\n')
    status = cli.main(["search", _spec(tmp_path), "--callback", "broken_import:x"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "broken_import" in err and "RuntimeError: missing API key (simulated)" in err
    assert cli_trainer.calls == []


def test_C11_sys_exit_in_a_callback_is_an_interrupt_not_a_success(tmp_path, monkeypatch,
                                                                  capsys, cli_trainer):
    _callback_module(tmp_path, monkeypatch, "cbs_c11", """
        import sys
        from dendrax.search.callbacks import Callback
        class ExitsOnResult(Callback):
            def on_result(self, result):
                sys.exit(0)
    """)
    log = tmp_path / "l.jsonl"
    spec = _spec(tmp_path)
    status = cli.main(["search", spec, "--quiet", "--log", str(log), "--callback",
                       "cbs_c11:ExitsOnResult", "--out", str(tmp_path / "r.json")])
    out, err = capsys.readouterr()
    assert status == 130
    assert "interrupted (callback cbs_c11.ExitsOnResult.on_result called sys.exit(0))" in err
    assert "--resume" in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()
    assert 1 <= read_search(str(log)).n_models < 3  # stopped after the first bucket
    # The log is whole: --resume finishes the search.
    assert cli.main(["search", spec, "--quiet", "--log", str(log), "--resume"]) == 0
    assert read_search(str(log)).n_models == 3


def test_C11_sys_exit_in_a_callback_raises_callback_exit_from_the_api():
    def exits(result):
        sys.exit(3)

    s = make_searcher(callbacks=[exits], **WIDE)
    with pytest.raises(CallbackExit) as info:
        s.grid_search(GRID)
    assert isinstance(info.value, KeyboardInterrupt) and info.value.code == 3


def test_C12_writing_to_members_params_does_not_change_the_results():
    class Tag(Callback):
        def on_epoch(self, bucket, epoch, members):
            for m in members:
                m["params"]["epoch"] = epoch
                m["val_accuracy"] = -1.0

    plain = make_searcher(trainer=EpochTrainer(), n_epochs=2, **WIDE)
    plain.grid_search(GRID)
    tagged = make_searcher(trainer=EpochTrainer(), callbacks=[Tag()], n_epochs=2, **WIDE)
    tagged.grid_search(GRID)
    assert all("epoch" not in r.params for r in tagged.results)
    assert [r.params for r in tagged.results] == [r.params for r in plain.results]
    assert _table(tagged.results) == _table(plain.results)


# ---- signals -------------------------------------------------------------------------------

def _kill_self_on_first_result(signum):
    def callback(result):
        os.kill(os.getpid(), signum)
    return callback


@pytest.mark.parametrize("signame, status", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_I11_sigterm_and_sighup_stop_like_ctrl_c(tmp_path, monkeypatch, capsys, cli_trainer,
                                                 signame, status):
    signum = getattr(signal, signame)
    if signal.getsignal(signum) is not signal.SIG_DFL:
        pytest.skip(f"{signame} is handled by the test runner")
    _callback_module(tmp_path, monkeypatch, f"cbs_{signame}", f"""
        import os, signal
        def kill(result):
            os.kill(os.getpid(), signal.{signame})
    """)
    log = tmp_path / "l.jsonl"
    spec = _spec(tmp_path)
    assert cli.main(["search", spec, "--quiet", "--log", str(log), "--callback",
                     f"cbs_{signame}:kill"]) == status
    err = capsys.readouterr().err
    assert f"dendrax: interrupted by {signame} (finished buckets are in the log; rerun " \
           f"with --resume to continue)" in err
    assert signal.getsignal(signum) is signal.SIG_DFL  # handlers restored
    assert cli.main(["search", spec, "--quiet", "--log", str(log), "--resume"]) == 0
    assert read_search(str(log)).n_models == 3


def test_I11_sigterm_during_optuna_search_leaves_no_trial_running(tmp_path):
    optuna = pytest.importorskip("optuna")
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("SIGTERM is handled by the test runner")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rounds = []

    class TermInRound3(FakeTrainer):
        def __call__(self, configs, *args, **kwargs):
            rounds.append(len(configs))
            if len(rounds) == 3:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # the handler raises in the main thread meanwhile
            return super().__call__(configs, *args, **kwargs)

    storage = f"sqlite:///{tmp_path / 's.db'}"
    s = make_searcher(trainer=TermInRound3(), log_path=str(tmp_path / "l.jsonl"), **WIDE)
    space = {"n_neurons": (4, 16), "n_dendrites": [2, 4], "n_dendrite_inputs": [8, 16]}
    with pytest.raises(Terminated):
        s.optuna_search(space, n_rounds=5, trials_per_round=2, storage=storage)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0],
                              storage=storage)
    states = [t.state for t in study.trials]
    assert len(states) == 6 and optuna.trial.TrialState.RUNNING not in states
    assert sum(st == optuna.trial.TrialState.FAIL for st in states) >= 1


def test_I8_scenario_can_be_resumed_from_the_command_line(tmp_path, monkeypatch, capsys,
                                                         cli_trainer):
    monkeypatch.chdir(tmp_path)
    seen = []
    real = examples.compare_architectures

    def interrupted_once(**options):
        seen.append(options)
        if len(seen) == 1:
            raise KeyboardInterrupt
        return real(**options)

    monkeypatch.setattr(examples, "compare_architectures", interrupted_once)
    base = ["scenario", "compare", "--n-epochs", "1", "--quiet", "--log", "sc.jsonl"]
    assert cli.main(base) == 130
    assert "rerun with --resume to continue" in capsys.readouterr().err
    assert cli.main(base + ["--resume"]) == 0  # the option it told the user about exists
    assert seen[-1]["resume"] is True
    # A rerun without --resume says to add it, in the command line's words.
    assert cli.main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "add --resume" in err and "resume=True" not in err
    assert cli.main(["scenario", "compare", "--resume"]) == 2  # needs --log


def test_I8_scenario_resume_needs_a_log(capsys):
    assert cli.main(["scenario", "quick", "--resume"]) == 2
    assert "give --log" in capsys.readouterr().err


def _big_log(tmp_path) -> str:
    log = tmp_path / "many.jsonl"
    s = make_searcher(log_path=str(log), seeds_per_config=4, max_params=200_000,
                      min_param_ratio=0.0001)
    s.grid_search({"n_neurons": list(range(2, 42)), "n_dendrites": [2, 4],
                   "n_dendrite_inputs": [8, 16]})
    return str(log)


def _env():
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_X6_show_into_a_closed_pipe_exits_quietly(tmp_path):
    log = _big_log(tmp_path)
    p = subprocess.Popen([sys.executable, "-m", "dendrax", "show", log, "--format", "csv",
                          "--per-seed"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=_env(), cwd=str(tmp_path))
    first = p.stdout.readline()  # `| head -1`
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0
    assert first.startswith(b"rank,") and err == ""


def test_X7_a_search_piped_into_head_keeps_training_and_logging(tmp_path, monkeypatch,
                                                               cli_trainer, capsys):
    class ClosedAfter:
        """stdout whose reader goes away after 3 lines, as with `| head -3`."""

        def __init__(self):
            self.lines = 0

        def write(self, text):
            self.lines += text.count("\n")
            if self.lines > 3:
                raise BrokenPipeError(32, "Broken pipe")
            return len(text)

        def flush(self):
            if self.lines > 3:
                raise BrokenPipeError(32, "Broken pipe")

        def isatty(self):
            return False

        def fileno(self):
            raise ValueError("not a real file")

    pipe = ClosedAfter()
    monkeypatch.setattr(sys, "stdout", pipe)
    log = tmp_path / "p.jsonl"
    status = cli.main(["search", _spec(tmp_path), "--log", str(log),
                       "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert status == 0 and sys.stdout is pipe
    assert "standard output was closed; the search goes on" in err and "Traceback" not in err
    assert read_search(str(log)).n_models == 3 and len(cli_trainer.trained) == 3
    assert len(json.loads((tmp_path / "r.json").read_text())) == 3


FAKE_CLI = """
import functools, sys
sys.path.insert(0, sys.argv.pop(1))
from conftest import FakeTrainer, fake_data
from dendrax import cli
from dendrax.search import HyperparameterSearcher
cli.HyperparameterSearcher = functools.partial(HyperparameterSearcher, data=fake_data(),
                                               trainer=FakeTrainer())
sys.exit(cli.main())
"""


def test_X7_search_piped_into_head_in_a_real_process(tmp_path):
    """`dendrax search SPEC --log L | head -3`, through a real pipe, as the command (with
    a fake trainer): the search trains and logs everything and exits 0."""
    log = tmp_path / "p.jsonl"
    # Each result takes a moment, so the search still prints after `head` has gone.
    (tmp_path / "slow_cb.py").write_text("import time\ndef wait(result): time.sleep(0.3)\n")
    p = subprocess.Popen([sys.executable, "-c", FAKE_CLI, os.path.join(REPO, "tests"),
                          "search", _spec(tmp_path), "--log", str(log), "--callback",
                          "slow_cb:wait"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(_env(), PYTHONPATH=os.pathsep.join(
                             [REPO, str(tmp_path)]), PYTHONUNBUFFERED="1"),
                         cwd=str(tmp_path))
    for _ in range(3):
        p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert "standard output was closed; the search goes on" in err
    assert read_search(str(log)).n_models == 3


@pytest.mark.slow
def test_I2_a_second_ctrl_c_during_a_compile_exits_130_without_a_terminate(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "dataset": "fashion-mnist", "subset_size": 600, "max_params": 20_000,
        "min_param_ratio": 0.01, "n_epochs": 2, "batch_size": 64,
        "grid": {"n_neurons": [4, 8, 16], "n_dendrites": [2, 4], "n_dendrite_inputs": [8]}}))
    env = dict(_env(), DENDRAX_COMPILATION_CACHE="0", PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "dendrax", "search", str(spec), "--log",
                          str(tmp_path / "i2.jsonl")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=str(tmp_path), text=True)
    for line in p.stdout:  # the plan is printed just before the first compile
        if line.startswith("Training "):
            break
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    time.sleep(0.3)
    try:
        p.send_signal(signal.SIGINT)
    except ProcessLookupError:
        pass  # already gone: the first one did not wait for the compile
    t0 = time.time()
    rc = p.wait(timeout=60)
    err = p.stderr.read()
    assert rc == 130, err
    assert "terminate" not in err and "FATAL" not in err and "Traceback" not in err
    assert "dendrax: interrupted" in err
    assert time.time() - t0 < 5


# ---- successive halving, replayed on resume ----------------------------------------------

class HalvingTrainer(FakeTrainer):
    """A fake trainer that honours successive halving the way
    dendrax.population.halving does (its rung schedule, ranking and replay): every
    model's validation curve is a fixed hash per epoch, so rankings change from rung to
    rung. ``stop_after_rung``: raise KeyboardInterrupt once that rung's stopped models
    were handed over (a Ctrl-C between rungs)."""

    def __init__(self, stop_after_rung=None):
        super().__init__()
        self.stop_after_rung = stop_after_rung
        self.replays = []

    @staticmethod
    def curve(config, n):
        fields = config.to_dict()
        return [0.5 + 0.4 * unit_hash(fields, e) for e in range(n)]

    def __call__(self, configs, data, settings, *, progress=None, on_bucket_done=None,
                 on_plan=None, log=print, replay=None):
        from dendrax.population import halving

        self.calls.append(list(configs))
        replay = dict(replay or {})
        self.replays.append(replay)
        plan = plan_buckets(configs, data.in_dim, "exact", n_classes=data.n_classes)
        if on_plan is not None:
            on_plan(plan)
        label = {i: b.label for b in plan for i in b.members}
        n, eta = settings.n_epochs, settings.halving_eta
        place = [p for p in range(len(configs) + len(replay)) if p not in replay]
        curves = [self.curve(c, n) for c in configs]

        def outcome(i, stopped):
            epochs = stopped or n
            history = {m: curves[i][:epochs] for m in ("train_loss", "train_accuracy",
                                                       "val_loss", "val_accuracy",
                                                       "test_loss", "test_accuracy")}
            history["swaps"] = [0.0] * epochs
            return TrialOutcome(config=configs[i], total_params=count_params(
                configs[i], data.in_dim, data.n_classes), history=history,
                bucket=label[i], stopped_epoch=stopped, bucket_wall_time=0.5,
                train_time=0.1)

        results = [None] * len(configs)
        live = list(range(len(configs)))
        for rung, end in enumerate(halving.rung_schedule(n, eta, settings.halving_min_epochs)):
            if end == n or not live:
                break
            scores = {place[i]: curves[i][end - 1] for i in live}
            for p, o in replay.items():
                value = halving.replay_score(o, end)
                if value is not None:
                    scores[p] = value
            going_on = halving.rung_survivors(scores, eta)
            stopped = [i for i in live if place[i] not in going_on]
            live = [i for i in live if place[i] in going_on]
            outs = [outcome(i, end) for i in stopped]
            for i, o in zip(stopped, outs):
                results[i] = o
            if outs and on_bucket_done is not None:
                on_bucket_done(outs)
            if self.stop_after_rung == rung + 1:
                raise KeyboardInterrupt
        finished = [outcome(i, None) for i in live]
        for i, o in zip(live, finished):
            results[i] = o
        if finished and on_bucket_done is not None:
            on_bucket_done(finished)
        return results


HALVING_GRID = {"n_neurons": [4, 6, 8, 10, 12, 14, 16, 18], "n_dendrites": [2],
                "n_dendrite_inputs": [8]}
HALVING = dict(n_epochs=4, halving_eta=2, halving_min_epochs=1, seeds_per_config=1, **WIDE)


@pytest.mark.parametrize("rung", [1, 2])
def test_I10_a_resumed_halving_search_gives_the_uninterrupted_table(tmp_path, rung):
    clean = make_searcher(trainer=HalvingTrainer(), **HALVING)
    clean.grid_search(HALVING_GRID)
    epochs = sorted(max(len(h["val_accuracy"]) for h in r.history) for r in clean.results)
    assert epochs == [1, 1, 1, 1, 2, 2, 4, 4]  # rungs at 1, 2, 4: 8 → 4 → 2

    log = str(tmp_path / "h.jsonl")
    first = make_searcher(trainer=HalvingTrainer(stop_after_rung=rung), log_path=log,
                          **HALVING)
    with pytest.raises(KeyboardInterrupt):
        first.grid_search(HALVING_GRID)
    first.close()
    logged = read_search(log).n_models
    assert logged == {1: 4, 2: 6}[rung]

    again = HalvingTrainer()
    resumed = make_searcher(trainer=again, log_path=log, resume=True, **HALVING)
    resumed.grid_search(HALVING_GRID)
    assert len(again.trained) == 8 - logged  # only what the log lacks
    assert len(again.replays[0]) == logged  # ranked with every model of the call
    assert _table(resumed.results) == _table(clean.results)
    assert _table(read_search(log).results) == _table(clean.results)


def test_I10_interrupted_after_each_rung_in_turn_still_gives_the_same_table(tmp_path):
    clean = make_searcher(trainer=HalvingTrainer(), **HALVING)
    clean.grid_search(HALVING_GRID)
    log = str(tmp_path / "h.jsonl")
    for rung in (1, 2):
        s = make_searcher(trainer=HalvingTrainer(stop_after_rung=rung), log_path=log,
                          resume=rung > 1, **HALVING)
        with pytest.raises(KeyboardInterrupt):
            s.grid_search(HALVING_GRID)
        s.close()
    last = make_searcher(trainer=HalvingTrainer(), log_path=log, resume=True, **HALVING)
    last.grid_search(HALVING_GRID)
    assert _table(last.results) == _table(clean.results)


def test_I10_halving_ranks_replayed_models_with_the_training_ones():
    from dendrax.population import halving

    done = TrialOutcome(config=None, total_params=1, stopped_epoch=1,
                        history={"val_accuracy": [0.9]})
    assert halving.replay_score(done, 1) == 0.9
    assert halving.replay_score(done, 2) is None  # stopped before that rung
    diverged = TrialOutcome(config=None, total_params=1, diverged=True, diverged_epoch=2,
                            history={"val_accuracy": [0.9, float("nan"), 0.1]})
    assert halving.replay_score(diverged, 1) == 0.9
    assert halving.replay_score(diverged, 2) == float("-inf")
    # Ties go to the earlier place, whatever the dict's order.
    assert halving.rung_survivors({3: 0.5, 1: 0.5, 2: 0.4, 0: 0.1}, 2) == {1, 3}


@pytest.mark.slow
def test_I10_a_real_halving_search_resumed_after_rung_1_trains_as_the_uninterrupted(tmp_path):
    from dendrax.population import train_configs

    def interrupting(after):
        calls = []

        def trainer(configs, data, settings, *, on_bucket_done=None, **kwargs):
            def done(outcomes):
                on_bucket_done(outcomes)
                calls.append(len(outcomes))
                if len(calls) == after:
                    raise KeyboardInterrupt
            return train_configs(configs, data, settings, on_bucket_done=done, **kwargs)
        return trainer

    options = dict(data=TINY_DATA, verbose=False, n_epochs=3, batch_size=64, padding="exact",
                   halving_eta=2, halving_min_epochs=1, max_params=10_000,
                   min_param_ratio=0.001)
    grid = {"n_neurons": [4], "n_dendrites": [2], "n_dendrite_inputs": [8],
            "lr": [1e-3, 3e-3, 1e-2, 3e-2]}
    clean = HyperparameterSearcher(**options)
    clean.grid_search(grid)
    log = str(tmp_path / "h.jsonl")
    first = HyperparameterSearcher(**options, log_path=log, trainer=interrupting(1))
    with pytest.raises(KeyboardInterrupt):
        first.grid_search(grid)
    first.close()
    assert read_search(log).n_models == 2  # rung 1 stopped 2 of 4
    resumed = HyperparameterSearcher(**options, log_path=log, resume=True)
    resumed.grid_search(grid)

    def epochs(results):
        return {r.params["lr"]: len(r.history[0]["val_accuracy"]) for r in results}

    assert epochs(resumed.results) == epochs(clean.results)
    for a, b in zip(sorted(resumed.results, key=lambda r: r.params["lr"]),
                    sorted(clean.results, key=lambda r: r.params["lr"])):
        assert a.val_accuracy == pytest.approx(b.val_accuracy, abs=1e-6)
