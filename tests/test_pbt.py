"""Population-based training inside one compiled population (dendrax.search.pbt, the
decisions; dendrax.population.pbt, the mechanism): exploit copies exactly, explore stays
within bounds, generations compile nothing, a killed run resumes bit-identical, and the
lineage read from the log alone is the live run's."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from conftest import CONFIG_7198, TINY_DATA, make_searcher
from dendrax.cli import main, split_spec, UsageError
from dendrax.config import ModelConfig
from dendrax.errors import ConfigError
from dendrax.search import HyperparameterSearcher, spaces
from dendrax.search.log import LogError, read_log
from dendrax.search.pbt import (MUTABLE, PBTStrategy, explore_value, format_lineage,
                                lineage, read_lineage)

# One space and one set of settings for every training test here: the padded shape and
# the population size are the same, so they share one compiled program.
SPACE = {"n_neurons": 6, "n_dendrites": 2, "n_dendrite_inputs": [8, 16],
         "lr": {"type": "loguniform", "low": 1e-3, "high": 3e-2},
         "weight_decay": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
         "percentage_resample": (0.1, 0.5), "steps_to_resample": (4, 16)}
POPULATION = 6
N_EPOCHS = 5


def searcher(**kwargs) -> HyperparameterSearcher:
    kwargs.setdefault("verbose", False)
    return HyperparameterSearcher(data=TINY_DATA, max_params=2000, min_param_ratio=0.01,
                                  n_epochs=N_EPOCHS, batch_size=32, padding="exact",
                                  seed=kwargs.pop("seed", 3), **kwargs)


def run_pbt(s, **kwargs):
    kwargs.setdefault("ready_every", 1)
    kwargs.setdefault("burn_in", 1)
    return s.population_based_training(SPACE, POPULATION, **kwargs)


def outcomes_by_key(s):
    return {k: (o.config.to_dict(), o.history, o.diverged_step) for k, o in s._completed.items()}


# ---- the exploit itself ----------------------------------------------------------------

def test_an_exploit_copies_the_whole_member_bit_for_bit_and_nothing_else():
    import jax
    import jax.numpy as jnp
    from dendrax.population.pbt import exploit, generation_update, population_shape
    from dendrax.population.program import seed_keys
    from dendrax.population.runner import prepare_population, run_epochs
    from dendrax.spec import TrainSettings

    configs = [ModelConfig(n_neurons=n, n_dendrites=2, n_dendrite_inputs=k, lr=lr,
                           steps_to_resample=4, seed=i)
               for i, (n, k, lr) in enumerate([(4, 8, 1e-2), (6, 16, 3e-3), (6, 8, 1e-2),
                                               (4, 16, 1e-3)])]
    settings = TrainSettings(n_epochs=1, batch_size=32, padding="exact")
    shape = population_shape(configs, TINY_DATA.in_dim)
    prepared = prepare_population(configs, TINY_DATA, settings, shape=shape)
    state = prepared.init(prepared.hyper, prepared.keys)
    state = run_epochs(prepared, state, 0, 1, {})  # optimiser state and steps are not zero
    dst, src = jnp.asarray([0, 3]), jnp.asarray([1, 1])
    new, hyper = jax.jit(exploit)(state, prepared.hyper, dst, src)
    leaves = lambda tree: jax.tree_util.tree_leaves(
        jax.tree_util.tree_map(lambda a: jax.random.key_data(a) if jnp.issubdtype(
            a.dtype, jax.dtypes.prng_key) else a, tree))
    for before, after in zip(leaves((state, prepared.hyper)), leaves((new, hyper))):
        before, after = np.asarray(before), np.asarray(after)
        for d in (0, 3):
            np.testing.assert_array_equal(after[d], before[1])  # bit for bit, sizes included
        for keep in (1, 2):
            np.testing.assert_array_equal(after[keep], before[keep])
    assert np.asarray(hyper.sizes.n_neurons)[0] == 6 and np.asarray(hyper.sizes.k)[0] == 16
    assert int(np.asarray(new.step)[0]) == int(np.asarray(state.step)[1]) > 0

    # The generation update: the same copy, then each copy on its own seed's fresh stream.
    src_all = jnp.asarray([1, 1, 2, 1], jnp.int32)
    copied = jnp.asarray([True, False, False, True])
    updated, _ = generation_update(state, prepared.hyper, src_all, copied, prepared.keys,
                                   jnp.int32(2))
    keys = np.asarray(jax.random.key_data(updated.key))
    for d in (0, 3):  # each stream's key of the member's own seeds, folded with 2
        expected = [jax.random.key_data(jax.random.fold_in(k, 2))
                    for k in seed_keys(configs[d].stream_seeds())]
        np.testing.assert_array_equal(keys[d], np.asarray(expected))
        assert not np.array_equal(keys[d], np.asarray(jax.random.key_data(state.key))[1])
    for before, after in zip(jax.tree_util.tree_leaves(state.params),
                             jax.tree_util.tree_leaves(updated.params)):
        np.testing.assert_array_equal(np.asarray(after)[[0, 3]], np.asarray(before)[[1, 1]])
    np.testing.assert_array_equal(keys[1:3], np.asarray(jax.random.key_data(state.key))[1:3])


# ---- explore and the decisions (pure Python) -------------------------------------------

DISTRIBUTIONS = st.one_of(
    st.tuples(st.floats(1e-6, 1.0), st.floats(1.0, 100.0)).map(
        lambda b: spaces.LogUniform(b[0], b[0] * b[1])),
    st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)).map(
        lambda b: spaces.Uniform(min(b), max(b))),
    st.tuples(st.integers(1, 500), st.integers(0, 500)).map(
        lambda b: spaces.IntRange(b[0], b[0] + b[1])),
    st.lists(st.integers(0, 50), min_size=1, max_size=5).map(
        lambda v: spaces.Choice(tuple(v))),
    st.just(spaces.Choice((True, False))))


def _inside(value, dist) -> bool:
    if isinstance(dist, spaces.Choice):
        return value in dist.values
    if isinstance(dist, spaces.IntRange):
        return isinstance(value, int) and dist.low <= value <= dist.high
    return dist.low <= value <= dist.high


@hsettings(max_examples=300, deadline=None)
@given(dist=DISTRIBUTIONS, seed=st.integers(0, 2 ** 32), steps=st.integers(1, 30),
       factors=st.lists(st.floats(0.01, 100.0), min_size=1, max_size=3),
       p=st.floats(0.0, 1.0))
def test_explored_values_never_leave_their_bounds(dist, seed, steps, factors, p):
    rng = random.Random(seed)
    value = dist.sample(rng)
    for _ in range(steps):  # a lineage perturbed generation after generation
        value = explore_value("x", value, dist, rng, factors, p)
        assert _inside(value, dist), (value, dist)


def test_the_bottom_quantile_and_every_diverged_member_copy_a_top_member():
    space = spaces.parse_space({"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1}})
    strategy = PBTStrategy(space, ready_every=1, quantile=0.25, seed=1)
    configs = [ModelConfig(lr=1e-3, seed=i) for i in range(8)]
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, math.nan, 0.4, -math.inf]
    decisions = strategy.decide(1, configs, scores)
    assert sorted(d.member for d in decisions) == [5, 7]  # the diverged are the bottom 2
    assert all(d.parent in (0, 1) for d in decisions)
    dead = strategy.decide(1, configs, [0.9, 0.8, -math.inf, math.nan, -math.inf, 0.5, 0.4,
                                        0.3])
    assert sorted(d.member for d in dead) == [2, 3, 4]  # every diverged one, beyond 25%
    assert sorted(d.member for d in strategy.decide(1, configs, [0.1 * i for i in range(8)])) \
        == [0, 1]
    assert all(d.config.seed == configs[d.member].seed for d in decisions)  # own seed
    streams = [c.replace(order_seed=100 + i) for i, c in enumerate(configs)]
    for d in strategy.decide(1, streams, scores):  # and its own stream seeds
        assert d.config.stream_seeds() == streams[d.member].stream_seeds()
    assert strategy.decide(1, configs, scores) == decisions  # a generation's own rng
    assert PBTStrategy(space, ready_every=2, burn_in=3).boundaries(10) == [4, 6, 8]
    with pytest.raises(ConfigError, match="mutate"):
        PBTStrategy(space, ready_every=1, mutate=("n_neurons",))


def test_selection_only_copies_without_changing_hyperparameters():
    space = spaces.parse_space({"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1}})
    strategy = PBTStrategy(space, ready_every=1, mutate=())
    configs = [ModelConfig(lr=10 ** -(1 + i / 2), seed=i) for i in range(4)]
    for d in strategy.decide(1, configs, [0.1, 0.9, 0.5, 0.2]):
        assert d.config == configs[d.parent].replace(seed=configs[d.member].seed)


def test_the_lineage_follows_the_model_back_through_its_parents():
    initial = {k: ModelConfig(lr=lr, seed=i).to_dict()
               for i, (k, lr) in enumerate([("a", 0.1), ("b", 0.2), ("c", 0.3)])}
    hp = lambda lr: {**{n: getattr(ModelConfig(), n) for n in MUTABLE}, "lr": lr}
    exploits = [
        {"generation": 1, "epoch": 2, "member_key": "c", "parent_key": "b", "new": hp(0.25)},
        {"generation": 2, "epoch": 4, "member_key": "a", "parent_key": "c", "new": hp(0.5)},
    ]
    lin = lineage("a", 6, initial, exploits)
    assert [(f, l, k) for f, l, k, _ in lin.segments] == [(1, 2, "b"), (3, 4, "c"), (5, 6, "a")]
    assert [lin.schedule()[e]["lr"] for e in range(1, 7)] == [0.2, 0.2, 0.25, 0.25, 0.5, 0.5]
    assert lin.initial["lr"] == 0.2 and {e: v["lr"] for e, v in lin.changes().items()} == \
        {2: 0.25, 4: 0.5}


# ---- the spec and the log ---------------------------------------------------------------

def test_a_spec_with_strategy_pbt_and_one_with_a_schedule_split():
    options, strategy, space, call = split_spec(
        {"n_epochs": 4, "strategy": "pbt", "distributions": {"lr": [1e-3, 1e-2]},
         "population_size": 8, "ready_every": 2, "perturb": [0.5, 2.0], "mutate": []})
    assert (options, strategy, call) == ({"n_epochs": 4}, "pbt", {
        "population_size": 8, "ready_every": 2, "perturb": (0.5, 2.0), "mutate": []})
    assert split_spec({"schedule": "s.json", "seeds": [4, 5]})[1:] == (
        "replay", "s.json", {"seeds": [4, 5]})
    for bad, match in [({"strategy": "pbt", "grid": {"lr": [1]}, "population_size": 2},
                        "distributions"),
                       ({"strategy": "pbt", "distributions": {}}, "population_size"),
                       ({"distributions": {"lr": [1]}, "ready_every": 2}, "pbt"),
                       ({"strategy": "evolve", "distributions": {}}, "strategy"),
                       ({"schedule": "s.json", "seeds": "x"}, "seeds")]:
        with pytest.raises(UsageError, match=match):
            split_spec(bad)


def test_the_log_reads_exploit_records_and_still_refuses_unknown_types(tmp_path):
    s = make_searcher(log_path=str(tmp_path / "log.jsonl"))
    s.evaluate([CONFIG_7198])
    s.close()
    path = tmp_path / "log.jsonl"
    record = {"type": "exploit", "search_index": 0, "generation": 1, "epoch": 2, "member": 1,
              "parent": 0, "member_key": "a", "parent_key": "b", "old": {}, "new": {}}
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
    assert read_log(str(path)).exploits == [record]
    with open(path, "a") as f:
        f.write(json.dumps({**record, "type": "mystery"}) + "\n")
    with pytest.raises(LogError, match="unknown record type"):
        read_log(str(path))


# ---- training ----------------------------------------------------------------------------

def test_generations_compile_nothing_after_the_first(tmp_path):
    import jax

    compiles = []
    counting = {"on": False}

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration" and counting["on"]:
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    generations = []

    def on_generation(generation, epoch):
        generations.append(generation)
        counting["on"] = True  # from the end of the first generation on

    s = searcher()
    run_pbt(s, on_generation=on_generation)
    assert generations == [1, 2, 3, 4]
    assert compiles == [], f"{len(compiles)} compiles after the first generation"
    assert len(s.results) == POPULATION
    jax.jit(lambda x: x * 3 + 1)(np.arange(7.0))  # the listener does see a compile
    counting["on"] = False
    assert len(compiles) == 1


@pytest.mark.slow  # three PBT runs
def test_a_killed_run_resumes_from_its_last_generation_bit_identical(tmp_path):
    whole = searcher(log_path=str(tmp_path / "whole.jsonl"))
    run_pbt(whole)
    expected = outcomes_by_key(whole)

    class Killed(Exception):
        pass

    def kill(generation, epoch):
        if generation == 2:
            raise Killed

    log = str(tmp_path / "killed.jsonl")
    first = searcher(log_path=log)
    with pytest.raises(Killed):
        run_pbt(first, on_generation=kill)
    first.close()
    assert read_log(log).outcomes == {}  # nothing finished, but the lineage so far is logged
    assert {r["generation"] for r in read_log(log).exploits} == {1, 2}
    again = searcher(log_path=log, resume=True)
    generations = []
    run_pbt(again, on_generation=lambda g, e: generations.append(g))
    assert generations == [3, 4]  # resumed after generation 2, not from scratch
    assert outcomes_by_key(again) == expected
    assert not list(tmp_path.glob("killed.jsonl.pbt*"))  # finished: checkpoint removed
    assert format_lineage(again.lineage) == format_lineage(whole.lineage)


def test_the_lineage_shown_from_the_log_is_the_live_runs(tmp_path, capsys):
    live = searcher()  # no log: the lineage comes from the run itself
    run_pbt(live)
    logged = searcher(log_path=str(tmp_path / "log.jsonl"))
    run_pbt(logged)
    logged.close()
    lin, score = read_lineage(str(tmp_path / "log.jsonl"))
    assert lin.segments == live.lineage.segments
    assert len(lin.segments) >= 1
    capsys.readouterr()
    assert main(["show", str(tmp_path / "log.jsonl"), "--lineage",
                 "--schedule-out", str(tmp_path / "schedule.json")]) == 0
    shown = capsys.readouterr().out
    assert format_lineage(live.lineage, score) in shown
    # Every exploit of the run is in the log, with the scores it was decided on.
    exploits = read_log(str(tmp_path / "log.jsonl")).exploits
    assert exploits and all(r["member_score"] <= r["parent_score"] for r in exploits)
    # The best member's final score is its slot's last validation accuracy.
    best = [o for o in logged._completed.values()
            if o.final("val_accuracy") == score]
    assert best

    # The figures, from the log alone: the schedules and the family tree beside the rest.
    pytest.importorskip("matplotlib")
    capsys.readouterr()
    assert main(["plot", str(tmp_path / "log.jsonl"), "--out", str(tmp_path / "plots")]) == 0
    for name in ("pbt_schedules", "pbt_family_tree", "training_curves"):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 0

    # Replay the schedule from the file on fresh seeds: one population, one result a seed.
    replayer = searcher()
    results = replayer.replay(str(tmp_path / "schedule.json"), seeds=[101, 102])
    assert [r.seeds for r in results] == [[101], [102]]


def test_selection_only_logs_exploits_that_change_no_hyperparameter(tmp_path):
    s = searcher(log_path=str(tmp_path / "log.jsonl"))
    run_pbt(s, mutate=())
    exploits = read_log(str(tmp_path / "log.jsonl")).exploits
    assert exploits
    for r in exploits:
        # The copy takes its parent's values as they were, and keeps them.
        assert set(r["new"]) == set(MUTABLE)
    lin = s.lineage
    values = {tuple(sorted(v.items())) for v in lin.schedule().values()}
    assert len(values) == 1  # one set of hyperparameters for the whole life of the model


def test_a_replayed_schedule_changes_the_hyperparameters_at_its_epochs():
    config = {"n_neurons": 6, "n_dendrites": 2, "n_dendrite_inputs": 16, "lr": 1e-2,
              "steps_to_resample": 4}
    # After epoch 2 the models all but stop learning and stop rewiring: from then on their
    # validation accuracy stays where it was.
    schedule = {"config": config, "n_epochs": N_EPOCHS,
                "changes": {"2": {"lr": 1e-30, "synaptic_resampling": False}}}
    results = searcher().replay(schedule, seeds=[7, 8])
    for r in results:
        val = r.history[0]["val_accuracy"]
        swaps = r.history[0]["swaps"]
        assert val[2:] == [val[1]] * (N_EPOCHS - 2)
        assert swaps[0] > 0 and swaps[2:] == [0] * (N_EPOCHS - 2)
        assert val[1] != val[0] or r.history[0]["train_loss"][1] != r.history[0]["train_loss"][0]
    with pytest.raises(ConfigError, match="schedule"):
        searcher().replay({"config": config, "changes": {"2": {"n_neurons": 3}}}, seeds=[1])


@pytest.mark.slow  # a subprocess that trains every method twice
def test_the_benchmark_quick_form_runs_every_method_and_writes_its_report(tmp_path):
    import gzip
    import os
    import struct
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    data = tmp_path / "fashion-mnist"
    data.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 600), ("t10k", 200)):
        for kind, array in (("images", rng.integers(0, 256, size=(n, 28, 28))),
                            ("labels", np.arange(n) % 10)):
            header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
                struct.pack(">I", d) for d in array.shape)
            with gzip.open(data / f"{prefix}-{kind}-idx{array.ndim}-ubyte.gz", "wb") as f:
                f.write(header + array.astype(np.uint8).tobytes())
    env = {k: v for k, v in os.environ.items() if k != "DENDRAX_DATA_DIR"}
    env.update(PYTHONPATH=str(repo), JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, str(repo / "benchmarks" / "pbt.py"), "--quick",
                           "--out", str(tmp_path / "out"), "--data-dir", str(data)],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "pbt.json").read_text())
    assert set(report["summary"]) == {"pbt", "pbt-selection", "random", "halving"}
    for method, s in report["summary"].items():
        assert s["n"] == 2 and 0 <= s["iqm"] <= 1 and s["iqm_ci"][0] <= s["iqm_ci"][1]
    for run in report["runs"]:
        assert len(run["replay_test"]) == 2  # the winner replayed on both fresh seeds
        if run["method"] != "halving":  # halving gets at most the same model-epochs
            assert run["model_epochs"] == 4 * 3
        else:
            assert run["model_epochs"] <= 4 * 3 + 3
    text = (tmp_path / "out" / "pbt.md").read_text()
    assert f"{report['summary']['pbt']['iqm']:.4f}" in text


@pytest.mark.slow  # the command line trains a PBT population and replays its winner
def test_the_command_line_runs_pbt_shows_its_lineage_and_replays_it(tmp_path, capsys):
    from dendrax.data import SAMPLE_DIR

    base = {"dataset": "fashion-mnist", "data_dir": str(SAMPLE_DIR), "subset_size": 256,
            "max_params": 8000, "min_param_ratio": 0.05, "n_epochs": 3, "batch_size": 64,
            "padding": "exact"}
    spec = {**base, "strategy": "pbt", "population_size": 4, "ready_every": 1,
            "distributions": {"n_neurons": 6, "n_dendrites": 2, "n_dendrite_inputs": 32,
                              "lr": {"type": "loguniform", "low": 1e-3, "high": 3e-2}}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    log = tmp_path / "pbt.jsonl"
    assert main(["search", str(tmp_path / "spec.json"), "--log", str(log), "--quiet"]) == 0
    types = [json.loads(line)["type"] for line in log.read_text().splitlines()]
    assert types[0] == "header" and types.count("trial") == 4 and "exploit" in types
    capsys.readouterr()
    schedule = tmp_path / "best.json"
    assert main(["show", str(log), "--lineage", "--schedule-out", str(schedule)]) == 0
    assert "ancestry (oldest first)" in capsys.readouterr().out
    (tmp_path / "replay.json").write_text(json.dumps(
        {**base, "schedule": str(schedule), "seeds": [5, 6]}))
    assert main(["search", str(tmp_path / "replay.json"), "--log",
                 str(tmp_path / "replay.jsonl"), "--quiet"]) == 0
    replayed = [json.loads(line) for line in (tmp_path / "replay.jsonl").read_text().splitlines()]
    assert replayed[0]["spec"]["strategy"] == "replay"
    assert sorted(r["config"]["seed"] for r in replayed if r["type"] == "trial") == [5, 6]


def test_a_checkpoint_round_trips_and_a_broken_one_is_ignored(tmp_path):
    import jax
    import jax.numpy as jnp
    from dendrax.population.pbt import load_checkpoint, save_checkpoint
    from dendrax.population.program import MemberState, seed_keys

    state = MemberState(params={"w": jnp.arange(6.0).reshape(2, 3)}, connectivity={},
                        opt_state=(jnp.ones(2),), key=seed_keys([1, 2]),
                        step=jnp.asarray([3, 4], jnp.int32), alive=jnp.asarray([True, False]),
                        diverged_step=jnp.asarray([-1, 7], jnp.int32))
    path = str(tmp_path / "ckpt")
    save_checkpoint(path, state, {"generation": 2, "history": {"val": [[0.5, math.nan]]}})
    loaded, host = load_checkpoint(path, state)
    assert host["generation"] == 2 and math.isnan(host["history"]["val"][0][1])
    flat = lambda s: [np.asarray(jax.random.key_data(x) if jnp.issubdtype(
        x.dtype, jax.dtypes.prng_key) else x) for x in jax.tree_util.tree_leaves(s)]
    for a, b in zip(flat(state), flat(loaded)):
        np.testing.assert_array_equal(a, b)
    assert not [p for p in tmp_path.iterdir() if p.name != "ckpt"]  # no temporary left
    blob = (tmp_path / "ckpt").read_bytes()
    (tmp_path / "ckpt").write_bytes(blob[: len(blob) // 2])  # cut short
    assert load_checkpoint(path, state) is None
    (tmp_path / "ckpt").write_bytes(blob)
    other = state._replace(step=jnp.zeros(3, jnp.int32))  # another population's shapes
    assert load_checkpoint(path, other) is None
    assert load_checkpoint(str(tmp_path / "missing"), state) is None


@pytest.mark.parametrize("kwargs, match", [
    ({"perturb": 0.8}, "perturb"), ({"mutate": "lr"}, "mutate"),
    ({"mutate": ["n_neurons"]}, "mutate"), ({"quantile": 0.9}, "quantile"),
    ({"ready_every": 0}, "ready_every"), ({"burn_in": -1}, "burn_in"),
    ({"perturb": [0.0]}, "perturb"), ({"resample_probability": 2}, "resample_probability")])
def test_bad_pbt_arguments_are_config_errors_before_anything_trains(kwargs, match):
    from conftest import FakeTrainer

    trainer = FakeTrainer()
    s = make_searcher(trainer=trainer)
    with pytest.raises(ConfigError, match=match):
        s.population_based_training({"lr": [1e-3, 1e-2], **CONFIG_7198}, 4,
                                    **{"ready_every": 1, **kwargs})
    assert trainer.calls == []


def test_a_population_mixing_structures_is_refused_and_one_of_sizes_is_padded():
    from dendrax.population.pbt import population_shape

    shape = population_shape([ModelConfig(n_neurons=4, n_dendrites=6, n_dendrite_inputs=8),
                              ModelConfig(n_neurons=6, n_dendrites=2, n_dendrite_inputs=16)], 64)
    assert (shape.n_neurons, shape.n_dendrites, shape.k) == (6, 6, 16)
    with pytest.raises(ConfigError, match="one structure"):
        population_shape([ModelConfig(), ModelConfig(architecture="soma_disabled")], 64)


def test_show_lineage_of_a_log_without_pbt_is_one_error_line(tmp_path, capsys):
    s = make_searcher(log_path=str(tmp_path / "log.jsonl"))
    s.evaluate([CONFIG_7198])
    s.close()
    capsys.readouterr()
    assert main(["show", str(tmp_path / "log.jsonl"), "--lineage"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no population-based training search" in err[0]
