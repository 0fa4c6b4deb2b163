"""Property-based fuzzing of the error boundary (issue 18), with Hypothesis.

Each test generates hostile input for one entry point: searcher arguments, grids, random
search distributions, spec files (run through the `dendrax search` command), log lines
(read back by resume and `dendrax show`) and your own arrays (``from_arrays``, whose
findings are replayed by tests/test_reliability_outputs.py: the regression file holds no
arrays). Values come from a wide strategy: wrong types,
NaN and infinities, huge and negative numbers, numpy scalars, unicode names, torn and
mistyped lines. The property: every input either validates or raises a DendraxError that
names the bad field (or file and line), within a second, without training or compiling.

The trainer is a stub: called with anything invalid it fails the test, and called with
valid input it stops the search (StubCalled), so nothing ever trains.

Runs are reproducible: ``derandomize=True`` fixes the examples, and their number is
bounded (FUZZ_EXAMPLES per test, more with $DENDRAX_FUZZ_EXAMPLES). The inputs found by
hand in issue 18 replay from tests/fuzz_regressions.json. Every generated input and every
failure is counted (tests/fuzz_plugin.py prints the tally and writes fuzz_report.json).

Integers are drawn from small values and from beyond 2**31, up to far beyond 64 bits
(2**200, and 10**5000, which Python refuses to print), not from the legitimate but
expensive middle (a random search of 500,000 trials is valid and takes its time). Floats
reach the largest and smallest finite values, the subnormals and negative zero. Besides
the generated examples, every numeric field of a config and every numeric searcher
argument is tried at each of those extremes (``test_every_numeric_setting_at_its_extremes``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from dendrax import cli  # noqa: E402
from dendrax.errors import DendraxError  # noqa: E402
from dendrax.search import BudgetError, HyperparameterSearcher, SearchLog, read_log  # noqa: E402
from dendrax.config import ModelConfig  # noqa: E402
from conftest import CONFIG_7198, fake_data, FakeTrainer  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("DENDRAX_FUZZ_EXAMPLES", "150"))
FUZZ = settings(derandomize=True, database=None, max_examples=FUZZ_EXAMPLES, deadline=1000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# A torn last line is ignored with a warning: expected here, thousands of times.
pytestmark = pytest.mark.filterwarnings("ignore:.*ignored a torn last line:RuntimeWarning")
REGRESSIONS = Path(__file__).parent / "fuzz_regressions.json"
DATA = fake_data()  # read-only: shared by every example
GRID = {k: [v] for k, v in CONFIG_7198.items()}
PARAMS = [f for f in ModelConfig.__dataclass_fields__]
SEARCHER_ARGS = ["dataset", "subset_size", "max_params", "min_param_ratio", "n_epochs", "lr",
                 "weight_decay", "batch_size", "n_classes", "seeds_per_config", "seed",
                 "validation_fraction", "resume", "data_order", "lowering", "chunk_size",
                 "padding", "halving_eta", "halving_min_epochs", "devices",
                 "rank_by", "executor", "ray_address", "data_dir", "verbose"]


# ---- the stub trainer and the property --------------------------------------------------

class StubCalled(Exception):
    """The search validated and reached the trainer: the input was acceptable."""


def stub_trainer(configs, data, settings, *, progress=None, on_bucket_done=None, on_plan=None,
                 log=None):
    """Fails the test if handed anything invalid; otherwise stops the search."""
    try:
        settings.validate()
        assert configs, "trainer called with no configs"
        for config in configs:
            config.validate(data.in_dim)
    except DendraxError as e:
        raise AssertionError(f"the trainer was called with invalid input: {e}") from e
    raise StubCalled


def outcome(action, names, tally, target) -> str:
    """Run ``action``; "trained" if it reached the trainer, "ok" if it returned, "error" if
    it raised a DendraxError naming one of ``names``. Anything else fails the test."""
    tally["tried"][target] += 1
    start = time.perf_counter()
    try:
        try:
            action()
            tally["results"][target, "ok"] += 1
            return "ok"
        except StubCalled:
            tally["results"][target, "trained"] += 1
            return "trained"
        except DendraxError as e:
            message = str(e)
            assert message.strip(), "an empty error message"
            if not isinstance(e, BudgetError):  # a budget error names no single field
                # A name appears as itself or as its repr ('\x1f' for a control character).
                assert any(str(n) in message or repr(str(n)) in message for n in names), (
                    f"{type(e).__name__} names none of {names}: {message}")
            tally["results"][target, "error"] += 1
            return "error"
        finally:
            # Hypothesis enforces the 1 s deadline on generated inputs; this catches a
            # replayed regression that hangs, with slack for a machine shared with others.
            assert time.perf_counter() - start < 5.0, "took over five seconds"
    except BaseException:
        tally["failed"][target] += 1
        raise


def searcher(**kwargs) -> HyperparameterSearcher:
    kwargs.setdefault("data", DATA)
    kwargs.setdefault("verbose", False)
    return HyperparameterSearcher(trainer=stub_trainer, **kwargs)


# ---- strategies -----------------------------------------------------------------------------

# The edges where real bugs live: int32 and int64 limits, integers far beyond 64 bits
# (10**5000 is too long for Python to print), the largest and smallest finite floats, the
# smallest subnormal, negative zero, NaN and the infinities.
EXTREME_INTS = [2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, 2**200, 10**5000,
                -2**31, -2**63, -2**200, -10**5000]
EXTREME_FLOATS = [sys.float_info.max, -sys.float_info.max, sys.float_info.min,
                  -sys.float_info.min, 5e-324, -5e-324, 0.0, -0.0, math.nan, math.inf,
                  -math.inf, 1.0 - 2**-53, 1.0 + 2**-52]
# Small integers, and integers far beyond any sensible setting (never the costly middle).
INTS = st.one_of(st.integers(-3, 40), st.integers(-2**80, -4), st.integers(2**31, 2**300),
                 st.sampled_from(EXTREME_INTS))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
                   st.sampled_from([*EXTREME_FLOATS, 1e-3, 0.5, 1.0, 1e300]))
NUMPY = st.sampled_from([np.int64(3), np.int32(-1), np.uint8(7), np.float32(np.nan),
                         np.float64(np.inf), np.float32(1e-3), np.bool_(True), np.int64(2**62)])
TEXT = st.one_of(st.text(max_size=8), st.sampled_from(
    ["1e-3", "12", "nan", "inf", "", "dendritic_simple", "random", "exact", "ä", "\x00"]))
SCALARS = st.one_of(st.none(), st.booleans(), INTS, FLOATS, NUMPY, TEXT)
HOSTILE = st.one_of(SCALARS, st.lists(SCALARS, max_size=3),
                    st.dictionaries(TEXT, SCALARS, max_size=2))
JSON_SCALARS = st.one_of(st.none(), st.booleans(), INTS, FLOATS, TEXT)
JSON_VALUES = st.one_of(JSON_SCALARS, st.lists(JSON_SCALARS, max_size=3),
                        st.dictionaries(TEXT, JSON_SCALARS, max_size=2))
NAMES = st.one_of(st.sampled_from(PARAMS), st.sampled_from(PARAMS), TEXT)
# Values that are often valid for some parameter, so that searches also reach the trainer.
PLAUSIBLE = st.sampled_from([8, 10, 12, 6, 96, 64, 1e-3, 0.01, 0.25, True, False, 0, 7,
                             "dendritic_simple", "soma_disabled", "random", "fully-connected"])
GRID_VALUES = st.one_of(st.lists(st.one_of(PLAUSIBLE, HOSTILE), max_size=4), PLAUSIBLE, HOSTILE)
# Valid values of each parameter: a generated grid or space starts from a valid one and
# swaps some entries for valid alternatives or hostile values, so that searches also pass.
VALID = {"architecture": ["dendritic_simple", "soma_disabled", "dendritic_with_hidden"],
         "n_neurons": [8, 12, 16], "n_dendrites": [4, 6], "n_dendrite_inputs": [32, 96],
         "soma_enabled": [True, False], "hidden_dim": [None, 8],
         "strategy": ["random", "local-receptive-fields", "fully-connected"],
         "synaptic_resampling": [True, False], "percentage_resample": [0.1, 0.5],
         "steps_to_resample": [16, 128], "lr": [1e-3, 0.1], "weight_decay": [0.0, 0.01],
         "seed": [0, 7]}


def _mixed(valid, hostile):
    """Entries of a valid mapping, some replaced, plus a few hostile entries."""
    extras = st.one_of(st.just({}), st.just({}),
                       st.dictionaries(st.sampled_from(PARAMS), hostile, max_size=1),
                       st.dictionaries(NAMES, hostile, max_size=2))
    return st.builds(lambda base, extra: {**base, **extra},
                     st.fixed_dictionaries({}, optional=valid), extras)


GRIDS = st.one_of(
    _mixed({name: st.one_of(st.lists(st.sampled_from(v), min_size=1, max_size=3,
                                     unique_by=repr), st.sampled_from(v))
            for name, v in VALID.items()}, GRID_VALUES).map(lambda g: {**GRID, **g}),
    st.dictionaries(NAMES, GRID_VALUES, max_size=4))
BOUNDS = st.one_of(PLAUSIBLE, SCALARS)
DISTRIBUTIONS = st.one_of(
    SCALARS, st.lists(st.one_of(PLAUSIBLE, SCALARS), max_size=3),
    st.tuples(BOUNDS, BOUNDS), st.tuples(BOUNDS), st.tuples(BOUNDS, BOUNDS, BOUNDS),
    st.fixed_dictionaries({"type": st.sampled_from(["uniform", "loguniform", "randint",
                                                     "choice", "normal", 3, None])},
                          optional={"low": BOUNDS, "high": BOUNDS,
                                    "values": st.one_of(st.lists(SCALARS, max_size=3), SCALARS),
                                    "extra": SCALARS}))

def _valid_distributions(values):
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    options = [st.lists(st.sampled_from(values), min_size=1, max_size=3)]
    if len(numbers) >= 2:
        low, high = min(numbers), max(numbers)
        if all(isinstance(v, int) for v in numbers):
            options += [st.just((low, high)), st.just({"type": "randint", "low": low,
                                                       "high": high})]
        else:
            options += [st.just({"type": "uniform", "low": low, "high": high})]
            if low > 0:
                options.append(st.just({"type": "loguniform", "low": low, "high": high}))
    return st.one_of(*options)


SPACES = st.one_of(
    _mixed({name: _valid_distributions(v) for name, v in VALID.items()}, DISTRIBUTIONS
           ).map(lambda space: {**GRID, **space}),
    st.dictionaries(NAMES, DISTRIBUTIONS, max_size=4))
VALID_ARGS = {"dataset": ["fashion-mnist"], "subset_size": [None, 100],
              "max_params": [8000, 10**5], "min_param_ratio": [0.5, 1.0], "n_epochs": [1, 15],
              "lr": [1e-3], "weight_decay": [0.0], "batch_size": [32, 256], "n_classes": [10],
              "seeds_per_config": [1, 3], "seed": [0, 5], "validation_fraction": [0.1],
              "resume": [False], "data_order": ["own", "shared"],
              "lowering": ["auto", "dense", "gather"], "chunk_size": [None, 4],
              "padding": ["auto", "exact", "padded", "pow2"],
              "halving_eta": [None, 3], "halving_min_epochs": [1, 2], "devices": [None, 1],
              "rank_by": ["val_mean", "val_lcb"], "executor": ["local"],
              "ray_address": [None], "data_dir": [None, "/nowhere"], "verbose": [False]}
SEARCHER_KWARGS = st.lists(
    st.sampled_from(SEARCHER_ARGS).flatmap(
        lambda name: st.tuples(st.just(name), st.one_of(st.sampled_from(VALID_ARGS[name]),
                                                        HOSTILE))),
    min_size=1, max_size=4).map(dict)
TRIAL_COUNTS = st.one_of(st.none(), st.integers(-2, 30), st.integers(10**6 + 1, 2**70),
                         FLOATS, st.booleans(), TEXT, NUMPY)


# ---- searcher arguments ----------------------------------------------------------------------

def check_searcher_arguments(kwargs, tally, target="searcher"):
    def action():
        searcher(**kwargs).grid_search(GRID)

    return outcome(action, list(kwargs), tally, target)


@FUZZ
@given(kwargs=SEARCHER_KWARGS)
def test_fuzz_searcher_arguments(fuzz_tally, kwargs):
    check_searcher_arguments(kwargs, fuzz_tally)


NUMERIC_ARGS = ["subset_size", "max_params", "min_param_ratio", "n_epochs", "lr",
                "weight_decay", "batch_size", "n_classes", "seeds_per_config", "seed",
                "validation_fraction", "chunk_size", "halving_eta", "halving_min_epochs",
                "devices"]
NUMERIC_FIELDS = [name for name, field in ModelConfig.__dataclass_fields__.items()
                  if name not in ("architecture", "strategy", "soma_enabled",
                                  "synaptic_resampling")]
EXTREMES = [*EXTREME_INTS, *EXTREME_FLOATS, np.int64(2**63 - 1), np.float32(3.4e38),
            np.float64(-0.0)]


def _extreme_id(value) -> str:
    if isinstance(value, int) and abs(value) > 2**64:
        return f"{'-' if value < 0 else ''}2^{value.bit_length() - 1}"
    return repr(value)


@pytest.mark.parametrize("value", EXTREMES, ids=_extreme_id)
def test_every_numeric_setting_at_its_extremes(fuzz_tally, value):
    """Every numeric searcher argument, and every numeric config field (in a grid and in a
    one-value random-search space), at each extreme: validated, or a DendraxError that
    names it, in under a second; never an overflow, a hang or a traceback."""
    for name in NUMERIC_ARGS:
        check_searcher_arguments({name: value}, fuzz_tally, "extremes")
    for name in NUMERIC_FIELDS:
        check_grid({**GRID, name: [value]}, None, fuzz_tally, "extremes")
        check_distributions({**GRID, name: [value]}, 1, fuzz_tally, "extremes")


# ---- grids and distributions ---------------------------------------------------------------------

def check_grid(grid, max_trials, tally, target="grid"):
    def action():
        searcher(max_params=100_000, min_param_ratio=0.01).grid_search(grid, max_trials=max_trials)

    return outcome(action, [*spec_names(grid), "param_grid", "max_trials"], tally, target)


@FUZZ
@given(grid=GRIDS, max_trials=st.one_of(st.none(), st.integers(1, 8)))
def test_fuzz_grids(fuzz_tally, grid, max_trials):
    check_grid(grid, max_trials, fuzz_tally)


def check_distributions(space, n_trials, tally, target="distributions"):
    def action():
        searcher(max_params=100_000, min_param_ratio=0.01).random_search(space, n_trials=n_trials)

    return outcome(action, [*spec_names(space), "param_distributions", "n_trials"], tally,
                   target)


@FUZZ
@given(space=SPACES, n_trials=st.integers(1, 8))
def test_fuzz_distributions(fuzz_tally, space, n_trials):
    check_distributions(space, n_trials, fuzz_tally)


@FUZZ
@given(space=st.one_of(st.just(GRID), HOSTILE), count=st.one_of(TRIAL_COUNTS, st.just(2)),
       random=st.booleans())
def test_fuzz_search_call_arguments(fuzz_tally, space, count, random):
    """Whatever is passed as the grid or space itself, and as n_trials or max_trials."""
    if random:
        check_distributions(space, count, fuzz_tally, "search_calls")
    else:
        check_grid(space, count, fuzz_tally, "search_calls")


# ---- spec files through the command line ---------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder for the generated files, after one untimed run of the command: the first
    `dendrax search` imports the compilation cache (and with it JAX), which is no part of
    what the deadline measures."""
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "warm.json").write_text(json.dumps({"grid": GRID}))
    assert run_cli(["search", str(folder / "warm.json"), "--quiet"], folder)[0] == "trained"
    return folder


