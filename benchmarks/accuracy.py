"""Accuracy: the original README's example table, re-measured over many seeds.

Each row trains ``--seeds`` seeds of one configuration as one dendrax population (each
seed with its own initialisation, connections and batch order), for ``--epochs`` epochs on
Fashion-MNIST (54,000 training / 6,000 validation / 10,000 test examples), and reports
the final epoch's test and validation accuracy as mean ± sample std (ddof 1), min and max,
with the exact parameter count, next to what the original README claims and, where
known, what the original NumPy code measured (the project's reference measurements of the original, 2026-11-27).

Rows: (i) dendritic_simple 12 neurons × 6 dendrites × 96 inputs, also with resampling
off; (ii) soma_disabled 25 dendrites × 64 inputs, 12 neurons (the model of the original's
parameter formula: its own code crashes on this config); (iii) dendritic_with_hidden
10 neurons, hidden 8, 6 dendrites × 128 inputs (the original's default k).

Writes accuracy.json and accuracy.md into ``--out``, after every row.

    python benchmarks/accuracy.py --out results/cpu                 # 8 seeds, 15 epochs
    python benchmarks/accuracy.py --seeds 2 --epochs 1 --subset 2000 --out /tmp/acc
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ROWS = [
    {"name": "simple", "label": "(i) Simple Dendritic",
     "config": dict(architecture="dendritic_simple", n_neurons=12, n_dendrites=6,
                    n_dendrite_inputs=96),
     "readme": {"test_accuracy": 0.876, "params": 7890},
     "original": {"test_accuracy": 0.8511, "std": 0.0019, "seeds": 5,
                  "note": "original NumPy, 15 epochs (reference measurement)"}},
    {"name": "simple-no-resampling", "label": "(i) Simple Dendritic, resampling off",
     "config": dict(architecture="dendritic_simple", n_neurons=12, n_dendrites=6,
                    n_dendrite_inputs=96, synaptic_resampling=False),
     "readme": None,
     "original": {"test_accuracy": 0.8504, "std": 0.0028, "seeds": 5,
                  "note": "original NumPy, 15 epochs (reference measurement)"}},
    {"name": "soma-disabled", "label": "(ii) Soma Disabled",
     "config": dict(architecture="soma_disabled", n_neurons=12, n_dendrites=25,
                    n_dendrite_inputs=64),
     "readme": {"test_accuracy": 0.871, "params": 7654},
     "original": {"note": "the original's code crashes on this config (n_neurons != 10)"}},
    {"name": "with-hidden", "label": "(iii) With Hidden",
     "config": dict(architecture="dendritic_with_hidden", n_neurons=10, hidden_dim=8,
                    n_dendrites=6, n_dendrite_inputs=128),
     "readme": {"test_accuracy": 0.868, "params": 7982},
     "original": None},
]
ROW_CONFIG = {r["name"]: r["config"] for r in ROWS}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/accuracy", help="output folder")
    p.add_argument("--seeds", type=int, default=8, help="seeds per row (0 .. seeds-1)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--rows", default=",".join(r["name"] for r in ROWS),
                   help="comma-separated row names, run in this order")
    p.add_argument("--lowering", default="auto", choices=("auto", "gather", "dense"))
    p.add_argument("--data-order", default="own", choices=("own", "shared"),
                   help="own: every seed its own batch order, like independent runs")
    p.add_argument("--matmul-dtype", default="float32", choices=("float32", "tf32", "bfloat16"))
    p.add_argument("--chunk-size", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=256)
    common.add_data_arguments(p)
    args = p.parse_args(argv)
    names = [r["name"] for r in ROWS]
    args.row_list = [s.strip() for s in args.rows.split(",") if s.strip()]
    bad = [r for r in args.row_list if r not in names]
    if bad:
        p.error(f"--rows: unknown {', '.join(bad)}; choose from {', '.join(names)}")
    if args.seeds < 1 or args.epochs < 1:
        p.error("--seeds and --epochs must be >= 1")
    return args


def summary(values: list[float]) -> dict[str, float]:
    finite = [v for v in values if v == v]
    if not finite:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"),
                "max": float("nan"), "n": 0}
    return {"mean": statistics.fmean(finite),
            "std": statistics.stdev(finite) if len(finite) > 1 else 0.0,
            "min": min(finite), "max": max(finite), "n": len(finite)}


def run_row(row: dict, data, settings, seeds: int) -> dict[str, Any]:
    from dendrax.config import ModelConfig, count_params
    from dendrax.population import train_configs

    configs = [ModelConfig(**row["config"], seed=s) for s in range(seeds)]
    last = [0.0]

    def progress(p):
        now = time.perf_counter()
        if now - last[0] > 5 or p.epoch == p.n_epochs:  # at most one line per 5 s
            last[0] = now
            common.say(f"[accuracy] {row['name']}: epoch {p.epoch}/{p.n_epochs}, "
                       f"{p.alive}/{p.chunk_models} alive, best val {p.best_val_accuracy:.4f}")

    t0 = time.perf_counter()
    outcomes = train_configs(configs, data, settings, progress=progress, log=common.say)
    wall = time.perf_counter() - t0
    per_seed = [{"seed": o.config.seed, "test_accuracy": o.final("test_accuracy"),
                 "val_accuracy": o.final("val_accuracy"),
                 "train_accuracy": o.final("train_accuracy"),
                 "test_loss": o.final("test_loss"), "diverged": o.diverged,
                 "swaps": sum(o.history["swaps"])} for o in outcomes]
    epochs = len(outcomes[0].history["test_accuracy"])
    compile_s = outcomes[0].compile_time
    return {
        "name": row["name"], "label": row["label"], "config": configs[0].to_dict(),
        "params": count_params(configs[0], data.in_dim, data.n_classes),
        "seeds": seeds, "epochs": epochs,
        "test": summary([s["test_accuracy"] for s in per_seed]),
        "val": summary([s["val_accuracy"] for s in per_seed]),
        "train": summary([s["train_accuracy"] for s in per_seed]),
        "diverged": sum(s["diverged"] for s in per_seed),
        "mean_test_by_epoch": [statistics.fmean(o.history["test_accuracy"][e]
                                                for o in outcomes) for e in range(epochs)],
        "readme": row["readme"], "original": row["original"],
        "wall_s": wall, "compile_s": compile_s,
        "compile_share": compile_s / wall if wall > 0 else float("nan"),
        "bucket": outcomes[0].bucket, "per_seed": per_seed,
    }


def compile_text(row: dict) -> str:
    if row["compile_s"] == 0:
        return "0 (program reused)"  # same shapes as an earlier row: no new compile
    return f"{row['compile_s']:.1f} ({100 * row['compile_share']:.0f} % of the wall time)"


def markdown(result: dict) -> str:
    d = result["data"]
    s = result["settings"]
    lines = [f"# Accuracy: the original README's example table, {s['seeds']} seeds a row",
             "", f"Machine: {common.machine_line(result['machine'])}", "",
             f"Command: `{result['machine']['command']}`", "",
             f"Data: {d['name']}, {d['n_train']:,} training / {d['n_val']:,} validation / "
             f"{d['n_test']:,} test examples ({d['source']}). {s['epochs']} epochs, batch "
             f"{s['batch_size']}, lowering {result['lowering']}, {s['data_order']} batch order, "
             f"{s['matmul_dtype']}. Accuracy after the last epoch; mean ± sample std over seeds.",
             "",
             "| row | params (exact) | README params | test accuracy | min – max | "
             "val accuracy | README claim | original, measured | wall s | compile s |",
             "|---|---:|---:|---|---|---|---:|---|---:|---:|"]
    for r in result["rows"]:
        t, v = r["test"], r["val"]
        readme = r["readme"] or {}
        orig = r["original"] or {}
        if "test_accuracy" in orig:
            orig_text = f"{orig['test_accuracy']:.4f} ± {orig['std']:.4f} ({orig['seeds']} seeds)"
        else:
            orig_text = orig.get("note", "–")
        diverged = f", {r['diverged']} diverged" if r["diverged"] else ""
        lines.append(
            f"| {r['label']}{diverged} | {r['params']:,} | "
            f"{format(readme['params'], ',') if readme else '–'} | "
            f"**{t['mean']:.4f} ± {t['std']:.4f}** | {t['min']:.4f} – {t['max']:.4f} | "
            f"{v['mean']:.4f} ± {v['std']:.4f} | "
            f"{readme['test_accuracy'] if readme else '–'} | {orig_text} | "
            f"{r['wall_s']:.1f} | {compile_text(r)} |")
    lines += ["", "Configurations: " + "; ".join(
        f"{r['label']}: " + ", ".join(f"{k}={v}" for k, v in ROW_CONFIG[r["name"]].items())
        for r in result["rows"]), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common.stop_on_sigterm()

    from dendrax.population import resolve_lowering
    from dendrax.spec import TrainSettings

    data = common.load_data(args)
    settings = TrainSettings(n_epochs=args.epochs, batch_size=args.batch_size,
                             data_order=args.data_order, lowering=args.lowering,
                             matmul_dtype=args.matmul_dtype, chunk_size=args.chunk_size)
    machine = common.machine_record()
    result: dict[str, Any] = {
        "benchmark": "accuracy", "machine": machine, "data": common.data_record(data),
        "settings": {k: v for k, v in vars(args).items() if k != "row_list"},
        "lowering": resolve_lowering(args.lowering), "rows": []}
    common.say(f"[accuracy] {common.machine_line(machine)}")
    common.say(f"[accuracy] data: {data.summary().splitlines()[0]}")
    if data.is_sample:
        common.say("[accuracy] WARNING: the package's small sample, not the full dataset")
    interrupted = False
    try:
        for name in args.row_list:
            row = next(r for r in ROWS if r["name"] == name)
            common.say(f"[accuracy] {row['label']}: {args.seeds} seeds × {args.epochs} epochs …")
            r = run_row(row, data, settings, args.seeds)
            result["rows"].append(r)
            common.say(f"[accuracy] {row['label']}: test {r['test']['mean']:.4f} ± "
                       f"{r['test']['std']:.4f} ({r['test']['min']:.4f} – "
                       f"{r['test']['max']:.4f}), val {r['val']['mean']:.4f}, "
                       f"{r['params']:,} params; {r['wall_s']:.1f} s (compile "
                       f"{r['compile_s']:.1f} s)")
            result["total_s"] = time.perf_counter() - started
            common.write_json(out / "accuracy.json", result)
            common.write_text(out / "accuracy.md", markdown(result))
    except KeyboardInterrupt:
        interrupted = True
        common.say("[accuracy] interrupted: writing the rows finished so far")
    result["interrupted"] = interrupted
    result["total_s"] = time.perf_counter() - started
    common.write_json(out / "accuracy.json", result)
    common.write_text(out / "accuracy.md", markdown(result))
    common.say(markdown(result))
    common.say(f"[accuracy] wrote {out}/accuracy.json, .md in {result['total_s']:.0f} s")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
