"""The bucket planner's CPU cost model, measured: seconds per epoch of a few shapes at a few
population sizes, and the least-squares fit of ``dendrax.plan.CostModel``.

Each cell trains one population of one shape (each model its own batch order, as in a
search) for ``--epochs`` epochs on the full training set and records the run time per
epoch, compile excluded. The shapes pull the model's terms apart: a tiny dendritic model
(the per-member cost), the headline config (synapses), one with many short branches (the
per-branch cost) and an mlp (XLA's GEMMs). The fit is over the populations of 8 and more
models, as the planner weighs buckets, not lone models. Compiles are cold (the persistent
cache is off). It prints the table, the fitted figures and the figures dendrax uses, and
writes the JSON.

    python benchmarks/plan_costs.py --out docs/results/cpu/plan-costs.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SHAPES = {
    "tiny": dict(n_neurons=2, n_dendrites=2, n_dendrite_inputs=100),
    "headline": dict(n_neurons=12, n_dendrites=6, n_dendrite_inputs=96),
    "many-branches": dict(n_neurons=40, n_dendrites=40, n_dendrite_inputs=4),
    "mlp9": dict(architecture="mlp", hidden_dim=9),
}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_arguments(p)
    p.add_argument("--populations", default="1,8,32")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", default=None, help="JSON file to write")
    args = p.parse_args(argv)
    # Cold compiles, as the planner's ``compile`` figure means: no persistent cache.
    os.environ["DENDRAX_COMPILATION_CACHE"] = "0"
    import jax
    import numpy as np

    from dendrax.nn.lowerings import resolve_lowering
    from dendrax.population.runner import prepare_population, run_epochs
    from dendrax.config import ModelConfig
    from dendrax.plan import cost_model, cost_terms
    from dendrax.spec import TrainSettings

    machine = common.machine_record()
    data = common.load_data(args)
    n_train = len(data.x_train)
    settings = TrainSettings(n_epochs=args.epochs, padding="exact")
    lowering = resolve_lowering(settings.lowering, matmul_dtype=settings.matmul_dtype)
    cells = []
    for name, fields in SHAPES.items():
        for n in (int(x) for x in args.populations.split(",")):
            configs = [ModelConfig(seed=s, **fields) for s in range(n)]
            prepared = prepare_population(configs, data, settings)
            state = jax.block_until_ready(prepared.init(prepared.hyper, prepared.keys))
            t0 = time.perf_counter()
            jax.block_until_ready(run_epochs(prepared, state, 0, args.epochs, {}))
            epoch = (time.perf_counter() - t0) / args.epochs
            cells.append({"shape": name, "models": n, "epoch_seconds": epoch,
                          "compile_seconds": prepared.compile_time,
                          # the fit's columns: member, synapses, branches, linear
                          "terms": [1, *cost_terms(configs[0].shape(data.in_dim),
                                                   data.in_dim, data.n_classes, lowering)]})
            common.say(f"[plan-costs] {name:14s} {n:3d} models: {epoch:7.3f} s an epoch, "
                       f"compile {prepared.compile_time:.1f} s")
    fit_rows = [c for c in cells if c["models"] >= 8]
    a = np.array([c["terms"] for c in fit_rows])
    b = np.array([c["epoch_seconds"] / c["models"] / n_train for c in fit_rows])
    fitted, *_ = np.linalg.lstsq(a, b, rcond=None)
    used = cost_model("cpu" if machine["backend"] == "cpu" else "gpu", lowering)
    fit = dict(zip(("member", "connection", "unit", "linear"), map(float, fitted)))
    compiles = [c["compile_seconds"] for c in cells if c["compile_seconds"] > 0]
    fit["compile"] = float(np.median(compiles)) if compiles else None
    common.say(f"[plan-costs] lowering {lowering}; fitted (s per member-sample): "
               + ", ".join(f"{k} {v:.3g}" for k, v in fit.items() if v is not None))
    common.say(f"[plan-costs] dendrax uses: member {used.member:.3g}, connection "
               f"{used.connection:.3g}, unit {used.unit:.3g}, linear {used.linear:.3g}, "
               f"compile {used.compile:.3g}")
    report = {"machine": machine, "lowering": lowering, "epochs": args.epochs,
              "n_train": n_train, "cells": cells, "fit": fit,
              "used": {"member": used.member, "connection": used.connection,
                       "unit": used.unit, "linear": used.linear, "compile": used.compile}}
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        common.write_json(out, report)
    return report


if __name__ == "__main__":
    main()