def run_cli(argv, folder: Path) -> tuple[int | str, str]:
    """(exit status or "trained", stderr) of `dendrax ARGV` in ``folder`` on fake_data."""
    err, out = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)  # a fuzzed log_path lands here
    try:
        with mock.patch.object(cli, "HyperparameterSearcher", searcher), \
                contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                return cli.main(argv), err.getvalue()
            except StubCalled:
                return "trained", err.getvalue()
    finally:
        os.chdir(cwd)


def check_cli(argv, folder, names, tally, target):
    def action():
        status, err = run_cli(argv, folder)
        if status == "trained":
            raise StubCalled
        if status == 0:
            return
        assert status == 2, (status, err)
        assert err.startswith("dendrax: error: ") and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
        raise DendraxError(err)  # for outcome() to check that it names something

    return outcome(action, names, tally, target)


def spec_names(spec) -> list[str]:
    """Every key of a (nested) mapping, as text: what an error may name."""
    names = []
    if isinstance(spec, dict):
        for key, value in spec.items():
            names.append(str(key))
            names += spec_names(value)
    return names


def check_spec_text(data: bytes, suffix: str, folder: Path, tally, names=(),
                    target="spec"):
    path = folder / f"spec{tally['tried'][target]}{suffix}"
    path.write_bytes(data)
    if not names:  # a replayed file: its settings are the names an error may give
        with contextlib.suppress(Exception):
            names = spec_names(cli.load_spec(str(path)))
    return check_cli(["search", str(path), "--quiet"], folder, [*names, str(path), "--"],
                     tally, target)


