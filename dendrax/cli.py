"""The ``dendrax`` command (also ``python -m dendrax``).

    dendrax quickstart                 a quick budget search on real Fashion-MNIST
    dendrax search SPEC.json           a search described by a JSON/YAML file
    dendrax show LOG.jsonl             the results table of a search log, no training
    dendrax plot LOG.jsonl --out DIR   its figures as PNG/PDF/SVG files (needs matplotlib)
    dendrax estimate --n-neurons 12 --n-dendrites 6 --n-dendrite-inputs 96
    dendrax scenario budget            one of the ready-made scenarios (dendrax.examples)
    dendrax robustness SPEC.json       a robustness study: seeds, variance, paired comparisons

Bad input (a config, the spec, the log, the budget, a data file: any DendraxError) prints one
error line and exits 2, with no traceback unless ``dendrax --debug``; a dataset that cannot
be found also lists where it was looked for and how to get it. Any other exception is a bug
and keeps its traceback.
Training turns on JAX's persistent compilation cache (dendrax.population.compile_cache), so
reruns skip most of the compile time; ``estimate``, ``show`` and ``plot`` never import JAX.
The commands parse and print; what they run lives in the library (the searcher, the search
record, the scenarios of dendrax.examples).
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import errno
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

from dendrax.spec import ARCHITECTURES, PADDINGS
from dendrax.errors import ConfigError, DendraxError
from dendrax.search import HyperparameterSearcher
from dendrax.search.callbacks import CallbackExit, load_callback
from dendrax.search.interrupts import Terminated, signal_name, signals_as_interrupts
from dendrax.search.record import SearchRecord, read_search
from dendrax.search.results import (RANK_BY, OutputError, check_output, prepare_folder,
                                    same_file)

SCENARIOS = ("quick", "budget", "compare", "thorough", "pareto")
# Each scenario's default dataset: the original's (quick used MNIST).
SCENARIO_DATASETS = {"quick": "mnist", "budget": "fashion-mnist", "compare": "fashion-mnist",
                     "thorough": "fashion-mnist", "pareto": "fashion-mnist"}

_SPEC_EXCLUDED = {"self", "verbose", "data", "trainer", "callbacks"}
_SPEC_SEARCH_KEYS = {"grid", "max_trials", "distributions", "n_trials", "fill_budget"}
# Population-based training ("strategy": "pbt") and the replay of its schedule ("schedule").
_PBT_KEYS = ("population_size", "ready_every", "burn_in", "quantile", "perturb",
             "resample_probability", "mutate")
_SPEC_SEARCH_KEYS |= {"strategy", "schedule", "seeds", *_PBT_KEYS}


class UsageError(ConfigError):
    """A command-line or spec-file problem."""


# ---- dendrax search -------------------------------------------------------------------

def load_spec(path: str) -> dict[str, Any]:
    """Read a search spec: JSON, or YAML (.yaml/.yml, needs pyyaml)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read spec {path!r}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text (byte {e.start} is 0x{e.object[e.start]:02x}); "
                         f"a spec is a JSON or YAML text file") from None
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise UsageError(f"{path}: YAML specs need pyyaml (pip install 'dendrax[yaml]'), "
                             f"or write the spec as JSON") from None
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise UsageError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
        except ValueError as e:  # an integer of over 4,300 digits
            raise UsageError(f"{path}: {e.args[0].split(';')[0]}") from None
    else:
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"{path}: not valid JSON: {e.msg} at line {e.lineno}, "
                             f"column {e.colno}") from None
        except ValueError as e:  # Python refuses integers of over 4,300 digits
            raise UsageError(f"{path}: {e.args[0].split(';')[0]}; no setting needs a "
                             f"number that long") from None
    if not isinstance(spec, dict):
        raise UsageError(f"{path}: a spec must be a mapping of settings, got "
                         f"{type(spec).__name__}")
    return spec


def searcher_options() -> list[str]:
    """Constructor arguments a spec may set (all but verbose, data and trainer)."""
    names = inspect.signature(HyperparameterSearcher).parameters
    return [n for n in names if n not in _SPEC_EXCLUDED]


def check_spec_keys(spec: dict[str, Any], where: str, known: Sequence[str]) -> None:
    """Every key of ``spec`` is a string among ``known``; else a UsageError naming the
    closest known key (or listing them all)."""
    for key in spec:
        if not isinstance(key, str):
            raise UsageError(f"{where}: setting names must be strings, got {key!r}")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(known)}"
            raise UsageError(f"{where}: unknown key {key!r}; {hint}")


