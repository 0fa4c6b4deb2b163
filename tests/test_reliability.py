"""One error boundary (issue 18): each hostile input found by hand gets a DendraxError that
names the field, before anything compiles or is written to the log.

Every searcher case uses a trainer that fails the test if it is called, or checks that it
was not; the JAX cases stop before the first compile.
"""

from __future__ import annotations

import functools
import json
import math
import os
import pickle
import stat
import threading
import time

import numpy as np
import pytest

import dendrax
from dendrax import cli
from dendrax.data import DataError, from_arrays, load_dataset
from dendrax.errors import ConfigError, DendraxError, ModelTooLargeError
from dendrax.search import BudgetError, LogError, SearchLog, read_log, trial_key
from dendrax.config import ModelConfig
from dendrax.spec import TrainSettings
from test_data import cifar_files, idx_bytes, write_idx_set
from conftest import CONFIG_7198, fake_data, FakeTrainer, make_searcher

GRID_7198 = {k: [v] for k, v in CONFIG_7198.items()}


class NeverCalled:
    """A trainer that fails the test if any model reaches it."""

    def __call__(self, *args, **kwargs):
        raise AssertionError("the trainer was called for an invalid search")


def refused(match, error=ConfigError, **kwargs):
    with pytest.raises(error, match=match) as info:
        make_searcher(NeverCalled(), **kwargs)
    return info.value


def grid_refused(grid, match, error=ConfigError, **kwargs):
    searcher = make_searcher(NeverCalled(), **kwargs)
    with pytest.raises(error, match=match) as info:
        searcher.grid_search(grid)
    return info.value


# ---- one base class ---------------------------------------------------------------------

def test_every_user_error_is_a_dendrax_error_and_keeps_its_old_bases():
    for error in (ConfigError, BudgetError, DataError, LogError, ModelTooLargeError,
                  cli.UsageError):
        assert issubclass(error, DendraxError)
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ValueError)
    assert issubclass(LogError, RuntimeError)
    assert dendrax.DendraxError is DendraxError and dendrax.ConfigError is ConfigError


# ---- 1. non-finite numbers ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["lr", "weight_decay"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_rates_are_refused_from_a_grid(name, value, tmp_path):
    log = tmp_path / "log.jsonl"
    grid_refused({**GRID_7198, name: [1e-3, value]}, rf"{name}=.*must be a finite number",
                 log_path=str(log))
    assert log.read_text() == ""  # nothing written


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_non_finite_searcher_defaults_are_refused(value):
    refused(r"lr=.* must be a finite number >= 0", lr=value)
    refused(r"weight_decay=.* must be a finite number", weight_decay=value)


@pytest.mark.parametrize("spec", [
    {"type": "uniform", "low": 0.0, "high": math.inf},
    {"type": "loguniform", "low": math.nan, "high": 1e-2},
    (1e-4, math.inf),
    [1e-3, math.nan],
])
def test_non_finite_distributions_are_refused(spec):
    searcher = make_searcher(NeverCalled())
    with pytest.raises(ConfigError, match=r"lr|finite"):
        searcher.random_search({**GRID_7198, "lr": spec}, n_trials=3)


