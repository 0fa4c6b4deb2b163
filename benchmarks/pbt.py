"""Population-based training against its controls at equal model-epochs, on the
8,000-parameter Fashion-MNIST question (docs/results/best-under-8k.md).

Methods, each run once per master seed (``--master-seeds``), each given the same compute:
``--population`` × ``--epochs`` model-epochs.

- ``pbt``: population_based_training over the space below (``--ready-every``,
  ``--burn-in``, quantile 0.25, perturb 0.8/1.25, resample probability 0.25);
- ``pbt-selection``: the same with ``mutate=()``: members copy better members but keep
  the copied hyperparameters (the control the PBT literature asks for: MF-PBT's
  variance exploitation);
- ``random``: random search, ``--population`` configs drawn from the same space (the
  same draws as PBT's initial population), each trained ``--epochs`` epochs;
- ``halving``: successive halving (η = ``--eta``, first rung ``--min-epochs``) over as
  many random configs as fit the same model-epochs.

The winner of each (by validation accuracy only: PBT's best member's schedule, the
others' best config) is then retrained from scratch on ``--replay-seeds`` fresh seeds
(PBT's schedule by ``replay``); only here is test accuracy read. Per method: the IQM and a
95% stratified-bootstrap CI (dendrax.stats) over master seeds of the replayed winner's
mean test accuracy, and the wall time of the search. One structure is searched
(dendritic_simple, random connectivity), since a PBT population is one padded program.

Writes pbt.md and pbt.json under ``--out`` (docs/results), and the searchers' logs in
``--out``/pbt/.

    python benchmarks/pbt.py                                   # the full run (long)
    python benchmarks/pbt.py --quick --out /tmp/q --allow-sample   # smoke (a minute or two)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (REPO, add_data_arguments, data_record, load_data,  # noqa: E402
                    machine_line, machine_record, say, write_json, write_text)

from dendrax import stats  # noqa: E402
from dendrax.population.halving import mean_epochs  # noqa: E402
from dendrax.search.pbt import save_schedule  # noqa: E402
from dendrax.search.results import rank_results  # noqa: E402
from dendrax.search.searcher import HyperparameterSearcher  # noqa: E402

METHODS = ("pbt", "pbt-selection", "random", "halving")
REPLAY_SEED = 50_000  # base of the replay seeds: never a search seed


def space(max_params: int) -> dict[str, Any]:
    """The searched space: sizes of dendritic_simple with random connectivity up to the
    budget, resampling on or off with its amount and period, lr and weight decay
    log-uniform (so PBT's multiplicative perturbation is a step in log space)."""
    return {"architecture": "dendritic_simple", "strategy": "random",
            "n_neurons": [6, 8, 10, 12, 16], "n_dendrites": [2, 4, 6, 8],
            "n_dendrite_inputs": [16, 32, 64, 96, 128],
            "synaptic_resampling": [True, False],
            "percentage_resample": {"type": "uniform", "low": 0.05, "high": 0.5},
            "steps_to_resample": {"type": "randint", "low": 16, "high": 512},
            "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
            "weight_decay": {"type": "loguniform", "low": 1e-4, "high": 1e-1}}


def searcher(args, data, master: int, log: Path, **kwargs) -> HyperparameterSearcher:
    log.unlink(missing_ok=True)
    return HyperparameterSearcher(
        dataset="fashion-mnist", data=data, max_params=args.max_params,
        min_param_ratio=args.min_param_ratio, n_epochs=args.epochs,
        batch_size=args.batch_size, seed=master, log_path=str(log), verbose=args.verbose,
        **kwargs)


def confirm(args, data, method: str, master: int, out: Path, *, schedule=None,
            params=None) -> list[float]:
    """Test accuracy of the winner retrained on the replay seeds (one population)."""
    seeds = [REPLAY_SEED + 100 * master + i for i in range(args.replay_seeds)]
    s = searcher(args, data, master, out / f"{method}-{master}.replay.jsonl")
    if schedule is not None:
        results = s.replay(schedule, seeds=seeds)
    else:
        results = s.run_trials([{**params, "seed": seed} for seed in seeds],
                               strategy="confirm")
    s.close()
    # One score per seed (a config's seeds fold into one result; a replay gives one each).
    return [h["test_accuracy"][-1] for r in results for h in r.history]


def run_method(method: str, args, data, master: int, out: Path) -> dict[str, Any]:
    log = out / f"{method}-{master}.jsonl"
    budget = args.population * args.epochs
    t0 = time.perf_counter()
    if method in ("pbt", "pbt-selection"):
        s = searcher(args, data, master, log)
        s.population_based_training(
            space(args.max_params), args.population, ready_every=args.ready_every,
            burn_in=args.burn_in, **({"mutate": ()} if method == "pbt-selection" else {}))
        wall = time.perf_counter() - t0
        lineage = s.lineage
        best_val = max((r.val_accuracy for r in s.results if not r.diverged), default=math.nan)
        save_schedule(str(out / f"{method}-{master}.schedule.json"), lineage)
        s.close()
        scores = confirm(args, data, method, master, out, schedule=lineage)
        model_epochs = budget
        winner = {"schedule": lineage.to_json()}
    else:
        if method == "random":
            s = searcher(args, data, master, log)
            s.random_search(space(args.max_params), n_trials=args.population, fill_budget=True)
            model_epochs = budget
        else:
            per_model = mean_epochs(args.epochs, args.eta, args.min_epochs)
            n = max(1, int(budget // per_model))
            s = searcher(args, data, master, log, halving_eta=args.eta,
                         halving_min_epochs=args.min_epochs)
            s.random_search(space(args.max_params), n_trials=n, fill_budget=True)
            model_epochs = sum(r.epochs_trained for r in s.results)
        wall = time.perf_counter() - t0
        best = rank_results(s.results)[0]
        best_val = best.val_accuracy
        s.close()
        scores = confirm(args, data, method, master, out, params=best.config)
        winner = {"config": best.config}
    say(f"[pbt] {method} seed {master}: best val {best_val:.4f}, replayed test "
        f"{sum(scores) / len(scores):.4f} over {len(scores)} seeds, {wall:.0f} s")
    return {"method": method, "master_seed": master, "wall_s": wall, "best_val": best_val,
            "model_epochs": model_epochs, "replay_test": scores,
            "replay_test_mean": sum(scores) / len(scores), "winner": winner}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for method in METHODS:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        scores = [r["replay_test_mean"] for r in mine]
        summary = stats.summarize(scores)
        out[method] = {"n": len(mine), "iqm": summary.iqm, "iqm_ci": list(summary.iqm_ci),
                       "mean": summary.mean, "std": summary.std,
                       "wall_s": sum(r["wall_s"] for r in mine) / len(mine),
                       "model_epochs": sum(r["model_epochs"] for r in mine) / len(mine)}
    return out


def markdown(report: dict[str, Any]) -> str:
    rows = ["| method | master seeds | IQM test (replayed) | 95% CI | mean ± std | "
            "wall time / search | model-epochs |", "|---|---|---|---|---|---|---|"]
    for method, s in report["summary"].items():
        rows.append(f"| {method} | {s['n']} | {s['iqm']:.4f} | [{s['iqm_ci'][0]:.4f}, "
                    f"{s['iqm_ci'][1]:.4f}] | {s['mean']:.4f} ± {s['std']:.4f} | "
                    f"{s['wall_s']:.0f} s | {s['model_epochs']:.0f} |")
    best = max(report["summary"].items(), key=lambda kv: kv[1]["iqm"])
    others = [(m, s) for m, s in report["summary"].items() if m != best[0]]
    lead = (f"**{best[0]}** has the highest IQM of the replayed winner's test accuracy "
            f"({best[1]['iqm']:.4f})"
            + (", ahead of " + ", ".join(f"{m} by {best[1]['iqm'] - s['iqm']:+.4f}"
                                          for m, s in others) if others else "")
            + ". Whether that lead is real: compare the CIs (overlapping CIs are no win).")
    a = report["args"]
    return "\n".join([
        "# Population-based training against its controls, under 8,000 parameters",
        "",
        f"{report['machine_line']}; data: {report['data']['n_train']:,} training, "
        f"{report['data']['n_val']:,} validation, {report['data']['n_test']:,} test images"
        + (" (the embedded sample: a smoke run, not a result)" if report["data"]["is_sample"]
           else "") + ".",
        "",
        f"Each method gets {a['population']} × {a['epochs']} model-epochs per master seed; "
        f"PBT: a generation every {a['ready_every']} epochs after {a['burn_in']}; halving: "
        f"η = {a['eta']}, first rung {a['min_epochs']} epochs. Winners chosen on validation "
        f"only, then retrained on {a['replay_seeds']} fresh seeds (PBT: its best member's "
        f"schedule, replayed). Statistics over master seeds (dendrax.stats: IQM, stratified "
        f"bootstrap CI). Wall time is each search's own, compile included: the first "
        f"method to need a program compiles it, later ones find it cached.",
        "",
        *rows,
        "",
        lead,
        "",
        "Produced by `python benchmarks/pbt.py"
        + (" --quick" if a["quick"] else "") + "`.",
        ""])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(p)
    p.add_argument("--out", default=str(REPO / "docs" / "results"))
    p.add_argument("--max-params", type=int, default=8000)
    p.add_argument("--min-param-ratio", type=float, default=0.05)
    p.add_argument("--population", type=int, default=32)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--ready-every", type=int, default=3)
    p.add_argument("--burn-in", type=int, default=3)
    p.add_argument("--eta", type=int, default=3)
    p.add_argument("--min-epochs", type=int, default=3)
    p.add_argument("--master-seeds", type=int, default=5)
    p.add_argument("--replay-seeds", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--quick", action="store_true",
                   help="CI smoke run: population 4, 3 epochs, 2 master seeds, 2 replay "
                        "seeds, at most 1,000 training images")
    args = p.parse_args(argv)
    if args.quick:
        args.population, args.epochs, args.ready_every, args.burn_in = 4, 3, 1, 1
        args.min_epochs, args.master_seeds, args.replay_seeds = 1, 2, 2
        args.subset = args.subset or 1000
        args.eval_subset = args.eval_subset or 500
    args.methods = [m for m in args.methods.split(",") if m]
    for m in args.methods:
        if m not in METHODS:
            p.error(f"--methods: unknown {m!r}; choose from {', '.join(METHODS)}")
    return args


def main(argv=None) -> dict[str, Any]:
    args = parse_args(argv)
    report_dir = Path(args.out)
    out = report_dir / "pbt"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json*"):
        old.unlink()
    machine = machine_record()
    data = load_data(args)
    say(f"[pbt] data: {data_record(data)}")
    runs = []
    for master in range(args.master_seeds):
        for method in args.methods:
            runs.append(run_method(method, args, data, master, out))
    report = {"args": {k: v for k, v in vars(args).items()}, "machine": machine,
              "machine_line": machine_line(machine), "data": data_record(data),
              "runs": runs, "summary": summarise(runs)}
    write_json(report_dir / "pbt.json", report)
    write_text(report_dir / "pbt.md", markdown(report))
    say(f"[pbt] wrote {report_dir / 'pbt.md'} and {report_dir / 'pbt.json'}")
    return report


if __name__ == "__main__":
    main()
