"""The benchmark scripts run end to end on tiny generated data and write sane files.

Each script runs in a subprocess, as a user runs it, on a few hundred generated
Fashion-MNIST-shaped images; the figures mean nothing, the plumbing is what is checked:
the JSON each script writes (its fields and the arithmetic between them), that the
markdown report shows the JSON's own numbers, the PNG plot, the skip rule and gpu.sh's
smoke mode. Report wording is not tested. Every test here starts processes that compile:
they are marked slow (tests/run.sh runs them; plain ``pytest`` skips them).
"""

import argparse
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
sys.path.insert(0, str(BENCH))
import throughput  # noqa: E402


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """600 training and 200 test images of 28×28, ten classes: enough for two steps."""
    folder = tmp_path_factory.mktemp("fashion-mnist")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 600), ("t10k", 200)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, size=(n, 28, 28))
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def _run(args, *, env=None, timeout=240):
    full_env = {k: v for k, v in os.environ.items() if k != "DENDRAX_DATA_DIR"}
    full_env.update(PYTHONUNBUFFERED="1", JAX_PLATFORMS="cpu", **(env or {}))
    done = subprocess.run(args, cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _check_machine(machine):
    for key in ("date", "command", "cpu", "cpu_cores", "backend", "device", "versions"):
        assert machine[key], key
    assert set(machine["versions"]) >= {"jax", "jaxlib", "flax", "optax", "numpy"}
    assert all(machine["versions"][m] for m in ("jax", "jaxlib", "flax", "optax", "numpy"))


def _check_png(path: Path):
    blob = path.read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n" and len(blob) > 5000


def test_throughput_writes_json_markdown_and_plot(data_dir, tmp_path):
    out = tmp_path / "tp"
    _run([sys.executable, str(BENCH / "throughput.py"), "--out", str(out),
                   "--data-dir", str(data_dir), "--populations", "1,2",
                   "--lowerings", "gather,dense,sparse", "--orders", "shared",
                   "--dtypes", "float32",
                   "--gather-max-population", "1", "--epochs", "1", "--loop-models", "1",
                   "--numpy-epochs", "1"])
    result = json.loads((out / "throughput.json").read_text())
    _check_machine(result["machine"])
    assert result["workload"]["params"] == 7198
    assert result["workload"]["n_train"] == 540 and result["workload"]["steps_per_epoch"] == 2
    cells = {(c["lowering"], c["population"]): c for c in result["cells"]}
    assert set(cells) == {(lowering, n) for lowering in ("gather", "dense", "sparse")
                          for n in (1, 2)}
    assert cells[("gather", 2)]["status"] == "skipped"
    assert "--gather-max-population" in cells[("gather", 2)]["reason"]
    for key in (("gather", 1), ("dense", 1), ("dense", 2), ("sparse", 1), ("sparse", 2)):
        c = cells[key]
        assert c["status"] == "ok", c
        assert c["model_epochs_per_s"] > 0 and c["compile_s"] > 0 and len(c["epoch_s"]) == 1
        assert c["alive"] == c["population"]
        assert c["vs_loop"] == pytest.approx(c["model_epochs_per_s"]
                                             / result["loop"]["model_epochs_per_s"])
        assert c["vs_numpy"] == pytest.approx(c["model_epochs_per_s"]
                                              / result["numpy"]["model_epochs_per_s"])
        assert 0 < c["compile_share_15"] < 1
    assert result["loop"]["models"] == 1 and result["loop"]["model_epochs_per_s"] > 0
    assert result["numpy"]["epochs"] == 1 and result["numpy"]["model_epochs_per_s"] > 0
    assert result["best"]["status"] == "ok" and result["interrupted"] is False
    # The report shows the JSON's numbers: each cell's rate, and the sparse ÷ dense ratio.
    md = (out / "throughput.md").read_text()
    for key in (("dense", 2), ("sparse", 2)):
        assert throughput._fmt(cells[key]["model_epochs_per_s"]) in md, key
    want = cells[("sparse", 2)]["model_epochs_per_s"] / cells[("dense", 2)]["model_epochs_per_s"]
    assert throughput._fmt(want) in md
    _check_png(out / "throughput.png")


def test_accuracy_writes_json_and_markdown(data_dir, tmp_path):
    out = tmp_path / "acc"
    _run([sys.executable, str(BENCH / "accuracy.py"), "--out", str(out),
          "--data-dir", str(data_dir), "--seeds", "2", "--epochs", "1",
          "--rows", "simple,soma-disabled"])
    result = json.loads((out / "accuracy.json").read_text())
    _check_machine(result["machine"])
    assert result["data"]["n_train"] == 540 and result["data"]["n_test"] == 200
    rows = {r["name"]: r for r in result["rows"]}
    assert list(rows) == ["simple", "soma-disabled"]
    assert rows["simple"]["params"] == 7198 and rows["soma-disabled"]["params"] == 2067
    assert rows["simple"]["readme"] == {"test_accuracy": 0.876, "params": 7890}
    assert rows["simple"]["original"]["test_accuracy"] == 0.8511
    for r in rows.values():
        assert r["seeds"] == 2 and r["epochs"] == 1 and len(r["per_seed"]) == 2
        assert [s["seed"] for s in r["per_seed"]] == [0, 1]
        for part in ("test", "val"):
            stats = r[part]
            assert 0 <= stats["min"] <= stats["mean"] <= stats["max"] <= 1 and stats["std"] >= 0
        assert r["wall_s"] > 0 and r["compile_s"] >= 0
    assert rows["soma-disabled"]["readme"]["params"] == 7654
    md = (out / "accuracy.md").read_text()
    for r in rows.values():
        assert f"{r['params']:,}" in md and f"{r['test']['mean']:.4f}" in md, r["name"]


def test_oracle_agreement_quick_mode(data_dir, tmp_path):
    out = tmp_path / "agree"
    _run([sys.executable, str(BENCH / "oracle_agreement.py"), "--quick", "--out", str(out),
          "--data-dir", str(data_dir)])
    result = json.loads((out / "agreement.json").read_text())
    _check_machine(result["machine"])
    assert (result["seeds"], result["epochs"]) == (2, 1)
    assert result["data"]["n_train"] == 600 and result["data"]["n_val"] == 0
    assert result["data"]["n_test"] == 200
    assert result["dendrax"]["precision"] == "float32"
    assert result["oracle"]["precision"] == "float64"
    for side in ("dendrax", "oracle"):
        accuracies = result[side]["test_accuracy"]
        assert len(accuracies) == 2 and all(0 <= a <= 1 for a in accuracies)
        assert result[side]["summary"]["mean"] == pytest.approx(sum(accuracies) / 2)
    c = result["comparison"]
    assert c["difference"] == pytest.approx(result["dendrax"]["summary"]["mean"]
                                            - result["oracle"]["summary"]["mean"])
    assert c["within_noise"] == (abs(c["z"]) < 2)
    md = (out / "agreement.md").read_text()
    for side in ("dendrax", "oracle"):
        assert f"{result[side]['summary']['mean']:.4f}" in md, side


@pytest.mark.skipif(shutil.which("timeout") is None, reason="gpu.sh needs coreutils' timeout")
def test_gpu_script_smoke_mode_writes_every_file(data_dir, tmp_path):
    out = tmp_path / "gpu"
    _run(["bash", str(BENCH / "gpu.sh"), str(data_dir)], env={
        "OUT": str(out), "GPU_SH_SMOKE": "1", "PYTHON": sys.executable,
        "GPU_SH_ACC_ARGS": "--rows simple", "GPU_SH_TP_ARGS":
            "--populations 1 --lowerings dense --orders shared --dtypes float32 "
            "--loop-models 0 --numpy-epochs 0"})
    assert {p.name for p in out.iterdir()} == {
        "nvidia-smi.txt", "gpu.log", "throughput.json", "throughput.md", "throughput.png",
        "accuracy.json", "accuracy.md"}
    assert json.loads((out / "throughput.json").read_text())["cells"][0]["status"] == "ok"
    assert json.loads((out / "accuracy.json").read_text())["rows"][0]["seeds"] == 2


def _args(**changes):
    base = dict(bf16_min_population=64, gather_max_population=512, epochs=3,
                warmup_epochs=1, cell_cap=60.0)
    return argparse.Namespace(**{**base, **changes})


def test_skip_rule_predicts_from_the_previous_size():
    previous = {"status": "ok", "population": 64, "model_epochs_per_s": 16.0, "compile_s": 4.0}
    dense = ("dense", "own", "float32")
    # 512 models at 16 model-epochs/s: 32 s an epoch, so not even warm-up + 1 fit in 60 s.
    timed, why = throughput.plan_cell(_args(), dense, 512, previous, None)
    assert timed == 0 and "predicted" in why and "--cell-cap" in why
    # 128 models: 8 s an epoch + 9 s compile: warm-up + 3 timed = 41 s fits.
    assert throughput.plan_cell(_args(), dense, 128, previous, None) == (3, None)
    # ... but with 30 s of the time budget left only warm-up + 1 timed epoch fit.
    assert throughput.plan_cell(_args(), dense, 128, previous, 30.0) == (1, None)
    assert "--time-budget" in throughput.plan_cell(_args(), dense, 128, previous, 15.0)[1]
    assert throughput.plan_cell(_args(), dense, 128, previous, -1.0) == (
        0, "the --time-budget is spent")
    gather = ("gather", "own", "float32")
    assert "--gather-max-population" in throughput.plan_cell(_args(), gather, 1024, None, None)[1]
    # bf16 below its minimum size is not part of the grid: no row and no message.
    assert throughput.plan_cell(_args(), ("dense", "own", "bfloat16"), 8, None, None) == (0, None)
    failed = {"status": "out of memory", "population": 4096}
    assert "did not run" in throughput.plan_cell(_args(), dense, 8192, failed, None)[1]


def test_overheads_quick_splits_the_wall_time_and_the_warm_run_compiles_nothing(data_dir,
                                                                                 tmp_path):
    out = tmp_path / "overheads.json"
    _run([sys.executable, str(BENCH / "overheads.py"), "--quick", "--jobs",
          "api16,quickstart-sample", "--data-dir", str(data_dir), "--out", str(out)],
         timeout=900)
    document = json.loads(out.read_text())
    _check_machine(document["machine"])
    runs = {(r["job"], r["state"]): r for r in document["results"]}
    assert set(runs) == {(j, s) for j in ("api16", "quickstart-sample")
                         for s in ("cold", "warm")}
    for (job, state), r in runs.items():
        phases = r["phases"]
        assert set(phases) == {"import", "data", "trace", "lower", "compile_init",
                               "compile_epoch", "compile_other", "training", "logging"}
        assert all(v >= 0 for v in phases.values())
        assert sum(phases.values()) <= r["wall"] * 1.05
        if state == "cold":
            assert r["compiled"] >= 2 and phases["compile_epoch"] > 0
        else:
            assert r["compiled"] == 0 and r["cache_hits"] >= 2  # a warm process compiles nothing
    assert runs[("api16", "cold")]["model_epochs"] == 4


def test_best_under_budget_quick_runs_both_stages_and_writes_every_file(data_dir, tmp_path):
    out = tmp_path / "best"
    _run([sys.executable, str(BENCH / "best_under_budget.py"), "--quick",
          "--out", str(out), "--data-dir", str(data_dir)],
         env={"PYTHONPATH": str(REPO)}, timeout=600)
    assert {"best-under-8k.json", "best-under-8k.md", "best-under-8k"} == \
        {p.name for p in out.iterdir()}
    run = out / "best-under-8k"
    names = {p.name for p in run.iterdir()}
    assert {"stage1.jsonl", "stage2-4ep.jsonl", "results.json", "pareto.png"} <= names, names
    _check_png(run / "pareto.png")

    result = json.loads((run / "results.json").read_text())
    _check_machine(result["machine"])
    stage1 = result["stage1"]
    assert stage1["n_configs"] == 6 and stage1["rungs"] == [1, 2, 4]  # halving ran
    assert stage1["n_mlp"] >= 1 and stage1["n_full"] < 6
    assert all(400 <= c["total_params"] <= 8000 for c in stage1["configs"])
    assert all("test_accuracy" not in c for c in stage1["configs"])  # test unread in stage 1
    assert [row["label"] for row in result["stage2"]][-1] == "headline"
    assert result["headline"]["total_params"] == 7198
    assert {"stage1", "stage2", "total"} <= set(result["wall_seconds"])

    best = json.loads((out / "best-under-8k.json").read_text())
    for kind in ("best_dendritic", "best_mlp"):
        entry = best[kind]
        assert {"params", "n_epochs", "total_params", "seeds", "test_mean", "test_std",
                "val_mean"} <= set(entry), kind
        assert len(entry["seeds"]) == 2 and entry["n_epochs"] == 4
        assert 0.0 <= entry["test_mean"] <= 1.0 and entry["test_std"] is not None
    assert best["best_mlp"]["params"]["architecture"] == "mlp"
    assert best["best_dendritic"]["params"]["architecture"] != "mlp"

    # The winner's params are a one-value grid: grid_search counts it as one config
    # of exactly the reported size (a fake trainer: nothing is trained here).
    from conftest import FakeTrainer, make_searcher
    searcher = make_searcher(FakeTrainer(), max_params=8000, min_param_ratio=0.05)
    searcher.grid_search(best["best_dendritic"]["params"])
    assert len(searcher.results) == 1
    assert searcher.results[0].total_params == best["best_dendritic"]["total_params"]

    # The report shows the JSON's winners and links the figure it wrote.
    text = (out / "best-under-8k.md").read_text()
    for kind in ("best_dendritic", "best_mlp"):
        assert f"{best[kind]['total_params']:,}" in text, kind
        assert f"{best[kind]['test_mean']:.4f}" in text, kind
    assert "(best-under-8k/pareto.png)" in text


def test_robustness_quick_writes_the_study_json(data_dir, tmp_path):
    out = tmp_path / "robust"
    _run([sys.executable, str(BENCH / "robustness.py"), "--quick", "--out", str(out),
          "--data-dir", str(data_dir)], timeout=600)
    result = json.loads((out / "robustness.json").read_text())
    assert (out / "robustness-headline.md").exists()
    _check_machine(result["machine"])
    assert result["params"] == 7198 and result["settings"]["quick"]
    assert result["data"]["n_train"] == 540 and result["data"]["n_test"] == 200

    f = result["factorial"]
    assert f["levels"] == {"init": 2, "order": 2, "rewire": 2} and f["runs"] == 8
    scores = [s for s in f["test_scores"] if s is not None and s == s]
    assert f["scored"] == len(scores) == 8
    assert f["summary"]["n"] == 8
    assert f["summary"]["mean"] == pytest.approx(np.mean(scores))
    assert f["summary"]["std"] == pytest.approx(np.std(scores, ddof=1))
    floor = f["noise_floor"]
    p = f["summary"]["mean"]
    assert floor["n_test"] == 200
    assert floor["binomial_se"] == pytest.approx(np.sqrt(p * (1 - p) / 200))
    assert floor["binomial_variance"] == pytest.approx(floor["binomial_se"] ** 2)
    vc = f["variance_components"]
    names = [c["name"] for c in vc["components"]]
    assert {"init", "order", "rewire", "residual"} <= set(names)
    assert vc["total"] == pytest.approx(sum(c["variance"] for c in vc["components"]))
    if vc["total"] > 0:
        assert sum(c["share"] for c in vc["components"]) == pytest.approx(1.0)
    for c in vc["components"]:
        assert c["variance"] >= 0 and c["ci"][0] <= c["ci"][1]
    # The factorial's runs really differ in their stream seeds, and share the seed.
    runs = result["reports"]["factorial"]["design"]["runs"]
    assert len({(r["params"]["init_seed"], r["params"]["order_seed"],
                 r["params"]["rewire_seed"]) for r in runs}) == 8
    assert len({r["params"]["seed"] for r in runs}) == 1

    pr = result["paired"]
    assert pr["n_seeds"] == 4 and pr["runs"] == 8
    on, off = np.array(pr["test_scores"]["on"]), np.array(pr["test_scores"]["off"])
    d = pr["difference"]
    assert d["n"] == 4 and d["mean"] == pytest.approx(np.mean(on - off))
    assert d["std"] == pytest.approx(np.std(on - off, ddof=1))
    assert d["t_ci"][0] <= d["mean"] <= d["t_ci"][1]
    wins = np.mean([(a > b) + 0.5 * (a == b) for a in on for b in off])
    assert pr["p_on_better"]["probability"] == pytest.approx(wins)
    # 2 steps, fewer than steps_to_resample: no round, so no verdict on the claim.
    assert pr["rewiring_rounds"] == f["rewiring_rounds"] == 0
    assert pr["verdict"] == "unknown"
    np.testing.assert_array_equal(on, off)  # resampling never ran: the same models
    paired_runs = result["reports"]["paired"]["design"]["runs"]
    seeds = {}
    for r in paired_runs:  # on and off share each seed tuple
        seeds.setdefault(r["levels"]["seed"], set()).add(r["params"]["seed"])
    assert len(seeds) == 4 and all(len(s) == 1 for s in seeds.values())

    w = result["wall_time"]
    assert w["dendrax_runs"] == 16
    assert w["dendrax_s"] == pytest.approx(f["wall_s"] + pr["wall_s"]) and w["dendrax_s"] > 0
    o = w["original"]
    assert o["runs_total"] == 16 and o["runs_timed"] == 2 and o["scaled"]
    assert o["measured_s"] == pytest.approx(sum(o["times_s"]))
    assert o["s_per_run"] == pytest.approx(o["measured_s"] / 2)
    assert o["estimated_s"] == pytest.approx(o["s_per_run"] * 16)
    assert w["ratio"] == pytest.approx(o["estimated_s"] / w["dendrax_s"])


@pytest.mark.parametrize("ci, expected", [((0.001, 0.004), "supported"),
                                          ((-0.004, -0.001), "contradicted"),
                                          ((-0.002, 0.003), "not supported")])
def test_robustness_verdict_follows_the_paired_interval(ci, expected):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_robustness", BENCH / "robustness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paired = {"rewiring_rounds": 24, "n_seeds": 32,
              "difference": {"mean": sum(ci) / 2, "t_ci": list(ci)}}
    verdict, sentence = module.verdict(paired)
    assert verdict == expected and sentence