SPEC_KEYS = st.one_of(st.sampled_from(SEARCHER_ARGS + ["log_path", "grid", "distributions",
                                                       "max_trials", "n_trials"]), TEXT)
def _valid_or(name, hostile=JSON_SCALARS):
    return st.one_of(st.sampled_from(VALID_ARGS.get(name, [None])), hostile)


def weighted(*options):
    """One of ``options``, (weight, strategy) pairs, drawn about in proportion to the
    weights (Hypothesis draws the branches of st.one_of unevenly)."""
    choices = [strategy for weight, strategy in options for _ in range(weight)]
    return st.sampled_from(range(len(choices))).flatmap(lambda i: choices[i])


SPECS = weighted(
    (3, st.fixed_dictionaries({"grid": GRIDS},
                              optional={"max_trials": st.one_of(st.integers(1, 5), JSON_SCALARS),
                                        "n_epochs": _valid_or("n_epochs"), "lr": _valid_or("lr"),
                                        "seed": _valid_or("seed"),
                                        "padding": _valid_or("padding"), "log_path": TEXT})),
    (3, st.fixed_dictionaries({"distributions": SPACES},
                              optional={"n_trials": st.one_of(st.integers(1, 20), JSON_SCALARS),
                                        "max_params": _valid_or("max_params")})),
    (1, st.dictionaries(SPEC_KEYS, JSON_VALUES, max_size=4)), (1, JSON_VALUES))


