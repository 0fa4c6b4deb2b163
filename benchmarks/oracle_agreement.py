"""Agreement: the headline config trained by dendrax and by the oracle, seed for seed count.

Trains the original README's first row (dendritic_simple, 12 neurons × 6 dendrites × 96
inputs, resampling 0.25 every 128 steps, 7,198 parameters) ``--seeds`` times with dendrax
(one population, float32 by default) and ``--seeds`` times with the oracle
(``benchmarks/original_numpy.py``: the original's training in NumPy float64, its own draws
and bookkeeping), for ``--epochs`` epochs, on the same arrays: Fashion-MNIST's 60,000
training images (no validation split, as the original) and its 10,000 test images. It
reports the final test accuracy of each as mean ± sample std, the difference of the means
and that difference in units of its standard error (Welch); |z| < 2 is agreement within
seed noise. Different seeds give different draws on the two sides, so the comparison is
of distributions, not of runs.

Writes agreement.json and agreement.md into ``--out``.

    python benchmarks/oracle_agreement.py --out results/agreement    # 8 seeds × 15 epochs
    python benchmarks/oracle_agreement.py --quick --out /tmp/agree     # plumbing only
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import original_numpy  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/agreement", help="output folder")
    p.add_argument("--seeds", type=int, default=8, help="seeds per side (0 .. seeds-1)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--matmul-dtype", default="float32", choices=("float32", "tf32", "bfloat16"))
    p.add_argument("--quick", action="store_true",
                   help="2 seeds × 1 epoch on 1,200 training and 200 test images: checks the "
                        "plumbing, the figures mean nothing")
    common.add_data_arguments(p)
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = 2, 1
        args.subset = args.subset or 1200
        args.eval_subset = args.eval_subset or 200
    if args.seeds < 2 or args.epochs < 1:
        p.error("--seeds must be >= 2 (a spread is needed) and --epochs >= 1")
    return args


def load(args):
    """The same arrays for both sides: no validation split; ``--subset`` and
    ``--eval-subset`` (tests only) shrink the training and test sets."""
    from dendrax.data import load_dataset

    sources = ("dir", "system") + (("sample",) if args.allow_sample else ())
    data = load_dataset("fashion-mnist", data_dir=args.data_dir, subset_size=args.subset,
                        validation_fraction=None, sources=sources, download=False)
    if args.eval_subset:
        import dataclasses

        n = args.eval_subset
        data = dataclasses.replace(data, x_test=data.x_test[:n], y_test=data.y_test[:n])
    return data


def summary(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values),
            "min": min(values), "max": max(values), "n": len(values)}


def run_dendrax(data, args) -> dict[str, Any]:
    from dendrax.population import train_configs
    from dendrax.config import ModelConfig
    from dendrax.spec import TrainSettings

    configs = [ModelConfig(**common.HEADLINE, seed=s) for s in range(args.seeds)]
    settings = TrainSettings(n_epochs=args.epochs, batch_size=256,
                             matmul_dtype=args.matmul_dtype)
    t0 = time.perf_counter()
    outcomes = train_configs(configs, data, settings, log=common.say)
    wall = time.perf_counter() - t0
    return {"test_accuracy": [o.final("test_accuracy") for o in outcomes],
            "diverged": sum(o.diverged for o in outcomes), "wall_s": wall,
            "precision": args.matmul_dtype}


def run_oracle(data, args) -> dict[str, Any]:
    import numpy as np

    config = {**original_numpy.HEADLINE}
    y_train, y_test = data.y_train.astype(np.int64), data.y_test.astype(np.int64)
    accuracies, t0 = [], time.perf_counter()
    for seed in range(args.seeds):
        history = original_numpy.train(config, data.x_train, y_train, data.x_test, y_test,
                                       n_epochs=args.epochs, seed=seed)
        accuracies.append(history["test_accuracy"][-1])
        common.say(f"[agreement] oracle seed {seed}: test {accuracies[-1]:.4f}")
    return {"test_accuracy": accuracies, "wall_s": time.perf_counter() - t0,
            "precision": "float64"}


def compare(a: dict, b: dict) -> dict[str, float]:
    """Difference of means and its Welch standard error."""
    diff = a["mean"] - b["mean"]
    se = math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    z = diff / se if se > 0 else (0.0 if diff == 0 else math.inf)
    return {"difference": diff, "standard_error": se, "z": z, "within_noise": abs(z) < 2}


def markdown(result: dict) -> str:
    d, c = result["data"], result["comparison"]
    rows = []
    for side in ("dendrax", "oracle"):
        s = result[side]["summary"]
        precision = result[side]["precision"]
        rows.append(f"| {side} ({precision}) | {s['mean']:.4f} ± {s['std']:.4f} "
                    f"| {s['min']:.4f} – {s['max']:.4f} | {s['n']} | {result[side]['wall_s']:.0f} |")
    return "\n".join([
        f"# Agreement: dendrax and the oracle, headline config, {result['seeds']} seeds × "
        f"{result['epochs']} epochs", "",
        f"Machine: {common.machine_line(result['machine'])}", "",
        f"Command: `{result['machine']['command']}`", "",
        f"Data: {d['name']}, {d['n_train']:,} training / {d['n_test']:,} test examples "
        f"({d['source']}), no validation split.", "",
        "| implementation | test accuracy | min – max | seeds | wall s |",
        "|---|---|---|---:|---:|", *rows, "",
        f"Difference of means {c['difference']:+.4f}, standard error {c['standard_error']:.4f}, "
        f"z = {c['z']:+.2f}: {'within' if c['within_noise'] else 'OUTSIDE'} seed noise "
        f"(|z| < 2).", ""])


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load(args)
    machine = common.machine_record()
    common.say(f"[agreement] {common.machine_line(machine)}")
    common.say(f"[agreement] data: {data.summary().splitlines()[0]}")
    if data.is_sample:
        common.say("[agreement] WARNING: the package's small sample, not the full dataset")
    result: dict[str, Any] = {"benchmark": "agreement", "machine": machine,
                              "data": common.data_record(data), "seeds": args.seeds,
                              "epochs": args.epochs, "config": dict(common.HEADLINE)}
    for side, run in (("dendrax", run_dendrax), ("oracle", run_oracle)):
        common.say(f"[agreement] {side}: {args.seeds} seeds × {args.epochs} epochs …")
        result[side] = run(data, args)
        result[side]["summary"] = summary(result[side]["test_accuracy"])
    result["comparison"] = compare(result["dendrax"]["summary"], result["oracle"]["summary"])
    common.write_json(out / "agreement.json", result)
    common.write_text(out / "agreement.md", markdown(result))
    common.say(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