def split_spec(spec: dict[str, Any], where: str = "spec") -> tuple[dict, str, dict, dict]:
    """(constructor arguments, "grid" or "random", space, search call arguments)."""
    allowed = searcher_options()
    check_spec_keys(spec, where, [*allowed, *sorted(_SPEC_SEARCH_KEYS)])
    pbt = _split_pbt(spec, where)
    if pbt is not None:
        return pbt
    has_grid, has_dist = "grid" in spec, "distributions" in spec
    if has_grid == has_dist:
        raise UsageError(f"{where}: give exactly one of 'grid' (a grid search, optional "
                         f"'max_trials') or 'distributions' (a random search, 'n_trials')")
    if has_grid and "n_trials" in spec:
        raise UsageError(f"{where}: 'n_trials' belongs to 'distributions'; a grid takes "
                         f"'max_trials'")
    if has_grid and "fill_budget" in spec:
        raise UsageError(f"{where}: 'fill_budget' belongs to 'distributions' (a grid keeps "
                         f"the combinations that fit)")
    if has_dist and "max_trials" in spec:
        raise UsageError(f"{where}: 'max_trials' belongs to 'grid'; distributions take "
                         f"'n_trials'")
    options = {k: v for k, v in spec.items() if k not in _SPEC_SEARCH_KEYS}
    if has_grid:
        return options, "grid", spec["grid"], {"max_trials": spec.get("max_trials")}
    space = {name: _range_tuple(value) for name, value in (spec["distributions"] or {}).items()} \
        if isinstance(spec["distributions"], dict) else spec["distributions"]
    return options, "random", space, {"n_trials": spec.get("n_trials", 50),
                                      "fill_budget": bool(spec.get("fill_budget", False))}


