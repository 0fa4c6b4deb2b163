"""Training throughput: dendrax populations vs a one-model loop vs the NumPy original.

Workload: the headline config (dendritic_simple, 12 neurons × 6 dendrites × 96 inputs,
7,198 parameters) on Fashion-MNIST, batch 256, resampling 25 % every 128 steps. The unit
is model-epochs per second: models × epochs ÷ wall time, where one epoch is the training
pass plus the validation and test evaluation that every epoch of a sweep runs.
Compile time is excluded and reported on its own.

One run measures, on one machine:

(a) ``dendrax.population.train_population`` at each population size, for each lowering
    (gather, dense, sparse: the Numba CPU kernel, skipped with a note where it cannot run),
    batch order (own, shared) and matmul dtype. Each cell runs a warm-up
    epoch (it carries the compile), then ``--epochs`` timed epochs; the figure is the median
    epoch. Cells predicted to take longer than ``--cell-cap`` seconds run fewer timed
    epochs or are skipped, and gather stops at ``--gather-max-population``; every skip is
    printed and recorded.
(b) the same models trained one at a time: a Python loop of single-model
    ``train_population`` calls reusing one compiled program (its compile excluded once).
(c) ``benchmarks/original_numpy.py``: the original algorithm in NumPy, one model, in a
    child process without JAX, with NumPy's default BLAS threads and with one.

(b) and (c) run before and after the population cells; the ratios use the fastest run of
each, so that a busy moment on a shared machine cannot flatter dendrax.

Ratios a÷b and a÷c use figures of this run only. Writes into ``--out``:
throughput.json (everything, with the machine and versions), throughput.md (tables) and
throughput.png (model-epochs/s against population size, log-log). The JSON and markdown
are rewritten after every cell, so a run stopped early keeps what it measured.

    python benchmarks/throughput.py --quick --out /tmp/tp          # < 3 min on 2 CPU cores
    python benchmarks/throughput.py --populations 1,8,64 --out results/cpu
    python benchmarks/throughput.py --max-population 8192 --time-budget 240 --out results/gpu
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

LOWERINGS = ("gather", "dense", "sparse")
# The original toolkit's own code, one model, on the 2-core CPU of the reference
# measurements (quiet machine, 2 BLAS threads): 9.3 s for 15 epochs. Not measured by this
# run; printed beside (c) for reference.
ORIGINAL_EPOCH_S = 0.62
LADDER = (1, 8, 64, 512, 2048, 4096, 8192, 16384, 32768, 65536)
TARGET_COMPILE_SHARE = 0.10  # of a 15-epoch sweep's wall time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/throughput", help="output folder")
    p.add_argument("--quick", action="store_true",
                   help="populations 1 and 8 (gather: 1), dense and sparse, float32, 8,192 training and 2,000 "
                        "eval examples, one timed epoch, baselines once with one epoch: a "
                        "smoke run, < 3 min on 2 CPU cores")
    p.add_argument("--populations", default=None,
                   help="comma-separated population sizes (default: the ladder "
                        f"{','.join(map(str, LADDER[:4]))},… up to --max-population)")
    p.add_argument("--max-population", type=int, default=512)
    p.add_argument("--lowerings", default="gather,dense,sparse", help="run in this order")
    p.add_argument("--orders", default="own,shared", help="batch orders, run in this order")
    p.add_argument("--dtypes", default=None,
                   help="matmul dtypes: float32 (true float32), tf32, bfloat16 "
                        "(default float32,bfloat16; --quick: float32)")
    p.add_argument("--bf16-lowerings", default="dense",
                   help="lowerings that also run in bfloat16")
    p.add_argument("--bf16-min-population", type=int, default=64,
                   help="bfloat16 cells only at this population size and above")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per cell (median)")
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--cell-cap", type=float, default=300.0,
                   help="seconds one cell may take, predicted from the previous size")
    p.add_argument("--gather-max-population", type=int, default=512)
    p.add_argument("--time-budget", type=float, default=None,
                   help="seconds for the whole run; cells predicted to overrun are skipped")
    p.add_argument("--loop-models", type=int, default=3,
                   help="(b): models trained one after another (0 skips)")
    p.add_argument("--numpy-epochs", type=int, default=3,
                   help="(c): epochs of the NumPy original, one model (0 skips)")
    p.add_argument("--numpy-threads", default="default,1",
                   help="(c): BLAS thread counts to run it with ('default': NumPy's own)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--numpy-child", action="store_true", help=argparse.SUPPRESS)
    common.add_data_arguments(p)
    args = p.parse_args(argv)
    if args.quick:
        args.populations = args.populations or "1,8"
        args.epochs = 1
        args.numpy_epochs = min(args.numpy_epochs, 1)
        args.loop_models = min(args.loop_models, 2)
        args.subset = args.subset or 8192
        args.eval_subset = args.eval_subset or 2000
        args.dtypes = args.dtypes or "float32"
        args.gather_max_population = min(args.gather_max_population, 1)
    args.dtypes = args.dtypes or "float32,bfloat16"
    args.baselines_twice = not args.quick
    if args.populations:
        try:
            args.population_list = sorted({int(s) for s in args.populations.split(",")
                                           if s.strip()})
        except ValueError:
            p.error("--populations: comma-separated integers")
    else:
        args.population_list = [n for n in LADDER if n <= args.max_population]
    if not args.population_list or min(args.population_list) < 1:
        p.error("population sizes must be integers >= 1")
    if args.epochs < 1 or args.warmup_epochs < 1:
        p.error("--epochs and --warmup-epochs must be >= 1 (the warm-up epoch carries "
                "the compile and is never timed)")
    try:
        args.numpy_thread_list = [None if t.strip() == "default" else int(t)
                                  for t in args.numpy_threads.split(",") if t.strip()]
    except ValueError:
        p.error("--numpy-threads: comma-separated integers or 'default'")
    args.lowering_list = _names(p, args.lowerings, LOWERINGS, "--lowerings")
    args.order_list = _names(p, args.orders, ("own", "shared"), "--orders")
    args.dtype_list = _names(p, args.dtypes, ("float32", "tf32", "bfloat16"), "--dtypes")
    args.bf16_lowering_list = _names(p, args.bf16_lowerings, LOWERINGS,
                                     "--bf16-lowerings")
    return args


def _names(parser, text: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        parser.error(f"{flag}: unknown {', '.join(bad)}; choose from {', '.join(allowed)}")
    return names


# ---- the three measurements ----------------------------------------------------------

def headline_configs(n: int, seed0: int = 0):
    from dendrax.config import ModelConfig
    return [ModelConfig(**common.HEADLINE, seed=seed0 + i) for i in range(n)]


def measure_population(data, settings, n_models: int, seed0: int = 0) -> dict[str, Any]:
    """Train ``n_models`` as one population; time each epoch from the trainer's progress
    events (each comes after the epoch's metrics reached the host, so it is synchronous)."""
    from dendrax.population import train_population

    stamps: list[float] = []
    start = time.perf_counter()
    def on_progress(event) -> None:
        if event.phase == "train":  # one per finished epoch ("compile"/"start" are not)
            stamps.append(time.perf_counter())

    run = train_population(headline_configs(n_models, seed0), data, settings,
                           progress=on_progress)
    alive = int(run.state.alive.sum())
    compile_s = run.timings.compile
    del run
    edges = [start, *stamps]
    epochs = [b - a for a, b in zip(edges, edges[1:])]
    return {"compile_s": compile_s, "epoch_s": epochs, "alive": alive,
            "call_s": stamps[-1] - start}


def measure_loop(data, settings, n_models: int) -> dict[str, Any]:
    """(b): one single-model call per model, the compiled program reused."""
    from dendrax.population import train_population

    # The warm-up call uses the same settings: n_epochs is part of the compiled program's
    # cache key, so any other value would compile again inside the timed loop.
    t0 = time.perf_counter()
    first = train_population(headline_configs(1, 10_000), data, settings).timings
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for config in headline_configs(n_models):
        train_population([config], data, settings)
    wall = time.perf_counter() - t0
    model_epochs = n_models * settings.n_epochs
    return {"models": n_models, "epochs": settings.n_epochs, "wall_s": wall,
            "compile_s": first.compile, "warmup_call_s": warm_s,
            "model_epochs_per_s": model_epochs / wall,
            "lowering": settings.lowering, "order": settings.data_order,
            "dtype": settings.matmul_dtype}


def numpy_run(data, n_epochs: int, batch_size: int) -> dict[str, Any]:
    """(c): the original algorithm in NumPy, one model, this process (see measure_numpy)."""
    import numpy as np
    import original_numpy

    config = {**original_numpy.HEADLINE, "seed": 0}
    history = original_numpy.train(config, data.x_train, data.y_train.astype(np.int64),
                                   data.x_test, data.y_test.astype(np.int64),
                                   n_epochs=n_epochs, batch_size=batch_size)
    epoch_s = [float(s) for s in history["epoch_seconds"]]
    median = statistics.median(epoch_s)
    return {"models": 1, "epochs": n_epochs, "epoch_s": epoch_s,
            "train_s": [float(s) for s in history["train_seconds"]],
            "median_epoch_s": median, "model_epochs_per_s": 1.0 / median,
            "test_accuracy": float(history["test_accuracy"][-1]),
            "note": "epoch = training + test evaluation (no validation set)"}


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def measure_numpy(args, blas_threads: Optional[int]) -> dict[str, Any]:
    """(c) in a child process: no JAX threads beside it, and its BLAS thread count fixed
    before NumPy loads (None: NumPy's default, all cores). Same data flags as this run."""
    env = dict(os.environ)
    if blas_threads is not None:
        env.update({name: str(blas_threads) for name in BLAS_THREAD_VARIABLES})
    command = [sys.executable, str(Path(__file__).resolve()), "--numpy-child",
               "--numpy-epochs", str(args.numpy_epochs), "--batch-size", str(args.batch_size)]
    for flag in ("data_dir", "subset", "eval_subset"):
        if getattr(args, flag) is not None:
            command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.allow_sample:
        command.append("--allow-sample")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the NumPy baseline failed: {done.stderr[-2000:]}")
    record = json.loads(done.stdout.strip().splitlines()[-1])
    record["blas_threads"] = blas_threads if blas_threads is not None else "default"
    return record


def measure_baselines(args, data, result: dict, when: str) -> None:
    """(c) then (b), appended to result["numpy_runs"] / ["loop_runs"]. Each baseline runs
    before and after the population cells; the faster run of each is the one that the
    ratios use, so that a noisy moment on a shared machine never flatters dendrax."""
    from dendrax.population import resolve_lowering
    from dendrax.spec import TrainSettings

    for threads in args.numpy_thread_list if args.numpy_epochs > 0 else []:
        what = f"{threads or 'default'} BLAS thread{'s' if threads != 1 else ''}"
        common.say(f"[throughput] (c) NumPy original, {when}, {what}: 1 model × "
                   f"{args.numpy_epochs} epochs …")
        try:
            n = dict(measure_numpy(args, threads), when=when)
        except (RuntimeError, OSError, ValueError) as error:  # the run goes on without it
            common.say(f"[throughput] (c) NumPy, {when}, {what}: {error}")
            result.setdefault("numpy_errors", []).append(str(error)[:2000])
            continue
        result["numpy_runs"].append(n)
        result["numpy"] = max(result["numpy_runs"], key=lambda r: r["model_epochs_per_s"])
        common.say(f"[throughput] (c) NumPy, {when}, {what}: epochs "
                   f"{', '.join(f'{s:.3f}' for s in n['epoch_s'])} s → "
                   f"{n['model_epochs_per_s']:.3g} model-epochs/s")
    if args.loop_models > 0:
        settings = TrainSettings(n_epochs=args.epochs, batch_size=args.batch_size,
                                 data_order="own", lowering=resolve_lowering("auto"))
        common.say(f"[throughput] (b) loop, {when}: {args.loop_models} models × {args.epochs} "
                   f"epochs, one at a time ({settings.lowering}) …")
        b = dict(measure_loop(data, settings, args.loop_models), when=when)
        result["loop_runs"].append(b)
        result["loop"] = max(result["loop_runs"], key=lambda r: r["model_epochs_per_s"])
        common.say(f"[throughput] (b) loop, {when}: {b['wall_s']:.2f} s → "
                   f"{b['model_epochs_per_s']:.3g} model-epochs/s (compile "
                   f"{b['compile_s']:.2f} s excluded)")


# ---- the grid of population cells ------------------------------------------------------

def series_list(args) -> list[tuple[str, str, str]]:
    out = []
    for lowering in args.lowering_list:
        for order in args.order_list:
            for dtype in args.dtype_list:
                if dtype == "bfloat16" and lowering not in args.bf16_lowering_list:
                    continue
                out.append((lowering, order, dtype))
    return out


def sparse_unavailable() -> Optional[str]:
    """Why the sparse lowering cannot run here (it would fall back to dense), or None."""
    import jax
    from dendrax.nn import sparse_cpu

    if jax.default_backend() != "cpu":
        return f"sparse is a CPU kernel; the backend is {jax.default_backend()}"
    if not sparse_cpu.kernel_installed():
        return f"sparse needs Numba and OpenMP or TBB: {sparse_cpu.INSTALL_HINT}"
    return None


def plan_cell(args, series, n: int, previous: Optional[dict], remaining: Optional[float]):
    """(timed epochs, None) to run the cell, or (0, why) to skip it."""
    lowering, _, dtype = series
    if dtype == "bfloat16" and n < args.bf16_min_population:
        return 0, None  # not part of the grid: no row, no message
    if lowering == "gather" and n > args.gather_max_population:
        return 0, f"gather stops at {args.gather_max_population} models (--gather-max-population)"
    if lowering == "sparse" and sparse_unavailable():
        return 0, sparse_unavailable()
    timed = args.epochs
    if remaining is not None and remaining <= 0:
        return 0, "the --time-budget is spent"
    if previous is not None and previous["status"] != "ok":
        return 0, f"the previous size of this series did not run ({previous['status']})"
    if previous is None:
        return timed, None
    # Throughput seldom falls as the population grows, so the previous size's figure
    # gives an upper bound on the epoch time; the previous compile time bounds this one's
    # only roughly, so it counts twice.
    epoch_s = n / previous["model_epochs_per_s"]
    compile_s = 2 * previous["compile_s"] + 1.0
    limit = args.cell_cap if remaining is None else min(args.cell_cap, remaining)
    while timed > 1 and compile_s + (args.warmup_epochs + timed) * epoch_s > limit:
        timed -= 1
    predicted = compile_s + (args.warmup_epochs + timed) * epoch_s
    if predicted > limit:
        which = "--cell-cap" if limit == args.cell_cap else "the remaining --time-budget"
        return 0, (f"predicted {predicted:.0f} s (from {previous['population']} models at "
                   f"{previous['model_epochs_per_s']:.3g} model-epochs/s) > {limit:.0f} s, {which}")
    return timed, None


def run_cell(args, data, series, n: int, timed: int) -> dict[str, Any]:
    from dendrax.spec import TrainSettings

    lowering, order, dtype = series
    settings = TrainSettings(n_epochs=args.warmup_epochs + timed, batch_size=args.batch_size,
                             data_order=order, lowering=lowering, matmul_dtype=dtype)
    cell = {"lowering": lowering, "order": order, "dtype": dtype, "population": n,
            "load_average": common.load_average()}
    t0 = time.perf_counter()
    try:
        m = measure_population(data, settings, n)
    except Exception as error:  # noqa: BLE001 - one failed cell must not end the run
        text = f"{type(error).__name__}: {error}"
        oom = any(s in text for s in ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory"))
        cell.update(status="out of memory" if oom else "error", reason=text[:400],
                    wall_s=time.perf_counter() - t0)
        return cell
    timed_s = m["epoch_s"][args.warmup_epochs:]
    median = statistics.median(timed_s)
    cell.update(status="ok", compile_s=m["compile_s"], warmup_epoch_s=m["epoch_s"][0],
                epoch_s=timed_s, median_epoch_s=median, model_epochs_per_s=n / median,
                wall_s=time.perf_counter() - t0, alive=m["alive"],
                compile_share_15=m["compile_s"] / (m["compile_s"] + 15 * median))
    return cell


def add_ratios(cell: dict, loop: Optional[dict], numpy_: Optional[dict]) -> None:
    if cell.get("status") != "ok":
        return
    if loop:
        cell["vs_loop"] = cell["model_epochs_per_s"] / loop["model_epochs_per_s"]
    if numpy_:
        cell["vs_numpy"] = cell["model_epochs_per_s"] / numpy_["model_epochs_per_s"]


# ---- reporting ----------------------------------------------------------------------

def _fmt(x: Optional[float], digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def markdown(result: dict) -> str:
    from common import machine_line

    w = result["workload"]
    lines = [f"# Throughput: {w['label']}", "",
             f"Machine: {machine_line(result['machine'])}", "",
             f"Command: `{result['machine']['command']}`", "",
             f"Data: {w['n_train']:,} training examples ({w['steps_per_epoch']} steps of "
             f"{w['batch_size']}), {w['n_val']:,} validation and {w['n_test']:,} test examples "
             f"evaluated every epoch; {w['params']:,} parameters per model. Each population "
             f"cell: {result['settings']['warmup_epochs']} warm-up epoch (with the compile), "
             f"then the median of up to {result['settings']['epochs']} timed epochs.", ""]
    cells = result["cells"]
    sizes = sorted({c["population"] for c in cells})
    series = []
    for c in cells:
        key = (c["lowering"], c["order"], c["dtype"])
        if key not in series:
            series.append(key)
    lines += ["## Model-epochs per second (a)", "",
              "| lowering | order | dtype | " + " | ".join(f"{n:,}" for n in sizes) + " |",
              "|---|---|---|" + "---:|" * len(sizes)]
    for key in series:
        row = []
        for n in sizes:
            c = next((c for c in cells if (c["lowering"], c["order"], c["dtype"]) == key
                      and c["population"] == n), None)
            row.append("" if c is None else _fmt(c.get("model_epochs_per_s"))
                       if c["status"] == "ok" else c["status"])
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(row) + " |")
    lines.append("")
    loop, np_ = result.get("loop"), result.get("numpy")

    def runs(name: str) -> str:
        every = result.get(f"{name}_runs") or []
        if len(every) < 2:
            return ""
        def label(r):
            threads = r.get("blas_threads")
            return r["when"] + ("" if threads is None else f", {threads} BLAS threads")

        return " (" + "; ".join(f"{label(r)}: {_fmt(r['model_epochs_per_s'])}"
                               for r in every) + "; the fastest is used)"

    if loop:
        lines.append(f"(b) dendrax, one model at a time in a Python loop ({loop['lowering']}, "
                     f"{loop['dtype']}; {loop['models']} models × {loop['epochs']} epochs, "
                     f"{loop['wall_s']:.2f} s): **{_fmt(loop['model_epochs_per_s'])}** "
                     f"model-epochs/s{runs('loop')}; compile {loop['compile_s']:.2f} s, "
                     f"excluded.")
    lines.append(f"For reference, not measured in this run: the original toolkit's own code "
                 f"took {ORIGINAL_EPOCH_S} s an epoch for one model on the 2-core CPU of the "
                 f"reference measurements (quiet, 2 BLAS threads), "
                 f"{1 / ORIGINAL_EPOCH_S:.2g} model-epochs/s.")
    if np_:
        lines.append(f"(c) NumPy original, one model, {np_.get('blas_threads')} BLAS threads "
                     f"({np_['epochs']} epochs, median "
                     f"{np_['median_epoch_s']:.3f} s an epoch): "
                     f"**{_fmt(np_['model_epochs_per_s'])}** model-epochs/s{runs('numpy')}.")
    best = result.get("best")
    if best:
        lines.append(f"Best population cell: {best['lowering']}/{best['order']}/{best['dtype']}"
                     f" at {best['population']:,} models, {_fmt(best['model_epochs_per_s'])} "
                     f"model-epochs/s = **{_fmt(best.get('vs_loop'))}× (b)** and "
                     f"**{_fmt(best.get('vs_numpy'))}× (c)**.")
    lines += sparse_vs_dense(cells, sizes)
    lines += ["", "## Every cell", "",
              "| lowering | order | dtype | models | compile s | s/epoch (timed) | "
              f"model-epochs/s | × loop (b) | × NumPy (c) | compile share of 15 epochs (target "
              f"≤ {100 * TARGET_COMPILE_SHARE:.0f} %) |",
              "|---|---|---|---:|---:|---|---:|---:|---:|---:|"]
    for c in cells:
        if c["status"] == "ok":
            times = ", ".join(f"{t:.3g}" for t in c["epoch_s"])
            lines.append(
                f"| {c['lowering']} | {c['order']} | {c['dtype']} | {c['population']:,} | "
                f"{c['compile_s']:.2f} | {times} | {_fmt(c['model_epochs_per_s'])} | "
                f"{_fmt(c.get('vs_loop'))} | {_fmt(c.get('vs_numpy'))} | "
                f"{100 * c['compile_share_15']:.1f} % |")
        else:
            lines.append(f"| {c['lowering']} | {c['order']} | {c['dtype']} | "
                         f"{c['population']:,} | | {c['status']}: {c.get('reason', '')} | | | | |")
    lines += ["", f"Total run time {result.get('total_s', 0):.0f} s.", ""]
    return "\n".join(lines)


def sparse_vs_dense(cells: list[dict], sizes: list[int]) -> list[str]:
    """Markdown rows: sparse's model-epochs/s over dense's, per order, dtype and size."""
    speed = {(c["lowering"], c["order"], c["dtype"], c["population"]): c["model_epochs_per_s"]
             for c in cells if c["status"] == "ok"}
    keys = sorted({(o, d) for (lowering, o, d, _) in speed if lowering == "sparse"})
    rows = []
    for order, dtype in keys:
        ratios = [(speed.get(("sparse", order, dtype, n)), speed.get(("dense", order, dtype, n)))
                  for n in sizes]
        rows.append(f"| {order} | {dtype} | " + " | ".join(
            _fmt(s / d) if s and d else "" for s, d in ratios) + " |")
    if not rows:
        return []
    return ["", "## Sparse ÷ dense (same run)", "",
            "| order | dtype | " + " | ".join(f"{n:,}" for n in sizes) + " |",
            "|---|---|" + "---:|" * len(sizes), *rows]


def plot(result: dict, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8))
    series: dict[tuple, list] = {}
    for c in result["cells"]:
        if c["status"] == "ok":
            series.setdefault((c["lowering"], c["order"], c["dtype"]), []).append(
                (c["population"], c["model_epochs_per_s"]))
    for (lowering, order, dtype), points in series.items():
        points.sort()
        style = {"dense": "-", "sparse": "--"}.get(lowering, ":")
        marker = "o" if order == "shared" else "s"
        label = f"{lowering}, {order} order" + (", bf16" if dtype == "bfloat16" else "")
        ax.plot(*zip(*points), style, marker=marker, label=label,
                alpha=0.6 if dtype == "bfloat16" else 1.0)
    for name, ref, color in (("(b) one-model loop", result.get("loop"), "grey"),
                             ("(c) NumPy original", result.get("numpy"), "black")):
        if ref:
            ax.axhline(ref["model_epochs_per_s"], color=color, ls="--", lw=1,
                       label=f"{name}: {_fmt(ref['model_epochs_per_s'])}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    sizes = sorted({c["population"] for c in result["cells"] if c["status"] == "ok"})
    if sizes:
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.4g}")
    ax.yaxis.set_major_formatter(plain)
    low, high = ax.get_ylim()
    if high / low < 30:  # under ~1.5 decades the major ticks alone are too few to read
        ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel("models trained at once (population size)")
    ax.set_ylabel("model-epochs per second")
    m = result["machine"]
    ax.set_title(f"dendrax throughput, {result['workload']['params']:,}-parameter model, "
                 f"{result['workload']['n_train']:,} training examples\n"
                 f"{common.device_name(m)}, {m['date'][:10]}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def save(result: dict, out: Path, with_plot: bool = False) -> None:
    common.write_json(out / "throughput.json", result)
    common.write_text(out / "throughput.md", markdown(result))
    if with_plot:
        plot(result, out / "throughput.png")


# ---- main ---------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.numpy_child:  # measure_numpy's child: print one JSON line, never load JAX
        print(json.dumps(numpy_run(common.load_data(args), args.numpy_epochs,
                                   args.batch_size)))
        return 0
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common.stop_on_sigterm()

    from dendrax.config import count_params

    data = common.load_data(args)
    config = headline_configs(1)[0]
    machine = common.machine_record()
    workload = {**common.data_record(data), **common.HEADLINE,
                "label": "dendritic_simple 12×6×96, Fashion-MNIST, batch 256, "
                         "resampling 25 % every 128 steps",
                "params": count_params(config, data.in_dim, data.n_classes),
                "batch_size": args.batch_size,
                "steps_per_epoch": len(data.x_train) // args.batch_size}
    settings_record = {k: v for k, v in vars(args).items() if not k.endswith("_list")}
    settings_record.update(populations=args.population_list)
    result: dict[str, Any] = {"benchmark": "throughput", "machine": machine,
                              "workload": workload, "settings": settings_record,
                              "numpy": None, "loop": None, "numpy_runs": [], "loop_runs": [],
                              "cells": [], "best": None}
    common.say(f"[throughput] {common.machine_line(machine)}")
    common.say(f"[throughput] data: {data.summary().splitlines()[0]}; "
               f"{workload['params']:,} parameters per model")
    if data.is_sample:
        common.say("[throughput] WARNING: the package's small sample, not the full dataset")

    def remaining() -> Optional[float]:
        if args.time_budget is None:
            return None
        return args.time_budget - (time.perf_counter() - started)

    interrupted = False
    try:
        measure_baselines(args, data, result, "before")
        save(result, out)
        for series in series_list(args):
            previous = None
            for n in args.population_list:
                timed, why = plan_cell(args, series, n, previous, remaining())
                label = f"{series[0]}/{series[1]}/{series[2]} × {n}"
                if timed == 0 and why is None:
                    continue
                if timed == 0:
                    cell = {"lowering": series[0], "order": series[1], "dtype": series[2],
                            "population": n, "status": "skipped", "reason": why}
                    common.say(f"[throughput] (a) {label}: skipped: {why}")
                else:
                    common.say(f"[throughput] (a) {label}: {args.warmup_epochs} warm-up + "
                               f"{timed} timed epochs …")
                    cell = run_cell(args, data, series, n, timed)
                    add_ratios(cell, result["loop"], result["numpy"])
                    if cell["status"] == "ok":
                        common.say(
                            f"[throughput] (a) {label}: compile {cell['compile_s']:.2f} s, "
                            f"epochs {', '.join(f'{t:.3f}' for t in cell['epoch_s'])} s → "
                            f"{cell['model_epochs_per_s']:.4g} model-epochs/s "
                            f"(×{_fmt(cell.get('vs_loop'))} loop, "
                            f"×{_fmt(cell.get('vs_numpy'))} NumPy)")
                    else:
                        common.say(f"[throughput] (a) {label}: {cell['status']}: "
                                   f"{cell.get('reason', '')[:200]}")
                result["cells"].append(cell)
                previous = cell
                result["total_s"] = time.perf_counter() - started
                save(result, out)
        budget_left = remaining()
        if args.baselines_twice and budget_left is not None and budget_left < 15:
            common.say("[throughput] no time left to measure (b) and (c) a second time")
        elif args.baselines_twice:
            measure_baselines(args, data, result, "after")
    except KeyboardInterrupt:
        interrupted = True
        common.say("[throughput] interrupted: writing what was measured")
    for cell in result["cells"]:
        add_ratios(cell, result["loop"], result["numpy"])
    ok = [c for c in result["cells"] if c["status"] == "ok"]
    if ok:
        result["best"] = max(ok, key=lambda c: c["model_epochs_per_s"])
    result["interrupted"] = interrupted
    result["total_s"] = time.perf_counter() - started
    save(result, out, with_plot=True)
    common.say(markdown(result))
    common.say(f"[throughput] wrote {out}/throughput.json, .md, .png "
               f"in {result['total_s']:.0f} s")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
