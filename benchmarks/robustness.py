"""Robustness of the headline config on Fashion-MNIST: where the spread comes from, whether
synaptic resampling helps, and what a study costs next to the original's code.

The headline config (dendritic_simple, 12 neurons × 6 dendrites × 96 inputs, 7,198
parameters), trained by ``HyperparameterSearcher.robustness`` (dendrax.robustness):

(a) a crossed factorial study, ``--levels`` seeds for each stream (default 4 init × 4
    batch order × 4 rewiring = 64 runs): the random-effects variance components of the
    final test accuracy, each with its CI, next to the test set's binomial noise floor;
(b) a paired comparison of synaptic resampling on against off on ``--paired-seeds``
    shared seed tuples (default 32; the same initial weights and batch orders for both):
    the mean difference with its paired t and bootstrap CIs, P(on > off) with its
    bootstrap CI, and a plain sentence on whether the data support the original's claim
    that resampling helps;
(c) the wall time of the two dendrax studies next to the original's execution model
    (benchmarks/original_numpy.py: the original's training re-implemented in NumPy, one
    model at a time) doing the same runs, in the same process on the same data.
    ``--original-runs K`` trains K of those runs with it and scales the mean time per run
    to all of them (the report says so); 0 trains every one.

Test accuracy is what is reported; validation accuracy is what any choice would use.
Writes robustness.json and robustness-headline.md into ``--out`` (default docs/results).

    python benchmarks/robustness.py                        # the full study (hours on CPU)
    python benchmarks/robustness.py --quick --out /tmp/r   # 2×2×2, 4 paired seeds, 1 epoch
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

QUICK = {"levels": 2, "paired_seeds": 4, "epochs": 1, "subset": 2000, "eval_subset": 1000,
         "original_runs": 2}
CLAIM = ("the original toolkit's central claim: synaptic resampling (rewiring the weakest "
         "synapses to new inputs during training) improves accuracy")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(common.REPO / "docs" / "results"), help="output folder")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--levels", type=int, default=4,
                   help="seeds per stream in the factorial study (L: L×L×L runs)")
    p.add_argument("--paired-seeds", type=int, default=32,
                   help="shared seed tuples of the resampling on/off comparison")
    p.add_argument("--original-runs", type=int, default=4, metavar="K",
                   help="runs the original's code trains for the timing, scaled to all the "
                        "study's runs (0: every run; slow)")
    p.add_argument("--seed", type=int, default=0, help="the studies' master seed")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--log", default=None,
                   help="a search log: a rerun with the same log resumes the studies")
    p.add_argument("--quick", action="store_true",
                   help=f"a tiny run for CI: {QUICK['levels']}×{QUICK['levels']}×"
                        f"{QUICK['levels']} factorial, {QUICK['paired_seeds']} paired seeds, "
                        f"{QUICK['epochs']} epoch, {QUICK['subset']} training and "
                        f"{QUICK['eval_subset']} validation/test examples, "
                        f"{QUICK['original_runs']} original runs")
    common.add_data_arguments(p)
    args = p.parse_args(argv)
    if args.quick:
        args.levels, args.paired_seeds, args.epochs = (QUICK["levels"], QUICK["paired_seeds"],
                                                       QUICK["epochs"])
        args.subset = args.subset or QUICK["subset"]
        args.eval_subset = args.eval_subset or QUICK["eval_subset"]
        args.original_runs = min(args.original_runs, QUICK["original_runs"])
    if args.epochs < 1 or args.levels < 2 or args.paired_seeds < 2 or args.original_runs < 0:
        p.error("--epochs >= 1, --levels >= 2, --paired-seeds >= 2, --original-runs >= 0")
    return args


def _searcher(args, data):
    from dendrax.search import HyperparameterSearcher

    return HyperparameterSearcher(data=data, n_epochs=args.epochs, batch_size=args.batch_size,
                                  max_params=8000, min_param_ratio=0.8, seed=args.seed,
                                  verbose=False, log_path=args.log,
                                  resume=args.log is not None and Path(args.log).exists())


def _pair(ci) -> list[float]:
    return [float(ci[0]), float(ci[1])]


def factorial_study(searcher, args) -> tuple[dict[str, Any], Any]:
    levels = {"init": args.levels, "order": args.levels, "rewire": args.levels}
    t0 = time.perf_counter()
    report = searcher.robustness({"headline": common.HEADLINE}, design="factorial",
                                 levels=levels, seed=args.seed)
    wall = time.perf_counter() - t0
    scores = [float(x) for x in report.final("test")]
    summary = report.summaries("test").get("headline")
    vc = report.variance_components("test").get("headline")
    floor = report.noise_floor().get("headline", math.nan)
    finite = [s for s in scores if math.isfinite(s)]
    out = {
        "levels": levels, "runs": len(report.design), "scored": len(finite), "wall_s": wall,
        "test_scores": scores, "val_scores": [float(x) for x in report.final("val")],
        "summary": summary.to_dict() if summary else None,
        "noise_floor": {"n_test": report.n_test, "accuracy": summary.mean if summary else None,
                        "binomial_se": floor, "binomial_variance": floor ** 2},
        "variance_components": None if vc is None else {
            "total": vc.total, "grand_mean": vc.grand_mean, "replicates": vc.replicates,
            "method": vc.method,
            "components": [{"name": c.name, "factors": list(c.factors), "variance": c.variance,
                            "raw": c.raw, "share": c.share, "ci": _pair(c.ci),
                            "share_ci": _pair(c.share_ci), "df": c.df} for c in vc.components]},
        "seed_plan": report.seed_plan(0.005),
        "rewiring_rounds": _rounds(searcher),
    }
    return out, report


def paired_study(searcher, args) -> tuple[dict[str, Any], Any]:
    configs = {"on": common.HEADLINE, "off": {**common.HEADLINE, "synaptic_resampling": False}}
    t0 = time.perf_counter()
    report = searcher.robustness(configs, n_seeds=args.paired_seeds, design="paired",
                                 seed=args.seed)
    wall = time.perf_counter() - t0
    by_config = {name: [float(report.final("test")[r.index]) for r in report.design.runs
                        if report.design.names[r.config_index] == name] for name in configs}
    diff = report.paired_differences("test").get(("on", "off"))
    matrix = report.improvement("test")
    summaries = report.summaries("test")
    out = {
        "n_seeds": args.paired_seeds, "runs": len(report.design), "wall_s": wall,
        "test_scores": by_config,
        "on": summaries["on"].to_dict() if "on" in summaries else None,
        "off": summaries["off"].to_dict() if "off" in summaries else None,
        "difference": None if diff is None else {
            "n": diff.n, "mean": diff.mean, "std": diff.std, "t_ci": _pair(diff.t_ci),
            "bootstrap_ci": _pair(diff.bootstrap_ci), "p_value": diff.p_value},
        "p_on_better": None if matrix is None else {
            "probability": matrix.probability[0][1],
            "ci": [matrix.ci_low[0][1], matrix.ci_high[0][1]]},
    }
    out["rewiring_rounds"] = _rounds(searcher)
    out["verdict"], out["sentence"] = verdict(out)
    return out, report


def _rounds(searcher) -> int:
    """Rewiring rounds in each run: none means resampling on and off train the same."""
    from dendrax.spec import rewiring_rounds

    steps = searcher.n_epochs * (searcher.n_train // searcher.batch_size)
    return rewiring_rounds(steps, common.HEADLINE["steps_to_resample"])


def verdict(paired: dict[str, Any]) -> tuple[str, str]:
    d = paired["difference"]
    if paired["rewiring_rounds"] == 0:
        return "unknown", ("The runs were too short to rewire even once, so resampling on and "
                           "off trained the same models: this run says nothing on the claim.")
    if d is None:
        return "unknown", "Too few paired runs finished to compare resampling on and off."
    low, high = (100 * x for x in d["t_ci"])
    mean = 100 * d["mean"]
    where = (f"on − off = {mean:+.3f} points, {paired['n_seeds']} shared seeds, paired 95% CI "
             f"[{low:+.3f}, {high:+.3f}]")
    if low > 0:
        return "supported", (f"The data support the claim: resampling on scores higher than "
                             f"off on the same seeds ({where}).")
    if high < 0:
        return "contradicted", (f"The data contradict the claim: resampling off scores higher "
                                f"than on, on the same seeds ({where}).")
    return "not supported", (f"The data do not support the claim: the difference is not "
                             f"distinguishable from zero ({where}); any effect lies within "
                             f"that interval.")


def time_original(data, runs, args) -> dict[str, Any]:
    """The original's execution model on the same runs: one model at a time, each with one
    RandomState for all its randomness (its ``seed``; the original has no separate
    streams). Times K of them and scales the mean to all."""
    import numpy as np
    import original_numpy

    k = len(runs) if args.original_runs == 0 else min(args.original_runs, len(runs))
    step = max(1, len(runs) // k) if k else 1
    chosen = [runs[i] for i in range(0, len(runs), step)][:k]
    x_train = np.asarray(data.x_train, np.float64)
    x_test = np.asarray(data.x_test, np.float64)
    times = []
    for i, params in enumerate(chosen):
        config = {key: params[key] for key in original_numpy.DEFAULTS if key in params}
        t0 = time.perf_counter()
        original_numpy.train({**config, "seed": int(params["seed"]) & 0xFFFFFFFF}, x_train,
                             np.asarray(data.y_train), x_test, np.asarray(data.y_test),
                             n_epochs=args.epochs, batch_size=args.batch_size)
        times.append(time.perf_counter() - t0)
        common.say(f"[robustness] original run {i + 1}/{len(chosen)}: {times[-1]:.1f} s")
    per_run = statistics.fmean(times) if times else math.nan
    return {"runs_total": len(runs), "runs_timed": len(chosen), "scaled": len(chosen) < len(runs),
            "times_s": times, "s_per_run": per_run, "measured_s": sum(times),
            "estimated_s": per_run * len(runs)}


def markdown(result: dict[str, Any]) -> str:
    s, d = result["settings"], result["data"]
    f, p, w = result["factorial"], result["paired"], result["wall_time"]
    pct = lambda x: "–" if x is None or not math.isfinite(x) else f"{100 * x:.2f}"
    lines = [f"# Robustness of the headline config ({result['params']:,} parameters)", "",
             f"Machine: {common.machine_line(result['machine'])}", "",
             f"Command: `{result['machine']['command']}`", "",
             f"Data: {d['name']}, {d['n_train']:,} training / {d['n_val']:,} validation / "
             f"{d['n_test']:,} test examples ({d['source']}). {s['epochs']} epochs, batch "
             f"{s['batch_size']}, master seed {s['seed']}. Scores: each run's test accuracy "
             f"after the last epoch (validation is what a choice would use)."
             + (" **Quick mode: a smoke test, the numbers mean nothing.**" if s["quick"] else ""),
             "", f"## (a) Where the spread comes from: {f['runs']} runs, "
             f"{' × '.join(str(v) for v in f['levels'].values())} (init × order × rewire)", ""]
    summary = f["summary"] or {}
    floor = f["noise_floor"]
    lines += [f"Test accuracy {pct(summary.get('mean'))} ± {pct(summary.get('std'))} % "
              f"(mean ± std over {f['scored']} runs; IQM {pct(summary.get('iqm'))} %). "
              f"The test set's own binomial noise floor at this accuracy, "
              f"sqrt(p(1−p)/n) with n = {floor['n_test']:,}: {pct(floor['binomial_se'])} "
              f"points.", ""]
    vc = f["variance_components"]
    if vc:
        lines += ["| source | variance (pt²) | std (pt) | share | share 95% CI |",
                  "|---|---:|---:|---:|---|"]
        for c in vc["components"]:
            lines.append(f"| {c['name']} | {1e4 * c['variance']:.4f} | "
                         f"{100 * math.sqrt(c['variance']):.3f} | {100 * c['share']:.1f} % | "
                         f"[{100 * c['share_ci'][0]:.1f} %, {100 * c['share_ci'][1]:.1f} %] |")
        lines += ["", f"Binomial variance of the test set: {1e4 * floor['binomial_variance']:.4f}"
                  f" pt², part of every run's score. Random-effects ANOVA, one run per cell: the "
                  f"residual holds the three-way interaction. The literature expects roughly "
                  f"equal shares (Summers & Dinneen 2021); these are what was measured."
                  + (" No run lasted long enough to rewire, so the rewire factor varied "
                     "nothing here." if not f["rewiring_rounds"] else ""), ""]
    else:
        lines += ["Variance components: not every run finished, so the grid is incomplete.", ""]
    lines += [f"## (b) Synaptic resampling on vs off: {p['n_seeds']} shared seeds", "",
              f"Claim tested: {CLAIM}.", ""]
    if p["difference"]:
        dd, pr = p["difference"], p["p_on_better"]
        lines += [f"On: {pct(p['on']['mean'])} ± {pct(p['on']['std'])} %; off: "
                  f"{pct(p['off']['mean'])} ± {pct(p['off']['std'])} %. Paired difference "
                  f"on − off: {100 * dd['mean']:+.3f} points, paired t 95% CI "
                  f"[{100 * dd['t_ci'][0]:+.3f}, {100 * dd['t_ci'][1]:+.3f}], bootstrap "
                  f"[{100 * dd['bootstrap_ci'][0]:+.3f}, {100 * dd['bootstrap_ci'][1]:+.3f}], "
                  f"p = {dd['p_value']:.3g}. P(on > off) = {pr['probability']:.2f} "
                  f"[{pr['ci'][0]:.2f}, {pr['ci'][1]:.2f}].", ""]
    lines += [f"**{p['sentence']}**", "",
              "## (c) Wall time: the same runs, dendrax against the original's code", "",
              f"dendrax: {w['dendrax_runs']} runs (both studies, each one population call, "
              f"compile included) in {w['dendrax_s']:.1f} s. The original's code (the NumPy "
              f"re-implementation, one model at a time): {w['original']['s_per_run']:.1f} s "
              f"per run, measured on {w['original']['runs_timed']} run(s)"
              + (f" and scaled to all {w['original']['runs_total']}" if w["original"]["scaled"]
                 else "") + f": {w['original']['estimated_s']:.0f} s. "
              f"The original's time over dendrax's: **{w['ratio']:.1f}×** (measured in the "
              f"same process, on the same machine and data).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common.stop_on_sigterm()

    from dendrax.config import ModelConfig, count_params

    data = common.load_data(args)
    machine = common.machine_record()
    params = count_params(ModelConfig(**common.HEADLINE), data.in_dim, data.n_classes)
    common.say(f"[robustness] {common.machine_line(machine)}")
    common.say(f"[robustness] data: {data.summary().splitlines()[0]}")
    searcher = _searcher(args, data)
    common.say(f"[robustness] (a) factorial {args.levels}×{args.levels}×{args.levels} …")
    factorial, f_report = factorial_study(searcher, args)
    common.say(f"[robustness] (a) done in {factorial['wall_s']:.1f} s")
    common.say(f"[robustness] (b) paired on/off, {args.paired_seeds} seeds …")
    paired, p_report = paired_study(searcher, args)
    common.say(f"[robustness] (b) {paired['sentence']}")
    searcher.close()
    runs = [r.params for r in f_report.design.runs] + [r.params for r in p_report.design.runs]
    common.say(f"[robustness] (c) the original's code on {args.original_runs or len(runs)} "
               f"of the {len(runs)} runs …")
    original = time_original(data, runs, args)
    dendrax_s = factorial["wall_s"] + paired["wall_s"]
    result = {
        "benchmark": "robustness", "machine": machine, "data": common.data_record(data),
        "settings": {k: v for k, v in vars(args).items()}, "config": common.HEADLINE,
        "params": params, "factorial": factorial, "paired": paired,
        "wall_time": {"dendrax_s": dendrax_s, "dendrax_runs": len(runs), "original": original,
                      "ratio": original["estimated_s"] / dendrax_s},
        "reports": {"factorial": f_report.to_dict(), "paired": p_report.to_dict()},
    }
    result["total_s"] = time.perf_counter() - started
    common.write_json(out / "robustness.json", result)
    text = markdown(result)
    common.write_text(out / "robustness-headline.md", text)
    common.say(text)
    common.say(f"[robustness] wrote {out}/robustness.json, robustness-headline.md in "
               f"{result['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