def _split_pbt(spec: dict[str, Any], where: str) -> tuple | None:
    """split_spec for "strategy": "pbt" (distributions and the PBT keys) and for a
    "schedule" replay (with "seeds"); None for the other searches."""
    options = {k: v for k, v in spec.items() if k not in _SPEC_SEARCH_KEYS}
    strategy = spec.get("strategy")
    if "schedule" in spec:
        extra = sorted(set(spec) & (_SPEC_SEARCH_KEYS - {"schedule", "seeds"}))
        if extra:
            raise UsageError(f"{where}: 'schedule' replays a PBT schedule and takes 'seeds' "
                             f"only, not {', '.join(map(repr, extra))}")
        seeds = spec.get("seeds", [0, 1, 2])
        if not isinstance(seeds, list) or not seeds or not all(
                isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise UsageError(f"{where}: 'seeds' must be a non-empty list of integers")
        return options, "replay", spec["schedule"], {"seeds": seeds}
    if strategy is None:
        extra = sorted(set(spec) & {*_PBT_KEYS, "seeds"})
        if extra:
            raise UsageError(f"{where}: {', '.join(map(repr, extra))} belong to "
                             f"\"strategy\": \"pbt\" (or 'seeds' to 'schedule')")
        return None
    if strategy != "pbt":
        raise UsageError(f"{where}: strategy={strategy!r}; the only strategy key is \"pbt\" "
                         f"(grid and random searches are chosen by 'grid' or 'distributions')")
    if not isinstance(spec.get("distributions"), dict) or "grid" in spec:
        raise UsageError(f"{where}: \"strategy\": \"pbt\" needs 'distributions' (the space "
                         f"its population is drawn from) and no 'grid'")
    wrong = sorted(set(spec) & {"max_trials", "n_trials", "fill_budget", "seeds"})
    if wrong:
        raise UsageError(f"{where}: {', '.join(map(repr, wrong))} do not apply to "
                         f"\"strategy\": \"pbt\" (it takes 'population_size')")
    if "population_size" not in spec:
        raise UsageError(f"{where}: \"strategy\": \"pbt\" needs 'population_size'")
    space = {name: _range_tuple(value) for name, value in spec["distributions"].items()}
    call = {k: spec[k] for k in _PBT_KEYS if k in spec}
    if "perturb" in call and isinstance(call["perturb"], list):
        call["perturb"] = tuple(call["perturb"])
    return options, "pbt", space, call


def _range_tuple(value: Any) -> Any:
    """JSON has no tuples: {"range": [low, high]} stands for the original's (low, high)."""
    if isinstance(value, dict) and set(value) == {"range"}:
        bounds = value["range"]
        if isinstance(bounds, list) and len(bounds) == 2:
            return tuple(bounds)
    return value


def _check_top(top: int) -> None:
    if top < 1:
        raise UsageError(f"--top {top}: must be at least 1")


def check_search_outputs(args: argparse.Namespace, log: str | None) -> None:
    """--out, --report and the log, checked before anything trains: each output must be
    writable (a folder that exists, not a directory) and must not be an input of the same
    command, nor the other output (resolved paths are compared); else an OutputError."""
    if isinstance(log, str) and log and same_file(log, args.spec):
        raise UsageError(f"--log {log!r} is the spec {args.spec!r}; the log is a file of its "
                         f"own: choose another --log")
    inputs = {"the spec": args.spec, "the log (--log)": log if isinstance(log, str) else None}
    if args.out is not None:
        check_output(args.out, "--out", inputs)
    if args.report is not None:
        check_output(args.report, "--report", {**inputs, "--out": args.out})


def _save_outputs(args: argparse.Namespace, searcher: HyperparameterSearcher,
                  log: str | None) -> None:
    """Write --out and --report (atomically, see write_atomic); a failure (a full disk)
    says where the trained models still are."""
    for path, method, label in ((args.out, "save_results", "Results"),
                                (args.report, "save_report", "Report")):
        if path is None:
            continue
        try:
            getattr(searcher, method)(path)
        except OutputError as error:
            if not log:
                raise
            raise OutputError(f"{error}; every trained model is in the log {log!r} "
                              f"(dendrax show {log})") from None
        if args.quiet:
            print(f"{label} saved to {path}")


def cmd_search(args: argparse.Namespace) -> int:
    _check_top(args.top)
    spec = load_spec(args.spec)
    options, strategy, space, call = split_spec(spec, where=args.spec)
    check_search_outputs(args, args.log if args.log is not None else options.get("log_path"))
    if args.log is not None:
        options["log_path"] = args.log
    if args.resume:
        options["resume"] = True
    if args.padding is not None:
        options["padding"] = args.padding
    if args.halving is not None:
        options["halving_eta"] = args.halving
        options["halving_min_epochs"] = args.halving_min_epochs
    if args.executor is not None:
        options["executor"] = args.executor
    if args.address is not None:
        options["ray_address"] = args.address
    if args.callback:
        options["callbacks"] = [load_callback(spec) for spec in args.callback]
    log = options.get("log_path")
    if log and not options.get("resume") and os.path.isfile(log) and os.path.getsize(log):
        raise UsageError(f"the log {log!r} already holds a search: add --resume to continue "
                         f"it, or choose another --log")
    searcher = HyperparameterSearcher(verbose=not args.quiet, **options)
    if strategy == "grid":
        searcher.grid_search(space, **call)
    elif strategy == "pbt":
        searcher.population_based_training(space, **call)
        if searcher.lineage is not None and not args.quiet:
            from dendrax.search.pbt import format_lineage
            print(format_lineage(searcher.lineage))
    elif strategy == "replay":
        searcher.replay(space, **call)
    else:
        searcher.random_search(space, **call)
    searcher.print_results(args.top)
    _save_outputs(args, searcher, log)
    return 0


# ---- dendrax robustness -----------------------------------------------------------------

_STUDY_KEYS = ("configs", "design", "n_seeds", "levels")


def cmd_robustness(args: argparse.Namespace) -> int:
    """A robustness study (HyperparameterSearcher.robustness): the spec holds the
    searcher's settings plus "configs", "design", "n_seeds" and "levels"."""
    spec = load_spec(args.spec)
    allowed = searcher_options()
    check_spec_keys(spec, args.spec, [*allowed, *_STUDY_KEYS])
    if "configs" not in spec:
        raise UsageError(f"{args.spec}: a robustness spec needs 'configs': a list of "
                         f"configurations (or a mapping name -> configuration)")
    options = {k: v for k, v in spec.items() if k not in _STUDY_KEYS}
    if args.log is not None:
        options["log_path"] = args.log
    if args.resume:
        options["resume"] = True
    log = options.get("log_path")
    if log and not options.get("resume") and os.path.isfile(log) and os.path.getsize(log):
        raise UsageError(f"the log {log!r} already holds a search: add --resume to continue "
                         f"it, or choose another --log")
    try:  # the output folder must take files before anything trains
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {args.out!r}: cannot create it ({e.strerror or e})") from None
    if not os.access(args.out, os.W_OK | os.X_OK):
        raise UsageError(f"--out {args.out!r}: the folder is not writable")
    searcher = HyperparameterSearcher(verbose=not args.quiet, **options)
    report = searcher.robustness(spec["configs"], n_seeds=spec.get("n_seeds"),
                                 design=spec.get("design", "replicate"),
                                 levels=spec.get("levels"))
    print(report.format())
    path = report.save(os.path.join(args.out, "robustness.json"))
    print(f"Report saved to {path}")
    from dendrax.robustness_plots import plot_report  # matplotlib only when drawing

    try:
        for figure in plot_report(report, args.out, args.format):
            print(figure)
    except ImportError as error:  # no matplotlib: the report is saved; say how to draw
        raise UsageError(f"{error} (the report is saved in {path})") from None
    return 0


# ---- dendrax show ---------------------------------------------------------------------

def cmd_show(args: argparse.Namespace) -> int:
    from dendrax.search import table

    _check_top(args.top)
    if args.lineage or args.schedule_out:
        return _show_lineage(args)
    exporting = any(target is not None for target in
                    (args.to_optuna, args.to_tensorboard, args.to_mlflow))
    if exporting:
        _check_export_targets(args)  # before the log is read: a bad target costs nothing
    record = read_search(args.log, args.rank_by)
    if exporting:
        return _export(args, record)
    if args.format != "summary" or args.per_seed or args.sort or args.filter:
        fmt = "table" if args.format == "summary" else args.format
        rows = table.result_rows(record.results, per_seed=args.per_seed,
                                 rank_by=record.rank_by)
        rows = table.filter_rows(rows, args.filter or [])
        if args.sort:
            rows = table.sort_rows(rows, args.sort)
        print(table.render(rows, fmt))
        return 0
    settings = record.settings
    print(f"{args.log}: {record.n_models} models, {len(record.results)} configurations, "
          f"{len(record.calls)} search call(s); dataset {settings.get('dataset', '?')}, "
          f"{settings.get('n_epochs', '?')} epochs")
    if record.torn_line is not None:
        print("(the last line was cut short by an interrupted run and is ignored)")
    print(table.format_results(record, args.top))
    return 0


def _check_export_targets(args: argparse.Namespace) -> None:
    """Check every --to-* target (extra installed, URL well formed, server reachable,
    folder writable and free of an earlier export, not the log itself) without writing;
    raises the exporters' ExportError, naming the option."""
    from dendrax import export

    if args.to_optuna is not None:
        export.check_storage(args.to_optuna, "--to-optuna", avoid=[args.log])
    if args.to_tensorboard is not None:
        export.check_logdir(args.to_tensorboard, "--to-tensorboard", avoid=[args.log])
    if args.to_mlflow is not None:
        export.check_tracking_uri(args.to_mlflow, "--to-mlflow", avoid=[args.log])


def _show_lineage(args: argparse.Namespace) -> int:
    """dendrax show LOG --lineage [--schedule-out FILE]: the best PBT member's ancestry
    and hyperparameter schedule, from the log alone."""
    from dendrax.search.pbt import format_lineage, read_lineage, save_schedule

    lineage, score = read_lineage(args.log)
    print(format_lineage(lineage, score))
    if args.schedule_out:
        try:
            save_schedule(args.schedule_out, lineage)
        except OSError as e:
            raise UsageError(f"cannot write the schedule {args.schedule_out!r}: "
                             f"{e.strerror or e}") from None
        print(f"Schedule saved to {args.schedule_out} (replay it with a spec "
              f"{{\"schedule\": {json.dumps(args.schedule_out)}, \"seeds\": [...]}})")
    return 0


def _export(args: argparse.Namespace, record: SearchRecord) -> int:
    """dendrax show LOG --to-optuna URL / --to-tensorboard DIR / --to-mlflow URI."""
    from dendrax import export
    from dendrax.export.mlflow_runs import local_store

    if args.to_optuna is not None:
        study = export.to_optuna(record, args.to_optuna, args.study_name)
        print(f"Optuna: {len(record.results)} trials in study {study.study_name!r} at "
              f"{args.to_optuna} (optuna-dashboard {args.to_optuna})")
    if args.to_tensorboard is not None:
        runs = export.to_tensorboard(record, args.to_tensorboard)
        print(f"TensorBoard: {len(runs)} runs in {args.to_tensorboard} "
              f"(tensorboard --logdir {args.to_tensorboard})")
    if args.to_mlflow is not None:
        run_id = export.to_mlflow(record, args.to_mlflow, experiment=args.experiment)
        ui = (f"mlflow ui --backend-store-uri {args.to_mlflow}"
              if local_store(args.to_mlflow) is None else
              f"MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {args.to_mlflow}")
        print(f"MLflow: parent run {run_id} with {len(record.results)} nested runs at "
              f"{args.to_mlflow} ({ui})")
    return 0


# ---- dendrax plot ---------------------------------------------------------------------

def cmd_plot(args: argparse.Namespace) -> int:
    _check_top(args.top)
    from dendrax.plots import plot_search  # matplotlib only when drawing

    record = read_search(args.log, args.rank_by)
    prepare_folder(args.out, "--out")  # a file there, say: one line before anything is drawn
    try:
        paths = plot_search(record, args.out, top=args.top, metric=args.metric,
                            fmt=args.format, caption=not args.no_caption)
        if any(call.get("strategy") == "pbt" for call in record.calls):
            from dendrax.pbt_plots import plot_pbt  # the schedules and the family tree

            paths.update(plot_pbt(args.log, args.out, fmt=args.format))
    except ImportError as error:  # no matplotlib: say how to get it, in one line
        raise UsageError(str(error)) from None
    for path in paths.values():
        print(path)
    return 0


# ---- dendrax estimate -------------------------------------------------------------------

def cmd_estimate(args: argparse.Namespace) -> int:
    total = HyperparameterSearcher.estimate_params(
        in_dim=args.in_dim, n_neurons=args.n_neurons, n_dendrites=args.n_dendrites,
        n_dendrite_inputs=args.n_dendrite_inputs, soma_enabled=args.soma,
        n_classes=args.n_classes, architecture=args.architecture, hidden_dim=args.hidden_dim,
        strategy=args.strategy)
    print(total)
    return 0


# ---- dendrax scenario -------------------------------------------------------------------

def cmd_scenario(args: argparse.Namespace) -> int:
    from dendrax import examples

    options: dict[str, Any] = {"verbose": not args.quiet}
    for name in ("n_epochs", "subset_size", "seeds_per_config", "data_dir", "log_path",
                 "padding"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.resume:
        if args.log_path is None:
            raise UsageError("--resume continues the scenario's --log; give --log too")
        options["resume"] = True
    if args.callback:
        options["callbacks"] = [load_callback(spec) for spec in args.callback]
    budget = {} if args.max_params is None else (
        {"max_budget": args.max_params} if args.name == "pareto"
        else {"max_params": args.max_params})
    if args.dataset is not None:
        budget["dataset"] = args.dataset
    if args.n_trials is not None:
        if args.name in ("quick", "compare"):
            raise UsageError(f"scenario {args.name!r} searches a fixed grid; --n-trials "
                             f"applies to budget, thorough and pareto")
        budget["n_trials"] = args.n_trials
    run = {"quick": examples.quick_prototype_search, "budget": examples.optimize_for_budget,
           "compare": examples.compare_architectures,
           "thorough": examples.thorough_optimization,
           "pareto": examples.find_pareto_optimal}[args.name]
    from dendrax.data import DataError
    from dendrax.search.log import LogError

    try:
        run(**budget, **options)
    except LogError as error:
        if args.resume or "resume=True" not in str(error):
            raise
        raise UsageError(f"{error}".split(";")[0] + ": add --resume to continue it, or "
                         "choose another --log") from None
    except DataError as error:
        dataset = args.dataset or SCENARIO_DATASETS[args.name]
        if dataset == "fashion-mnist":
            raise
        raise DataError(f"{error}\n\nTo run this scenario on Fashion-MNIST instead (the "
                        f"embedded sample needs no download): dendrax scenario {args.name} "
                        f"--dataset fashion-mnist") from None
    return 0


# ---- dendrax quickstart -----------------------------------------------------------------

def cmd_quickstart(args: argparse.Namespace) -> int:
    from dendrax import examples

    examples.quickstart(verbose=not args.quiet)
    return 0


# ---- argument parsing -------------------------------------------------------------------

SPEC_HELP = """\
A spec holds HyperparameterSearcher arguments plus exactly one search:
  {"dataset": "fashion-mnist", "max_params": 8000, "n_epochs": 15, "seeds_per_config": 2,
   "grid": {"n_neurons": [8, 10, 12], "n_dendrites": [4, 6, 8],
            "n_dendrite_inputs": [64, 96, 128]},
   "max_trials": 20}
or "distributions": {...} with "n_trials". In distributions a list is a choice, and an
integer range (the original's tuple) is {"range": [8, 15]} or
{"type": "randint", "low": 8, "high": 15}; also {"type": "uniform"|"loguniform", ...}.
"""


CALLBACK_HELP = ("a callback importable as MODULE:NAME: a class or object with on_epoch(bucket, "
                 "epoch, members) and/or on_result(result), or a function called with each "
                 "result (repeatable; see dendrax.search.callbacks)")


def build_parser() -> argparse.ArgumentParser:
    # The flags several commands share, declared once (argparse "parents").
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--quiet", action="store_true", help="no progress output")
    output.add_argument("--verbose", action="store_true",
                        help="keep the start-up warnings of absl, TensorFlow, JAX and Ray")
    callbacks = argparse.ArgumentParser(add_help=False)
    callbacks.add_argument("--callback", action="append", metavar="MODULE:NAME",
                           help=CALLBACK_HELP)
    padding_help = ("bucket plan: auto (the default: merges shape buckets while that lowers "
                    "the estimated compile plus run time), exact (identical shapes only), "
                    "padded (a few size levels chosen for this sweep) or pow2")

    parser = argparse.ArgumentParser(
        prog="dendrax", description="Population-parallel hyperparameter search for "
        "dendritic neural networks.")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of dendrax errors too (they print one line)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("search", help="run a search described by a JSON/YAML spec",
                       description="Run a search described by a spec file.", epilog=SPEC_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       parents=[output, callbacks])
    p.add_argument("spec", help="JSON or YAML (.yaml/.yml, needs pyyaml) spec file")
    p.add_argument("--log", metavar="PATH", help="JSONL log of every finished model")
    p.add_argument("--resume", action="store_true",
                   help="continue the search in --log, training only what is missing")
    p.add_argument("--out", metavar="PATH", help="write every result as JSON, the original's "
                   "list of records (save_results)")
    p.add_argument("--report", metavar="PATH", help="write settings, budget, results and "
                   "rejected configs as one JSON document (save_report)")
    p.add_argument("--top", type=int, default=5, metavar="N", help="rows to print (5)")
    p.add_argument("--padding", choices=PADDINGS,
                   help=padding_help + "; overrides the spec's 'padding'")
    p.add_argument("--halving", type=int, metavar="ETA",
                   help="successive halving: keep the best 1/ETA of the models at each rung "
                   "(after --halving-min-epochs epochs, then ETA× as many, ...)")
    p.add_argument("--halving-min-epochs", type=int, default=1, metavar="R",
                   help="epochs before the first halving (1)")
    p.add_argument("--executor", choices=("local", "ray"),
                   help="where buckets train: this process (local, the default) or as tasks "
                   "on a Ray cluster (ray; needs 'dendrax[ray]', see docs/cluster.md)")
    p.add_argument("--address", metavar="ADDR",
                   help="Ray cluster address for --executor ray (default: a local Ray "
                   "instance, or $RAY_ADDRESS)")
    p.set_defaults(run=cmd_search)

    p = sub.add_parser("robustness", help="a robustness study: seeds, variance components, "
                       "paired comparisons (dendrax.robustness)",
                       description="Train a robustness study described by a spec file: the "
                       "searcher's settings plus 'configs', 'design' (replicate, paired or "
                       "factorial), 'n_seeds' and 'levels' (factorial: seeds per stream, "
                       "e.g. {\"init\": 4, \"order\": 4, \"rewire\": 4}). Prints the "
                       "tables (test accuracy; choices use validation), saves "
                       "robustness.json and the figures in --out.",
                       parents=[output])
    p.add_argument("spec", help="JSON or YAML (.yaml/.yml, needs pyyaml) spec file")
    p.add_argument("--log", metavar="PATH", help="JSONL log of every finished run")
    p.add_argument("--resume", action="store_true",
                   help="continue the study in --log, training only the runs it lacks")
    p.add_argument("--out", metavar="DIR", default="robustness",
                   help="folder for robustness.json and the figures (./robustness)")
    p.add_argument("--format", choices=("png", "pdf", "svg"), default="png",
                   help="figure format (png)")
    p.set_defaults(run=cmd_robustness)

    p = sub.add_parser("show", help="print the results table of a search log",
                       description="Print the results of a JSONL search log without "
                       "training.")
    p.add_argument("log", help="the JSONL log a search wrote (--log / log_path)")
    p.add_argument("--top", type=int, default=10, metavar="N",
                   help="rows of the summary to print (10)")
    p.add_argument("--format", choices=("summary", "table", "csv", "json", "markdown"),
                   default="summary",
                   help="summary: the ranked top N (default); table, csv, json, markdown: "
                   "one flat row per configuration with every column (see "
                   "dendrax.search.table)")
    p.add_argument("--per-seed", action="store_true",
                   help="one row per (configuration, seed) instead of per configuration")
    p.add_argument("--sort", metavar="COLUMN[:desc]",
                   help="order the rows by a column (ascending; COLUMN:desc descending)")
    p.add_argument("--filter", action="append", metavar="KEY=VALUE",
                   help="keep rows whose column KEY equals VALUE (repeatable)")
    p.add_argument("--rank-by", choices=RANK_BY,
                   help="how configurations are ranked (default: as the search ranked them, "
                   "else val_mean)")
    p.add_argument("--to-optuna", metavar="STORAGE_URL",
                   help="write the search into a new Optuna study in a database, e.g. "
                   "sqlite:///search.db (not an in-memory one; needs 'dendrax[optuna]'; "
                   "view with optuna-dashboard)")
    p.add_argument("--study-name", help="name of that study (default: from the results)")
    p.add_argument("--to-tensorboard", metavar="DIR",
                   help="write one TensorBoard run per configuration, with HParams, into a "
                   "new folder, or one without TensorBoard runs yet: a second export into "
                   "the same folder is refused (needs 'dendrax[tensorboard]')")
    p.add_argument("--to-mlflow", metavar="TRACKING_URI",
                   help="log a parent MLflow run with one nested run per configuration, "
                   "e.g. sqlite:///mlflow.db, http://HOST:5000 (checked first) or a local "
                   "folder, file:///tmp/mlruns (needs 'dendrax[mlflow]')")
    p.add_argument("--experiment", default="dendrax", help="MLflow experiment (dendrax)")
    p.add_argument("--lineage", action="store_true",
                   help="population-based training: the best member's ancestry and its "
                   "hyperparameter schedule (epoch → values)")
    p.add_argument("--schedule-out", metavar="PATH",
                   help="with --lineage: write that schedule as JSON, for replay (a spec "
                   "with \"schedule\": PATH)")
    p.set_defaults(run=cmd_show)

    p = sub.add_parser("plot", help="draw the figures of a search log (PNG, PDF or SVG)",
                       description="Write accuracy against parameters (Pareto front "
                       "highlighted), training curves, rewiring swaps and seed robustness of "
                       "the top N, accuracy by hyperparameter value and successive halving, "
                       "as PNG, PDF or SVG files (needs matplotlib: "
                       "pip install 'dendrax[plot]'). No training, no JAX.")
    p.add_argument("log", help="the JSONL log a search wrote (--log / log_path)")
    p.add_argument("--out", default="plots", metavar="DIR",
                   help="folder for the figures, created if missing (plots)")
    p.add_argument("--top", type=int, default=5, metavar="N",
                   help="configurations in the training-curve and swap figures (5)")
    p.add_argument("--metric", choices=("val", "test"), default="val",
                   help="accuracy of the parameter and hyperparameter figures (val)")
    p.add_argument("--rank-by", choices=RANK_BY,
                   help="how the top N are chosen (default: as the search ranked them, else "
                   "val_mean)")
    p.add_argument("--format", choices=("png", "pdf", "svg"), default="png",
                   help="file format (png); pdf and svg are vector graphics for papers")
    p.add_argument("--no-caption", action="store_true",
                   help="leave out the caption line (dataset, epochs, subset, seeds)")
    p.set_defaults(run=cmd_plot)

    p = sub.add_parser("estimate", help="exact parameter count of one configuration",
                       description="Print the exact parameter count of a configuration.")
    p.add_argument("--architecture", default="dendritic_simple", choices=ARCHITECTURES)
    p.add_argument("--n-neurons", type=int, help="required unless --architecture mlp")
    p.add_argument("--n-dendrites", type=int, help="required unless --architecture mlp")
    p.add_argument("--n-dendrite-inputs", type=int, help="required unless --architecture mlp")
    p.add_argument("--soma", action=argparse.BooleanOptionalAction, default=True,
                   help="soma enabled (default: --soma)")
    p.add_argument("--hidden-dim", type=int,
                   help="dendritic_with_hidden (default n_neurons); mlp (required, 0 = linear)")
    p.add_argument("--strategy", default="random",
                   help="random, local-receptive-fields or fully-connected")
    p.add_argument("--in-dim", type=int, default=784, help="input features (784)")
    p.add_argument("--n-classes", type=int, default=10, help="classes (10)")
    p.set_defaults(run=cmd_estimate)

    p = sub.add_parser("scenario", help="run a ready-made scenario (dendrax.examples)",
                       parents=[output, callbacks],
                       description="Run one of the original toolkit's example scenarios: "
                       "quick (quick_prototype_search), budget (optimize_for_budget), "
                       "compare (compare_architectures), thorough (thorough_optimization), "
                       "pareto (find_pareto_optimal). Defaults are the original's.")
    p.add_argument("name", choices=SCENARIOS)
    p.add_argument("--max-params", type=int, help="parameter budget (pareto: the largest)")
    p.add_argument("--dataset", help="mnist, fashion-mnist or cifar10 (default: the "
                   "original's, MNIST for quick and Fashion-MNIST for the others)")
    p.add_argument("--n-epochs", type=int)
    p.add_argument("--subset-size", type=int, help="training examples to use")
    p.add_argument("--seeds-per-config", type=int)
    p.add_argument("--n-trials", type=int, help="random draws (budget, thorough, pareto)")
    p.add_argument("--padding", choices=PADDINGS, help=padding_help)
    p.add_argument("--data-dir", help="folder holding the dataset files")
    p.add_argument("--log", dest="log_path", metavar="PATH",
                   help="JSONL log (one per searcher for compare and pareto)")
    p.add_argument("--resume", action="store_true",
                   help="continue the scenario in --log, training only what is missing")
    p.set_defaults(run=cmd_scenario)

    p = sub.add_parser("quickstart", help="a quick budget search on Fashion-MNIST (minutes)",
                       parents=[output],
                       description="Search the original README's Quick Start grid within "
                       "8,000 parameters on real Fashion-MNIST: a few minutes on a laptop "
                       "CPU.")
    p.set_defaults(run=cmd_quickstart)
    return parser


def quiet_libraries() -> None:
    """Silence the start-up chatter of libraries dendrax uses (absl and TensorFlow through
    TFDS, JAX's backend probing, Ray): warnings below ERROR. ``--verbose`` keeps them."""
    import logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("absl", "jax._src.xla_bridge", "ray", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    absl = sys.modules.get("absl.logging")
    if absl is not None:
        absl.set_verbosity(absl.ERROR)


class _PipeSafeStdout:
    """sys.stdout for the command: when the reader of a pipe goes away (``| head``,
    ``| less`` then q), output is dropped instead of raising BrokenPipeError, so a search
    keeps training and logging, and ``show`` ends quietly. The file descriptor is pointed
    at /dev/null, so nothing buffered fails again at exit."""

    def __init__(self, stream: Any, on_break: Any = None):
        self._stream = stream
        self._on_break = on_break
        self.broken = False

    def _guard(self, action: str, *args: Any) -> Any:
        try:
            return getattr(self._stream, action)(*args)
        except OSError as error:
            if not isinstance(error, BrokenPipeError) and error.errno != errno.EPIPE:
                raise
            self._drop()
            return len(args[0]) if action == "write" and args else None

    def _drop(self) -> None:
        if not self.broken:
            self.broken = True
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._stream.fileno())
                os.close(devnull)
            except (OSError, ValueError, AttributeError):
                self._stream = open(os.devnull, "w")  # not a real file: drop into the void
            if self._on_break is not None:
                self._on_break()

    def write(self, text: str) -> int:
        return self._guard("write", text)

    def flush(self) -> None:
        self._guard("flush")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _interrupt_status(error: BaseException) -> int:
    """128 + the signal: 130 for Ctrl-C (or a callback's sys.exit), 143 SIGTERM, 129 SIGHUP."""
    return 128 + (error.signum if isinstance(error, Terminated) else signal.SIGINT)


def _second_interrupt(signum: int, frame: Any) -> None:
    """A Ctrl-C while the first one is being handled: leave at once."""
    try:
        sys.stderr.write("\ndendrax: interrupted again; quitting at once\n")
        sys.stderr.flush()
    finally:
        os._exit(128 + signum)


def _first_interrupt(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGINT, _second_interrupt)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dendrax`` console script; returns the exit status.

    Signals: Ctrl-C (SIGINT), SIGTERM and SIGHUP stop the command the same way: what
    finished stays in the log, one line says how to continue, and the status is 128 + the
    signal (130, 143, 129). A second Ctrl-C while the first is handled quits at once
    (status 130). Run as the command (``argv`` None), it leaves at once too if a program is
    still compiling on the compile thread, rather than waiting for it. A closed standard
    output (``| head``) is not an error: output is dropped, a search goes on."""
    args = build_parser().parse_args(argv)
    if not getattr(args, "verbose", False):
        quiet_libraries()
    searching = args.command in ("search", "scenario", "quickstart", "robustness")

    def note_break() -> None:
        if searching:
            print("dendrax: standard output was closed; the search goes on without printing"
                  + (" (finished models go to the log)" if _log_of(args) else ""),
                  file=sys.stderr, flush=True)

    stdout, sys.stdout = sys.stdout, _PipeSafeStdout(sys.stdout, note_break)
    in_main = threading_main()
    previous_sigint = signal.getsignal(signal.SIGINT) if in_main else None
    if in_main and previous_sigint is signal.default_int_handler:
        signal.signal(signal.SIGINT, _first_interrupt)
    try:
        with signals_as_interrupts():
            try:
                return args.run(args)
            except DendraxError as error:  # bad input: one line; anything else: traceback
                if args.debug:
                    traceback.print_exc()
                print(f"dendrax: error: {error}", file=sys.stderr)
                return 2
    except KeyboardInterrupt as error:  # Ctrl-C, SIGTERM, SIGHUP, a callback's sys.exit
        status = _interrupt_status(error)
        resumable = args.command in ("search", "scenario", "robustness") and _log_of(args)
        why = (f" by {signal_name(error.signum)}" if isinstance(error, Terminated)
               else f" ({error})" if isinstance(error, CallbackExit) else "")
        print(f"\ndendrax: interrupted{why}" + (
            " (finished buckets are in the log; rerun with --resume to continue)"
            if resumable else ""), file=sys.stderr, flush=True)
        if argv is None and _compiling():
            # Waiting for XLA would take seconds, and a compile running while the
            # interpreter shuts down can abort it: leave now (the log is already whole).
            _flush_quietly()
            os._exit(status)
        return status
    finally:
        # The command itself keeps the "second Ctrl-C quits at once" handler after an
        # interrupt, through the interpreter's exit; a caller of main() gets its own back.
        if in_main and previous_sigint is signal.default_int_handler and (
                argv is not None or signal.getsignal(signal.SIGINT) is _first_interrupt):
            signal.signal(signal.SIGINT, previous_sigint)
        if isinstance(sys.stdout, _PipeSafeStdout):
            sys.stdout = stdout


def _log_of(args: argparse.Namespace) -> Any:
    return getattr(args, "log", None) or getattr(args, "log_path", None)


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _compiling() -> bool:
    """Whether the compile thread is busy (without importing JAX if nothing did)."""
    module = sys.modules.get("dendrax.population.compile")
    return bool(module is not None and module.compiling())


def _flush_quietly() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


if __name__ == "__main__":
    sys.exit(main())