def _json_safe(value):
    """What a spec file can hold: numpy scalars as Python ones, tuples as {"range": [...]},
    NaN and infinities as JSON's NaN and Infinity literals."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, tuple):  # a spec file writes the original's (low, high) so
        return {"range": [_json_safe(v) for v in value]}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def json_text(value) -> str:
    """json.dumps that also writes integers of over 4,300 digits, as a file can hold them
    (Python refuses to convert those to text by default; only this writer is lifted)."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return json.dumps(value)
    finally:
        sys.set_int_max_str_digits(limit)


@FUZZ
@given(spec=SPECS, mangle=st.one_of(st.none(), st.integers(0, 200), st.binary(max_size=6)))
def test_fuzz_spec_files(fuzz_tally, workdir, spec, mangle):
    text = json_text(_json_safe(spec)).encode()
    if isinstance(mangle, int):
        text = text[:mangle]  # a torn file
    elif isinstance(mangle, bytes):
        text = text[: len(text) // 2] + mangle + text[len(text) // 2:]  # stray bytes
    check_spec_text(text, ".json", workdir, fuzz_tally, names=spec_names(spec))


# ---- log lines --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clean_log(tmp_path_factory) -> list[str]:
    """The lines of a real log: a header and two trial lines."""
    path = tmp_path_factory.mktemp("log") / "search.jsonl"
    HyperparameterSearcher(data=DATA, trainer=FakeTrainer(), verbose=False, log_path=str(path)
                           ).grid_search({**GRID, "n_neurons": [11, 12]})
    return path.read_text().splitlines()


def mutate(lines: list[str], line: int, op: str, key, value, cut: int) -> bytes:
    lines = list(lines)
    i = line % len(lines)
    record = json.loads(lines[i])
    if op == "set":
        record[key] = value
    elif op == "set_config" and isinstance(record.get("config"), dict):
        record["config"][key] = value
    elif op == "set_history" and isinstance(record.get("history"), dict):
        record["history"][key] = value
    elif op == "delete":
        record.pop(key if key in record else sorted(record)[cut % len(record)], None)
    if op in ("set", "set_config", "set_history", "delete"):
        lines[i] = json_text(record)
    elif op == "truncate":
        lines[i] = lines[i][:cut]
    elif op == "garbage":
        lines[i] = json_text(value)  # a line of garbage: any JSON value, huge integers too
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "drop":
        del lines[i]
    data = ("\n".join(lines) + "\n").encode()
    if op == "bytes":
        data = data[:cut * 7] + b"\xff\xfe\x00" + data[cut * 7:]
    if op == "torn_end":
        data = data[:-1 - cut]
    return data


def check_log_bytes(data: bytes, folder: Path, tally, target="log"):
    path = folder / f"log{tally['tried'][target]}.jsonl"
    path.write_bytes(data)

    def action():
        try:
            contents = read_log(str(path))
        except DendraxError as e:
            assert str(path) in str(e), f"a log error without its file: {e}"
            raise
        for outcome_ in contents.outcomes.values():  # what reads back is valid
            outcome_.config.validate()
            assert all(isinstance(v, float) for vs in outcome_.history.values() for v in vs)
        SearchLog(str(path), resume=True)
        status, err = run_cli(["show", str(path)], folder)
        assert status == 0, err

    return outcome(action, [str(path)], tally, target)


@FUZZ
@given(line=st.integers(0, 3), op=st.sampled_from(
    ["set", "set_config", "set_history", "delete", "truncate", "garbage", "duplicate", "drop",
     "bytes", "torn_end"]),
    key=st.one_of(st.sampled_from(["key", "type", "config", "history", "total_params",
                                   "version", "spec", "spec_hash", "diverged", "bucket",
                                   "search_index", "lr", "n_neurons", "seed", "val_accuracy",
                                   "stopped_epoch", "compile_time"]), TEXT),
    value=JSON_VALUES, cut=st.integers(0, 400))
def test_fuzz_log_lines(fuzz_tally, workdir, clean_log, line, op, key, value, cut):
    check_log_bytes(mutate(clean_log, line, op, key, value, cut), workdir, fuzz_tally)


# ---- the inputs of issue 18, replayed --------------------------------------------------------------

def _regressions() -> list[dict]:
    return json.loads(REGRESSIONS.read_text())  # Python's json reads NaN and Infinity


def _tuples(space):
    """{"range": [low, high]} in a regression file stands for the tuple (low, high)."""
    return {k: cli._range_tuple(v) for k, v in space.items()} if isinstance(space, dict) \
        else space


@pytest.mark.parametrize("case", _regressions(), ids=lambda case: case["name"])
def test_fuzz_regressions(fuzz_tally, workdir, clean_log, case):
    target, given_input = case["target"], case["input"]
    if target == "searcher":
        result = check_searcher_arguments(given_input, fuzz_tally, "regressions")
    elif target == "grid":
        result = check_grid(given_input["grid"], given_input.get("max_trials"), fuzz_tally,
                            "regressions")
    elif target == "distributions":
        result = check_distributions(_tuples(given_input["space"]),
                                     given_input.get("n_trials", 5), fuzz_tally, "regressions")
    elif target == "spec":
        data = (bytes.fromhex(given_input["hex"]) if "hex" in given_input
                else given_input["text"].encode())
        result = check_spec_text(data, given_input.get("suffix", ".json"), workdir, fuzz_tally,
                                 target="regressions")
    elif target == "log":
        result = check_log_bytes(mutate(clean_log, given_input["line"], given_input["op"],
                                        given_input.get("key"), given_input.get("value"),
                                        given_input.get("cut", 0)), workdir, fuzz_tally,
                                 "regressions")
    elif target == "cli":
        log = workdir / "regression-show.jsonl"
        log.write_text("\n".join(clean_log) + "\n")
        argv = [str(log) if a == "{log}" else a for a in given_input["argv"]]
        result = check_cli(argv, workdir, given_input.get("names", ["--"]), fuzz_tally,
                           "regressions")
    else:
        raise AssertionError(f"unknown regression target {target!r}")
    assert result == case["expect"], case


# ---- your own arrays: dendrax.data.from_arrays (issue 29) ----------------------------------------

FROM_ARRAYS_ARGS = ["x_train", "y_train", "x_test", "y_test", "name", "image_shape",
                    "class_names", "validation_fraction", "subset_size", "seed", "normalise"]
FEATURE_DTYPES = ["float32", "float64", "float16", "longdouble", "int8", "uint8", "int32",
                  "int64", "uint64", "bool", "complex64", "object", "U3", "datetime64[s]"]
FEATURE_VALUES = ["normal", "pixels", "huge", "1e39", "tiny", "nan", "inf", "zeros",
                  "negative", "constant"]
LABEL_KINDS = ["classes", "classes", "one_class", "negative", "float", "fractional", "huge",
               "int64_max", "uint64_max", "1e20", "nan", "inf", "bool", "object", "text",
               "gapped", "column", "two_columns", "scalar"]
# Feature shapes after the example count: flat, grey images, colour images, and odd ones.
FEATURE_SHAPES = st.sampled_from([(4,), (1,), (6,), (2, 3), (2, 2, 3), (0,), (2, 0), (),
                                  (1, 1, 1, 2), (3, 1)])


def _features(n: int, rest: tuple, dtype: str, values: str, seed: int):
    """An (n, *rest) array of ``dtype`` holding ``values`` (NaN, huge, pixels...)."""
    rng = np.random.default_rng(seed)
    shape = (n, *rest)
    base = {"normal": lambda: rng.normal(size=shape),
            "pixels": lambda: rng.integers(0, 256, shape).astype(float),
            "huge": lambda: rng.normal(size=shape) * 1e300,
            "1e39": lambda: rng.normal(size=shape) * 1e39,
            "tiny": lambda: rng.normal(size=shape) * 5e-324,
            "nan": lambda: np.where(rng.random(shape) < 0.3, np.nan, rng.normal(size=shape)),
            "inf": lambda: np.where(rng.random(shape) < 0.3, np.inf, rng.normal(size=shape)),
            "zeros": lambda: np.zeros(shape),
            "negative": lambda: -rng.integers(1, 300, shape).astype(float),
            "constant": lambda: np.full(shape, 7.0)}[values]()
    if dtype == "datetime64[s]":
        return np.zeros(shape, dtype)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return base.astype(dtype)


def _labels(n: int, kind: str, n_classes: int, seed: int):
    """n labels of one ``kind``: valid classes 0..K-1 (each present), or a hostile set."""
    rng = np.random.default_rng(seed)
    classes = np.arange(n) % n_classes
    rng.shuffle(classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"classes": lambda: classes,
                "one_class": lambda: np.zeros(n, np.int64),
                "negative": lambda: classes - 1,
                "float": lambda: classes.astype(np.float64),
                "fractional": lambda: classes + 0.5,
                "huge": lambda: np.where(classes == 0, 2**40, classes),
                "int64_max": lambda: np.where(classes == 0, np.iinfo(np.int64).max, classes),
                "uint64_max": lambda: np.where(classes == 0, np.iinfo(np.uint64).max,
                                               classes).astype(np.uint64),
                "1e20": lambda: np.where(classes == 0, 1e20, classes),
                "nan": lambda: np.where(classes == 0, np.nan, classes),
                "inf": lambda: np.where(classes == 0, np.inf, classes),
                "bool": lambda: classes.astype(bool),
                "object": lambda: classes.astype(object),
                "text": lambda: classes.astype(str),
                "gapped": lambda: np.array([0, 5, 100])[classes % 3],
                "column": lambda: classes[:, None],
                "two_columns": lambda: np.stack([classes, classes], 1),
                "scalar": lambda: np.int64(1)}[kind]()


VALID_FEATURE_SHAPES = [(4,), (6,), (2, 3), (2, 2, 3), (3, 3)]
# A few hostile values of each keyword argument, besides the file's HOSTILE ones.
HOSTILE_KWARGS = {
    "name": st.one_of(HOSTILE, st.sampled_from(["", None, 3, b"bytes"])),
    "image_shape": st.one_of(HOSTILE, st.tuples(INTS, INTS, INTS),
                             st.tuples(FLOATS, PLAUSIBLE, PLAUSIBLE),
                             st.lists(st.sampled_from([1, 2, 3, 4, -1, -4, 0]), max_size=4)),
    "class_names": st.one_of(HOSTILE, st.lists(st.one_of(TEXT, SCALARS), max_size=6), TEXT),
    "validation_fraction": st.one_of(FLOATS, HOSTILE, st.sampled_from([0.0, 1e-6, 0.999])),
    "subset_size": st.one_of(INTS, HOSTILE),
    "seed": st.one_of(INTS, HOSTILE),
    "normalise": st.one_of(HOSTILE, st.sampled_from(["Pixels", "standardize", None, 2]))}
ARRAY_DEFECTS = ["dtype", "values", "shape", "test_shape", "y_train", "y_test", "y_length",
                 "replaced", "few_train", "no_test"]


@st.composite
def from_arrays_inputs(draw):
    """(arrays, kwargs) for from_arrays: a valid call (a few classes, each present, small
    arrays of a usual dtype) with none, one or a few defects: a hostile dtype (bool,
    complex, object, text, dates), values (NaN, inf, 1e39, 1e300, subnormals), shape,
    labels (negative, fractional, huge, NaN, text, gapped, 2-D, a scalar), lengths that
    disagree, arrays replaced by lists, ragged lists, masked arrays or any hostile value,
    and hostile keyword arguments."""
    seed = draw(st.integers(0, 2**16))
    n_defects = draw(st.sampled_from([0, 0, 0, 1, 1, 1, 2, 2, 3]))
    defects = set(draw(st.lists(st.sampled_from(ARRAY_DEFECTS + list(HOSTILE_KWARGS)),
                                min_size=n_defects, max_size=n_defects, unique=True)))
    n_classes = draw(st.integers(2, 4))
    n_train = draw(st.integers(0, 3) if "few_train" in defects else st.integers(12, 40))
    n_test = 0 if "no_test" in defects else draw(st.integers(1, 8))
    rest = draw(FEATURE_SHAPES if "shape" in defects else st.sampled_from(VALID_FEATURE_SHAPES))
    test_rest = draw(FEATURE_SHAPES) if "test_shape" in defects else rest
    dtype = draw(st.sampled_from(FEATURE_DTYPES if "dtype" in defects else
                                 ["float32", "float64", "float16", "uint8", "int8", "int64"]))
    values = draw(st.sampled_from(FEATURE_VALUES if "values" in defects else
                                  ["normal", "pixels", "huge", "tiny", "zeros", "negative",
                                   "constant"]))
    y_train_kind = draw(st.sampled_from(LABEL_KINDS)) if "y_train" in defects else "classes"
    y_test_kind = draw(st.sampled_from(LABEL_KINDS)) if "y_test" in defects else "classes"
    extra = draw(st.sampled_from([-1, 1, 5])) if "y_length" in defects else 0
    arrays = {"x_train": _features(n_train, rest, dtype, values, seed),
              "y_train": _labels(n_train + extra, y_train_kind, n_classes, seed),
              "x_test": _features(n_test, test_rest, dtype, values, seed + 1),
              "y_test": _labels(n_test, y_test_kind, n_classes, seed + 1)}
    if "replaced" in defects:
        name = draw(st.sampled_from(list(arrays)))
        arrays[name] = draw(st.one_of(
            HOSTILE, st.just(np.asarray(arrays[name]).tolist()),  # nested lists: fine
            st.just([[1.0, 2.0], [3.0]]),  # ragged
            st.just(np.ma.masked_array(np.asarray(arrays[name]), mask=True))))
    kwargs = draw(st.fixed_dictionaries({}, optional={
        "name": st.sampled_from(["custom", "easy-task", "ä"]),
        "class_names": st.sampled_from([None, tuple("abcd"), ["x"] * 6,
                                        np.array(["p", "q", "r", "s"])]),
        "validation_fraction": st.sampled_from([0.1, 0.25, 0.5, None]),
        "subset_size": st.sampled_from([None, 4, 10, 10**9]),
        "seed": st.sampled_from([0, 3, 2**40]),
        "normalise": st.sampled_from(["auto", "pixels", "standardise", "none", True, False])}))
    if draw(st.booleans()):  # the right image_shape, spelled as a tuple or a list
        example = arrays["x_train"].shape[1:] if isinstance(arrays["x_train"], np.ndarray) \
            else (1,)
        size = math.prod(example)
        kwargs["image_shape"] = draw(st.sampled_from([(1, size, 1), [size, 1, 1]]))
    for name in defects & set(HOSTILE_KWARGS):
        kwargs[name] = draw(HOSTILE_KWARGS[name])
    return arrays, kwargs


def check_valid_dataset(dataset, kwargs) -> None:
    """What from_arrays returned is a Dataset a search can use as it is."""
    from dendrax.data import Dataset

    assert isinstance(dataset, Dataset), type(dataset)
    assert isinstance(dataset.name, str) and dataset.name
    assert dataset.in_dim >= 1 and len(dataset.image_shape) == 3
    assert all(isinstance(d, int) and d >= 1 for d in dataset.image_shape)
    assert math.prod(dataset.image_shape) == dataset.in_dim
    assert all(isinstance(c, str) for c in dataset.class_names)
    assert dataset.n_classes >= 2 and dataset.n_train >= 1 and dataset.n_test >= 1
    if kwargs.get("validation_fraction", 0.1) is not None:
        assert dataset.n_val >= 1
    for part in ("train", "val", "test"):
        x, y = getattr(dataset, f"x_{part}"), getattr(dataset, f"y_{part}")
        assert x.dtype == np.float32 and np.isfinite(x).all(), part
        assert y.dtype == np.int32 and (y.size == 0 or (0 <= y.min() and
                                                        y.max() < dataset.n_classes)), part
        assert not x.flags.writeable and not y.flags.writeable


def check_from_arrays(arrays, kwargs, tally, target="from_arrays"):
    from dendrax.data import from_arrays

    def action():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's casts of NaN
            dataset = from_arrays(**arrays, **kwargs)
        check_valid_dataset(dataset, kwargs)

    return outcome(action, FROM_ARRAYS_ARGS, tally, target)


@FUZZ
@given(inputs=from_arrays_inputs())
def test_fuzz_from_arrays(fuzz_tally, inputs):
    """Hostile arrays (dtypes, shapes, NaN and infinities, huge and tiny values, empty and
    object arrays, labels negative, fractional, huge or of other lengths) and hostile
    keyword arguments: from_arrays returns a Dataset a search can use, or raises a
    DendraxError (DataError, ConfigError) naming an argument, within a second."""
    arrays, kwargs = inputs
    check_from_arrays(arrays, kwargs, fuzz_tally)