def test_a_json_nan_literal_in_a_spec_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "HyperparameterSearcher", functools.partial(
        dendrax.HyperparameterSearcher, data=fake_data(), trainer=NeverCalled()))
    (tmp_path / "spec.json").write_text('{"lr": NaN, "grid": {"n_neurons": [12]}}')
    assert cli.main(["search", str(tmp_path / "spec.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dendrax: error: lr=nan must be a finite number")
    assert len(err.strip().splitlines()) == 1


def test_trial_keys_refuse_non_finite_values_and_distinct_configs_get_distinct_keys():
    with pytest.raises(ConfigError, match="finite"):
        trial_key(ModelConfig(lr=math.inf))
    rates = (1e-3, math.nextafter(1e-3, 1.0), 2e-3, 0.0, 5e-324)  # neighbours stay apart
    assert len({trial_key(ModelConfig(lr=lr)) for lr in rates}) == len(rates)
    searcher = make_searcher()
    searcher.grid_search({**GRID_7198, "lr": [1e-3, 2e-3, 3e-3]})
    assert len(searcher.results) == 3


# ---- 2. seeds and integer types -----------------------------------------------------------

def test_seeds_are_bounded_to_what_the_prng_takes():
    refused(r"seed=9223372036854775808 is out of range; .*\[0, 9223372036854775807\]",
            seed=2**63)
    grid_refused({**GRID_7198, "seed": [2**64]}, r"seed=18446744073709551616 is out of range")
    with pytest.raises(ConfigError, match="data_seed"):
        TrainSettings(data_seed=2**63).validate()
    make_searcher(seed=2**63 - 1)


def test_numpy_integers_are_accepted_and_bools_refused_alike():
    searcher = make_searcher(n_epochs=np.int64(3), batch_size=np.int32(32),
                             max_params=np.int64(8000), seed=np.uint8(4),
                             seeds_per_config=np.int16(2))
    assert type(searcher.settings.n_epochs) is int and searcher.settings.batch_size == 32
    for name in ("n_epochs", "batch_size", "seeds_per_config", "max_params", "seed"):
        refused(rf"{name}=True must be an integer", **{name: True})
    grid_refused({**GRID_7198, "n_dendrites": [True]}, r"n_dendrites=True must be an integer")


# ---- 3. errors that used to come at training time -------------------------------------------

def test_batch_size_larger_than_the_training_set_is_refused_before_the_log(tmp_path):
    log = tmp_path / "log.jsonl"
    refused(r"batch_size=1024 is larger than the 512 training examples", batch_size=1024,
            log_path=str(log))
    assert not log.exists() or log.read_text() == ""
    make_searcher(log_path=str(log)).grid_search(GRID_7198)  # so a rerun is not blocked


def test_a_validation_fraction_that_leaves_nothing_to_train_on_is_a_data_error():
    x = np.zeros((100, 4, 4), np.uint8)
    y = np.arange(100) % 10
    with pytest.raises(DataError, match=r"validation_fraction=0.99999 leaves no training"):
        from_arrays(x, y, x, y, validation_fraction=0.99999)


def test_train_configs_refuses_a_batch_larger_than_the_training_set_before_compiling():
    from dendrax.population import train_configs
    from conftest import prototype_data

    data = prototype_data(n_train=32, n_val=8, n_test=8, in_dim=16, image_shape=(4, 4, 1))
    config = ModelConfig(n_neurons=2, n_dendrites=2, n_dendrite_inputs=4)
    with pytest.raises(ConfigError, match=r"batch_size=64 is larger than the 32 training"):
        train_configs([config], data, TrainSettings(batch_size=64, n_epochs=1))


def test_a_model_larger_than_device_memory_does_not_fit_before_anything_compiles(
        tmp_path, monkeypatch):
    from dendrax.population import memory, runner, train_configs
    from conftest import prototype_data

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled a program for a model that cannot fit")

    monkeypatch.setattr(runner, "prepare_population", no_compile)
    monkeypatch.setattr(memory, "free_memory", lambda: memory.FreeMemory(8 << 30, False))
    data = prototype_data(n_train=64, n_val=16, n_test=16)
    huge = ModelConfig(n_neurons=10**6, n_dendrites=6, n_dendrite_inputs=96)
    with pytest.raises(ModelTooLargeError, match=r"does not fit: one model \(n_neurons=1000000"
                                                 r".*needs about \d+\.\d GiB.*8\.0 GiB is free"):
        train_configs([huge], data, TrainSettings(batch_size=32, n_epochs=1), log=None)

    # Through the searcher: the log stays empty, so a rerun is not blocked.
    log = tmp_path / "log.jsonl"
    searcher = dendrax.HyperparameterSearcher(data=data, trainer=train_configs, verbose=False,
                                              max_params=10**9, min_param_ratio=0.5, batch_size=32,
                                              log_path=str(log))
    with pytest.raises(ModelTooLargeError):
        searcher.grid_search({"n_neurons": [10**6], "n_dendrites": [6],
                              "n_dendrite_inputs": [96]})
    assert log.read_text() == ""


def test_a_search_that_fails_before_any_model_finished_leaves_the_log_empty(tmp_path):
    log = tmp_path / "log.jsonl"
    with pytest.raises(RuntimeError, match="killed"):
        make_searcher(FakeTrainer(fail_after_buckets=0), log_path=str(log)).grid_search(GRID_7198)
    assert log.read_text() == ""
    make_searcher(log_path=str(log)).grid_search(GRID_7198)  # no --resume needed
    assert [json.loads(l)["type"] for l in log.read_text().splitlines()] == ["header", "trial"]


# ---- 4. readers ---------------------------------------------------------------------------

def _one_search_log(tmp_path):
    log = tmp_path / "log.jsonl"
    make_searcher(log_path=str(log)).grid_search({**GRID_7198, "n_neurons": [11, 12]})
    return log, log.read_text().splitlines()


@pytest.mark.parametrize("edit, words", [
    (lambda r: r.pop("key"), r"'key' must be a string, got None"),
    (lambda r: r.update(total_params="7198"), r"'total_params' must be an integer"),
    (lambda r: r["config"].update(lr=None), r"lr=None must be a number >= 0"),
    (lambda r: r["config"].update(n_neuron=3), r"unknown parameter 'n_neuron'"),
    (lambda r: r.update(history={"val_accuracy": ["x"]}), r"history\['val_accuracy'\] must "),
    (lambda r: r.update(key="0" * 16), r"not the key of its config"),
    (lambda r: r.update(type="trail"), r"unknown record type 'trail'"),
])
def test_a_bad_log_line_is_a_log_error_naming_file_and_line(tmp_path, edit, words):
    log, lines = _one_search_log(tmp_path)
    record = json.loads(lines[1])
    edit(record)
    lines[1] = json.dumps(record)
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(LogError, match=rf"{log}: line 2: .*{words}"):
        read_log(str(log))
    with pytest.raises(LogError, match=r"line 2"):
        make_searcher(NeverCalled(), log_path=str(log), resume=True)


def test_show_prints_a_bad_log_line_as_one_error_line(tmp_path, capsys):
    log, lines = _one_search_log(tmp_path)
    lines[1] = lines[1].replace('"lr": 0.0005', '"lr": null')
    log.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe\n" + b"\n")
    assert cli.main(["show", str(log)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dendrax: error: {log}: line 2: ") and "lr=None" in err
    assert len(err.strip().splitlines()) == 1


def test_a_non_utf8_spec_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "spec.json").write_bytes(b'{"grid": {"n_neurons": [12]}, "x": "\xff"}')
    assert cli.main(["search", str(tmp_path / "spec.json")]) == 2
    err = capsys.readouterr().err
    assert "not UTF-8 text" in err and "Traceback" not in err


# ---- 5. log paths -------------------------------------------------------------------------

def test_a_write_failure_stops_with_a_log_error_and_leaves_whole_lines(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    grid = {**GRID_7198, "n_neurons": [11, 12]}  # two buckets
    searcher = make_searcher(log_path=str(log))
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:  # the second bucket's write: the disk is full
            raise OSError(28, "No space left on device")

    monkeypatch.setattr("dendrax.search.log.os.fsync", fsync)
    with pytest.raises(LogError, match=r"cannot write to the search log .*No space left"):
        searcher.grid_search(grid)
    monkeypatch.undo()
    contents = read_log(str(log))  # every line whole and valid
    assert contents.torn_line is None and len(contents.trials) == 1
    resumed = make_searcher(log_path=str(log), resume=True)
    resumed.grid_search(grid)
    assert len(resumed.results) == 2


def _finishes(fn, seconds=10.0):
    """Run fn in a thread; return what it raised, failing if it hangs."""
    outcome = {}

    def run():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung"
    return outcome.get("error")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_log_path_is_refused_up_front(tmp_path):
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    error = _finishes(lambda: make_searcher(log_path=str(fifo)))
    assert isinstance(error, LogError) and "not a regular file" in str(error)
    error = _finishes(lambda: read_log(str(fifo)))
    assert isinstance(error, LogError)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_device_log_path_is_refused_up_front():
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    with pytest.raises(LogError, match=r"/dev/full.*not a regular file"):
        make_searcher(log_path="/dev/full")
    with pytest.raises(LogError, match="not a regular file"):
        SearchLog("/dev/full")


# ---- 7. smaller ones --------------------------------------------------------------------------

def test_an_idx_file_of_zero_images_is_a_data_error(tmp_path):
    write_idx_set(tmp_path, gz=False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((0, 28, 28))))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros((0,))))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: holds no pixels"):
        load_dataset("mnist", data_dir=tmp_path)


def test_a_huge_grid_is_sampled_lazily_and_quickly():
    # 10**7 combinations, of which 1 in 2,500 fits the budget (4 of the 10**4 shapes).
    grid = {"n_neurons": list(range(1, 101)), "n_dendrites": list(range(1, 101)),
            "n_dendrite_inputs": [96], "steps_to_resample": list(range(1, 1001))}
    trainer = FakeTrainer()
    searcher = make_searcher(trainer, max_params=8000, min_param_ratio=0.99)
    start = time.perf_counter()
    searcher.grid_search(grid, max_trials=2)
    elapsed = time.perf_counter() - start
    assert len(trainer.trained) == 2 and elapsed < 30, elapsed  # seconds, not minutes
    with pytest.raises(ConfigError, match=r"10,000,000 combinations; .*Pass max_trials"):
        make_searcher(NeverCalled()).grid_search(grid)
    # A value that is invalid somewhere in the huge grid is still found, without expanding.
    bad = {**grid, "n_dendrite_inputs": [96] * 1000 + [5000]}
    with pytest.raises(ConfigError, match=r"n_dendrite_inputs=5000 exceeds the 784"):
        make_searcher(NeverCalled()).grid_search(bad, max_trials=2)


def test_a_huge_grid_where_nothing_fits_is_a_budget_error():
    grid = {"n_neurons": list(range(1000, 1100)), "n_dendrites": list(range(1000, 1100)),
            "steps_to_resample": list(range(1, 1001))}
    start = time.perf_counter()
    with pytest.raises(BudgetError, match=r"none of the 100,000 combinations checked "
                                         r"\(drawn at random from the 10,000,000 of param_grid\) fits"):
        make_searcher(NeverCalled()).grid_search(grid, max_trials=2)
    assert time.perf_counter() - start < 60


@pytest.mark.parametrize("command", [["show", "LOG", "--top", "-3"],
                                     ["search", "SPEC", "--top", "0"]])
def test_a_negative_top_is_refused(tmp_path, capsys, command):
    log, _ = _one_search_log(tmp_path)
    argv = [str(log) if a == "LOG" else str(tmp_path / "s.json") if a == "SPEC" else a
            for a in command]
    assert cli.main(argv) == 2
    assert "--top" in capsys.readouterr().err


def test_a_yaml_exponent_read_as_a_string_gets_a_hint(tmp_path, capsys, monkeypatch):
    pytest.importorskip("yaml")
    monkeypatch.setattr(cli, "HyperparameterSearcher", functools.partial(
        dendrax.HyperparameterSearcher, data=fake_data(), trainer=NeverCalled()))
    (tmp_path / "spec.yaml").write_text("lr: 1e-3\ngrid: {n_neurons: [12]}\n")
    assert cli.main(["search", str(tmp_path / "spec.yaml")]) == 2
    err = capsys.readouterr().err
    assert "lr='1e-3' must be a number" in err and "1.0e-3" in err


def test_a_float_bound_of_an_integer_parameter_names_the_bound():
    searcher = make_searcher(NeverCalled())
    with pytest.raises(ConfigError, match=r"'n_neurons': high=8\.5 must be an integer "
                                          r"\(n_neurons takes integers\)"):
        searcher.random_search({**GRID_7198, "n_neurons": (4, 8.5)}, n_trials=3)


def test_cifar_batches_re_pickled_by_python_3_load(tmp_path):
    files, _ = cifar_files()
    for name, payload in files.items():
        batch = pickle.loads(payload, encoding="bytes")
        repickled = pickle.dumps(batch, protocol=2)
        if name.startswith(("data_batch", "test_batch")):
            assert b"_codecs" in repickled  # what used to be refused
        (tmp_path / name).write_bytes(repickled)
    assert len(load_dataset("cifar10", data_dir=tmp_path).x_test) == 20
    # Only the latin-1 form of _codecs.encode is let through: _codecs.encode("a", "rot13").
    (tmp_path / "data_batch_2").write_bytes(
        b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(DataError, match=r"data_batch_2: .*refusing to load _codecs.encode"):
        load_dataset("cifar10", data_dir=tmp_path)


# ---- the command line's boundary ------------------------------------------------------------

def test_debug_shows_the_traceback_and_unexpected_errors_keep_theirs(tmp_path, capsys,
                                                                     monkeypatch):
    missing = str(tmp_path / "nope.jsonl")
    assert cli.main(["--debug", "show", missing]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith(f"no search log at {missing!r}")

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "cmd_show", broken)
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["show"].set_defaults(run=broken)
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["show", missing])
