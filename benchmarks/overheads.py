"""Where a search's wall time goes: import, data, tracing, compiling, training, logging.

Each job runs in a fresh process, twice: *cold* (an empty compilation cache) and *warm*
(a second process with the cache the first one left). The child process listens to JAX's
own monitoring events, so the split is measured the same way for any version of dendrax:

- import: ``import dendrax`` and JAX;
- data: loading the dataset;
- trace / lower: JAX tracing the programs and lowering them to XLA;
- compile init / compile epoch: XLA compiling the population programs (``jit_init``,
  ``jit_epoch``), or loading them from the cache; "other" is every other small program;
- training: the rest of the trainer's time (training and evaluation run in one program);
- logging: writing the JSONL log.

``--repo PATH`` measures another checkout (for example the commit before a change) with
the same jobs, so a before/after table comes from one run on one machine:

    git worktree add /tmp/before <commit>
    python benchmarks/overheads.py --repo /tmp/before --label before --out before.json
    python benchmarks/overheads.py --label after --out after.json
    python benchmarks/overheads.py --table before.json after.json

Jobs: ``api16`` / ``api64`` (the headline config, 16 or 64 seeds × 2 epochs, through the
Python API), ``quickstart-sample`` / ``quickstart-full`` (``dendrax quickstart`` on the
embedded sample or on the full Fashion-MNIST), ``compare`` and ``thorough`` (the
scenarios; ``--epochs`` shortens them). ``--quick`` runs small versions of all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

JOBS = ("api16", "api64", "quickstart-sample", "quickstart-full", "compare", "thorough")
PHASES = ("import", "data", "trace", "lower", "compile_init", "compile_epoch",
          "compile_other", "training", "logging")


# ---- the child: one job, instrumented ---------------------------------------------------

def child(job: str, quick: bool, epochs: int | None, data_dir: str | None) -> dict:
    t_start = time.perf_counter()
    import jax  # noqa: F401 - counted in "import"
    from jax import monitoring

    import dendrax  # noqa: F401
    import dendrax.data

    phases = dict.fromkeys(PHASES, 0.0)
    counts = {"compiled": 0, "cache_hits": 0}
    phases["import"] = time.perf_counter() - t_start

    def on_duration(event, seconds, **kwargs):
        name = str(kwargs.get("fun_name", "")).removeprefix("jit(").rstrip(")")
        if event == "/jax/core/compile/jaxpr_trace_duration":
            phases["trace"] += seconds
        elif event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
            phases["lower"] += seconds
        elif event == "/jax/core/compile/backend_compile_duration":
            counts["compiled"] += 1
            kind = "init" if name.endswith("init") else "epoch" if name.endswith("epoch") \
                else "other"
            phases[f"compile_{kind}"] += seconds

    def on_event(event, **kwargs):
        if event == "/jax/compilation_cache/cache_hits":
            counts["cache_hits"] += 1

    monitoring.register_event_duration_secs_listener(on_duration)
    monitoring.register_event_listener(on_event)

    load = dendrax.data.load_dataset

    def timed_load(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return load(*args, **kwargs)
        finally:
            phases["data"] += time.perf_counter() - t0

    dendrax.data.load_dataset = timed_load
    from dendrax.search import log as search_log

    append = search_log.SearchLog.append

    def timed_append(self, records):
        t0 = time.perf_counter()
        try:
            return append(self, records)
        finally:
            phases["logging"] += time.perf_counter() - t0

    search_log.SearchLog.append = timed_append

    t_job = time.perf_counter()
    model_epochs = _run_job(job, quick, epochs, data_dir)
    wall = time.perf_counter() - t_start
    job_time = time.perf_counter() - t_job
    accounted = sum(phases[p] for p in PHASES if p not in ("import", "training"))
    phases["training"] = max(0.0, job_time - accounted)
    counts["compiled"] -= counts["cache_hits"]  # a cache hit also reports a "compile"
    return {"job": job, "wall": wall, "phases": phases, **counts,
            "model_epochs": model_epochs}


def _run_job(job: str, quick: bool, epochs: int | None, data_dir: str | None) -> int:
    """Run one job; returns the model-epochs it trained."""
    from dendrax import HyperparameterSearcher, cli

    log_dir = tempfile.mkdtemp(prefix="dendrax-overheads-")
    if job in ("api16", "api64"):
        seeds = (4 if job == "api16" else 8) if quick else int(job[3:])
        n_epochs = epochs or (1 if quick else 2)
        searcher = HyperparameterSearcher(
            dataset="fashion-mnist", data_dir=data_dir, subset_size=2000 if quick else None,
            n_epochs=n_epochs, seeds_per_config=seeds, verbose=False,
            log_path=os.path.join(log_dir, "log.jsonl"))
        searcher.grid_search({k: [v] for k, v in common.HEADLINE.items()})
        return seeds * n_epochs
    if job.startswith("quickstart"):
        if job == "quickstart-sample":
            from dendrax.data import SAMPLE_DIR

            os.environ["DENDRAX_DATA_DIR"] = str(SAMPLE_DIR)
        elif data_dir:
            os.environ["DENDRAX_DATA_DIR"] = data_dir
        status = cli.main(["quickstart", "--quiet"])
        assert status == 0, f"quickstart exited {status}"
        return -1  # the quickstart decides its own sweep
    args = ["scenario", job, "--quiet", "--max-params", "8000",
            "--log", os.path.join(log_dir, "log.jsonl")]
    if data_dir:
        args += ["--data-dir", data_dir]
    if quick or epochs:
        args += ["--n-epochs", str(epochs or 1)]
    if quick:
        args += ["--subset-size", "2000"]
    status = cli.main(args)
    assert status == 0, f"scenario {job} exited {status}"
    return -1


# ---- the parent: cold and warm processes ------------------------------------------------

def run(job: str, repo: Path, cache_home: Path, args) -> dict:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), "PYTHONPATH": str(repo),
           "PYTHONUNBUFFERED": "1"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    command = [sys.executable, __file__, "--child", job]
    if args.quick:
        command.append("--quick")
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True,
                          timeout=args.timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{job} failed in {repo}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(args) -> dict:
    repo = Path(args.repo).resolve() if args.repo else common.REPO
    results = []
    for job in args.jobs:
        with tempfile.TemporaryDirectory(prefix="dendrax-cache-") as cache_home:
            for state in ("cold", "warm"):
                common.say(f"{args.label}: {job} ({state}) ...")
                record = run(job, repo, Path(cache_home), args)
                record["state"] = state
                results.append(record)
                common.say(f"  {record['wall']:.1f} s, {record['compiled']} programs "
                           f"compiled, {record['cache_hits']} from the cache")
    return {"label": args.label, "repo_git": _git(repo), "quick": args.quick,
            "epochs": args.epochs, "machine": common.machine_record(), "results": results}


def _git(repo: Path) -> str | None:
    done = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    return done.stdout.strip() or None


def table(documents: list[dict]) -> str:
    """A markdown table: one row per (label, job, cold/warm)."""
    head = ("| run | job | state | wall s | " + " | ".join(PHASES) + " | compiled |")
    lines = [head, "|" + "---|" * (len(PHASES) + 5)]
    for doc in documents:
        for r in doc["results"]:
            cells = " | ".join(f"{r['phases'][p]:.1f}" for p in PHASES)
            lines.append(f"| {doc['label']} ({doc['repo_git']}) | {r['job']} | {r['state']} | "
                         f"{r['wall']:.1f} | {cells} | {r['compiled']} |")
    machine = documents[0]["machine"]
    lines.append("")
    lines.append(f"Machine: {common.machine_line(machine)}; load average at start "
                 f"{machine['load_average']}.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", default=",".join(JOBS),
                        help=f"comma-separated, from {', '.join(JOBS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small versions (CI)")
    parser.add_argument("--epochs", type=int, help="epochs for the scenarios and API jobs")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST files")
    parser.add_argument("--repo", help="the checkout to measure (default: this one)")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--out", help="write the measurements as JSON here")
    parser.add_argument("--table", nargs="+", metavar="JSON",
                        help="print the markdown table of earlier runs and exit")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per process")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.quick, args.epochs, args.data_dir)))
        return 0
    if args.table:
        print(table([json.loads(Path(p).read_text()) for p in args.table]))
        return 0
    args.jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    unknown = sorted(set(args.jobs) - set(JOBS))
    if unknown:
        parser.error(f"unknown jobs {unknown}; choose from {', '.join(JOBS)}")
    document = measure(args)
    if args.out:
        common.write_json(Path(args.out), document)
    print(table([document]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
