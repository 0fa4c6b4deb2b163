"""What a search costs end to end: padded vs exact buckets, and successive halving.

Two experiments on the same sampled configurations, measured side by side in one run:

1. **padding** (issue: heterogeneous populations). The random phase of the original's
   "thorough" scenario (``dendrax.examples.thorough_space``: every architecture, n_neurons
   5–20, n_dendrites 3–15, n_dendrite_inputs 32–256) trained with ``padding="exact"``
   (one compiled program per distinct shape) and with ``padding="padded"`` (a few padded
   buckets). Reports the number of compiled programs, compile time, train time and total.
   The budget is opened (all draws train) so that both runs train the same N models.
2. **halving**. The same configs trained to the end, and with successive halving
   (η = 3 from 1 epoch), both padded. Reports the wall time saved and whether the same
   best config (by validation accuracy) comes out.

    python benchmarks/search_costs.py --trials 70 --epochs 3 --out out/search-costs
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def sample_configs(n_trials: int, seed: int, in_dim: int):
    from dendrax.config import ModelConfig
    from dendrax.examples import thorough_space
    from dendrax.search.spaces import parse_space, sample_space

    draws = sample_space(parse_space(thorough_space()), n_trials, random.Random(seed))
    return [ModelConfig.from_dict(d, in_dim) for d in draws]


def run(configs, data, settings):
    """Train, and return (outcomes, wall seconds, compiled programs, compile seconds)."""
    from dendrax.population import runner as train

    train._compiled_program.cache_clear()  # each run pays its own compiles
    t0 = time.perf_counter()
    outcomes = train.train_configs(configs, data, settings, log=None)
    wall = time.perf_counter() - t0
    info = train._compiled_program.cache_info()
    by_bucket = {}
    for o in outcomes:  # with halving, a bucket's later outcomes carry more compile time
        by_bucket[o.bucket] = max(by_bucket.get(o.bucket, 0.0), o.compile_time)
    return outcomes, wall, info.misses, sum(by_bucket.values())


def best(outcomes):
    ranked = [o for o in outcomes if not o.diverged]
    top = max(ranked, key=lambda o: o.history["val_accuracy"][-1])
    return top


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_arguments(parser)
    parser.add_argument("--trials", type=int, default=70)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-exact", action="store_true",
                        help="skip the exact-shapes run (it compiles once per trial)")
    parser.add_argument("--out", default="out/search-costs")
    args = parser.parse_args(argv)
    common.stop_on_sigterm()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from dendrax.spec import TrainSettings

    data = common.load_data(args)
    machine = common.machine_record()
    configs = sample_configs(args.trials, args.seed, data.in_dim)
    base = TrainSettings(n_epochs=args.epochs)
    common.say(f"{len(configs)} configs, {args.epochs} epochs, {len(data.x_train)} training "
               f"samples, on {common.device_name(machine)}")

    rows = {}
    plans = [("padded", dataclasses.replace(base, padding="padded")),
             ("halving", dataclasses.replace(base, padding="padded", halving_eta=args.eta))]
    if not args.skip_exact:
        plans.insert(0, ("exact", base))
    results = {}
    for name, settings in plans:
        outcomes, wall, programs, compile_s = run(configs, data, settings)
        results[name] = outcomes
        top = best(outcomes)
        rows[name] = {
            "models": len(outcomes),
            "buckets": len({o.bucket for o in outcomes}),
            "compiled_programs": programs,
            "compile_s": round(compile_s, 2),
            "train_s": round(wall - compile_s, 2),
            "total_s": round(wall, 2),
            "model_epochs": sum(len(o.history["val_accuracy"]) for o in outcomes),
            "best_index": configs.index(top.config),
            "best_val_accuracy": top.history["val_accuracy"][-1],
            "best_test_accuracy": top.history["test_accuracy"][-1],
            "mean_padding_overhead": round(sum(o.padding_overhead for o in outcomes)
                                           / len(outcomes), 3),
        }
        common.say(f"{name}: {rows[name]}")

    full = rows["padded"]
    halved = rows["halving"]
    summary = {
        "halving_time_saved": round(1 - halved["total_s"] / full["total_s"], 3),
        "halving_same_best": halved["best_index"] == full["best_index"],
        # Where the halving winner ranks in the full run (1 = the same best).
        "halving_best_rank_in_full": 1 + sorted(
            range(len(configs)), key=lambda i: -results["padded"][i].history["val_accuracy"][-1]
        ).index(halved["best_index"]),
    }
    if "exact" in rows:
        summary["padding_speedup"] = round(rows["exact"]["total_s"] / full["total_s"], 2)

    payload = {"machine": machine, "data": common.data_record(data), "trials": args.trials,
               "epochs": args.epochs, "eta": args.eta, "rows": rows, "summary": summary}
    common.write_json(out / "search_costs.json", payload)
    lines = [f"Device: {common.machine_line(machine)}", "",
             f"{len(configs)} configs from the thorough scenario's random phase, "
             f"{args.epochs} epochs, {len(data.x_train)} training samples", "",
             "| run | buckets | compiled programs | compile s | train s | total s | "
             "model-epochs | best val acc |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['buckets']} | {r['compiled_programs']} | {r['compile_s']} "
                     f"| {r['train_s']} | {r['total_s']} | {r['model_epochs']} | "
                     f"{r['best_val_accuracy']:.4f} |")
    lines += ["", f"Summary: {summary}"]
    common.write_text(out / "search_costs.md", "\n".join(lines) + "\n")
    common.say("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
