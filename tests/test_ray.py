"""The Ray executor on a local two-CPU Ray instance: same results as the local trainer,
results streamed to the search log as tasks finish, resume, and a worker killed mid-task.
One slow test starts a real two-node cluster (``ray start``, token authentication) and
kills its worker node mid-task.

Every population here has one shape and two members (4 trials in chunks of 2), so each
worker process compiles one program; the workers share a private compilation cache.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dendrax import cli
from dendrax.config import ModelConfig
from dendrax.errors import ConfigError
from dendrax.data import Dataset
from dendrax.search.executors import RayExecutor, _chunks, bucket_task
from dendrax.search import HyperparameterSearcher, read_log, trial_key
from dendrax.spec import TrainSettings
from conftest import TINY_DATA

GRID = {"n_neurons": [4], "n_dendrites": [3], "n_dendrite_inputs": [16], "lr": [5e-4, 1e-3]}
SEEDS = 2  # 2 configs × 2 seeds = 4 trials: two tasks of two models


def generated_dataset() -> Dataset:
    """A real dendrax Dataset (what a search ships to the workers), from generated arrays."""
    a = TINY_DATA
    return Dataset(name="generated", x_train=a.x_train, y_train=a.y_train, x_val=a.x_val,
                   y_val=a.y_val, x_test=a.x_test, y_test=a.y_test,
                   class_names=tuple(str(i) for i in range(10)), image_shape=(8, 8, 1),
                   source="tests.helpers.prototype_data")


DATA = generated_dataset()


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    try:
        import ray
    except ImportError:
        pytest.fail("Ray is not installed: pip install 'dendrax[ray]' (the test extra "
                    "includes it)")
    cache = tmp_path_factory.mktemp("jax-cache")  # never the user's cache
    try:
        ray.init(num_cpus=2, num_gpus=0, include_dashboard=False,
                 _node_ip_address="127.0.0.1", object_store_memory=128 << 20,
                 runtime_env={"env_vars": {"JAX_COMPILATION_CACHE_DIR": str(cache)}})
    except Exception as error:  # noqa: BLE001 - an environment problem, reported plainly
        pytest.fail(f"could not start a local Ray instance (ray.init(num_cpus=2) on "
                    f"127.0.0.1): {type(error).__name__}: {error}")
    # One task first: its worker compiles the tests' program (one shape, two members) and
    # writes it to the shared cache, so the other worker loads it rather than compiling it
    # at the same time on the same two cores.
    warm = [ModelConfig(n_neurons=4, n_dendrites=3, n_dendrite_inputs=16, seed=s)
            for s in (100, 101)]
    RayExecutor()(warm, DATA, TrainSettings(n_epochs=1, batch_size=32), log=None)
    yield ray
    ray.shutdown()


def searcher(log_path, trainer=None, resume=False, **kwargs):
    return HyperparameterSearcher(max_params=400, min_param_ratio=0.5, n_epochs=1,
                                  batch_size=32, seeds_per_config=SEEDS, verbose=False,
                                  data=DATA, log_path=str(log_path), resume=resume,
                                  trainer=trainer, **kwargs)


def logged_trials(path) -> list[dict]:
    return [json.loads(line) for line in open(path) if '"type": "trial"' in line]


def assert_same_histories(a: dict, b: dict):
    """Two {trial key: record} maps hold the same trials with the same histories."""
    assert sorted(a) == sorted(b)
    for key in a:
        for metric, values in a[key]["history"].items():
            np.testing.assert_allclose(np.asarray(values, float),
                                       np.asarray(b[key]["history"][metric], float),
                                       rtol=0, atol=1e-6, err_msg=f"{key} {metric}")


# ---- no Ray needed ------------------------------------------------------------------

def test_chunks_are_near_equal_and_keep_every_member():
    assert _chunks(range(4), None) == [(0, 1, 2, 3)]
    assert _chunks(range(4), 2) == [(0, 1), (2, 3)]
    assert _chunks(range(10), 4) == [(0, 1, 2, 3), (4, 5, 6), (7, 8, 9)]
    assert _chunks(range(3), 8) == [(0, 1, 2)]


def test_searcher_executor_arguments(tmp_path):
    s = searcher(tmp_path / "a.jsonl", executor="ray", ray_address="auto")
    assert isinstance(s.trainer, RayExecutor) and s.trainer.address == "auto"
    with pytest.raises(ConfigError, match="not both"):
        searcher(tmp_path / "b.jsonl", trainer=lambda *a, **k: [], executor="ray")
    with pytest.raises(ConfigError, match="needs executor='ray'"):
        searcher(tmp_path / "c.jsonl", ray_address="auto")
    with pytest.raises(ConfigError, match="choose local or ray"):
        searcher(tmp_path / "d.jsonl", executor="dask")


def test_cli_passes_executor_and_address(tmp_path, monkeypatch):
    seen = {}

    class Recorder:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def grid_search(self, *args, **kwargs):
            pass

        def print_results(self, n):
            pass

    monkeypatch.setattr(cli, "HyperparameterSearcher", Recorder)
    monkeypatch.setattr("dendrax.population.compile_cache.enable_compilation_cache",
                        lambda: None)
    (tmp_path / "spec.json").write_text(json.dumps({"grid": GRID}))
    assert cli.main(["search", str(tmp_path / "spec.json"), "--executor", "ray",
                     "--address", "10.0.0.1:6379"]) == 0
    assert seen["executor"] == "ray" and seen["ray_address"] == "10.0.0.1:6379"


def test_successive_halving_is_refused_before_any_ray_call():
    settings = TrainSettings(n_epochs=3, batch_size=32, halving_eta=2)
    with pytest.raises(ConfigError, match="local executor"):
        RayExecutor(address="unused:1")([ModelConfig()], DATA, settings)


def test_importing_the_executor_imports_neither_ray_nor_jax():
    code = ("import sys, dendrax.search.executors, dendrax.search; "
            "print(sorted({'jax', 'ray'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


# ---- on a local Ray instance ----------------------------------------------------------

DRIVER = """
import json, sys
sys.path.insert(0, {tests!r})
import ray
ray.init(address={address!r}, runtime_env={runtime_env!r})
from test_ray import GRID, searcher
from dendrax.search.executors import RayExecutor
searcher({log!r}, trainer=RayExecutor(chunk_models=2)).grid_search(GRID)
print(json.dumps(sorted({{"jax", "jaxlib"}} & set(sys.modules))))
"""


@pytest.mark.slow  # a local Ray instance and its workers, which compile
def test_a_ray_search_never_imports_jax_on_the_driver(ray_cluster, tmp_path):
    """The plan is made on a worker too: JAX on the driver could take the memory of a GPU
    that the head node shares with its workers."""
    context = ray_cluster.get_runtime_context()
    script = DRIVER.format(tests=os.path.dirname(os.path.abspath(__file__)),
                           address=context.gcs_address, runtime_env=context.runtime_env,
                           log=str(tmp_path / "search.jsonl"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert len(logged_trials(tmp_path / "search.jsonl")) == 4

@pytest.mark.slow  # a local Ray instance and its workers, which compile
def test_ray_and_local_runs_of_one_spec_agree(ray_cluster, tmp_path):
    searcher(tmp_path / "local.jsonl").grid_search(GRID)
    remote = searcher(tmp_path / "ray.jsonl", trainer=RayExecutor(chunk_models=2))
    remote.grid_search(GRID)
    local = read_log(str(tmp_path / "local.jsonl")).trials
    on_ray = read_log(str(tmp_path / "ray.jsonl")).trials
    assert len(local) == 4
    assert_same_histories(local, on_ray)
    assert {r["bucket_size"] for r in on_ray.values()} == {2}  # trained in chunks of 2


@pytest.mark.slow  # a local Ray instance and its workers, which compile
def test_results_stream_into_the_log_as_each_task_finishes(ray_cluster, tmp_path):
    """One task waits until the driver has logged the other task's trials: so results are
    logged as tasks finish, not when the whole call returns (no timing involved)."""
    log = tmp_path / "search.jsonl"
    released = tmp_path / "first-task-logged"
    slow_seed = 0  # the task holding the lr=5e-4, seed-0 trial waits

    def wait_for_the_other_task(configs, *args):
        if any(c.seed == slow_seed and c.lr == 5e-4 for c in configs):
            deadline = time.monotonic() + 120
            while not os.path.exists(released):
                if time.monotonic() > deadline:
                    raise TimeoutError("the other task's results never reached the log")
                time.sleep(0.05)
        return bucket_task(configs, *args)

    executor = RayExecutor(chunk_models=2)
    executor.bucket_task = wait_for_the_other_task
    calls = []

    def spy(configs, data, settings, *, progress=None, on_bucket_done=None, on_plan=None,
            log=None):
        def done(outcomes):
            on_bucket_done(outcomes)  # the searcher appends them to the log
            calls.append((len(outcomes), len(logged_trials(tmp_path / "search.jsonl"))))
            released.touch()
        return executor(configs, data, settings, progress=progress, on_bucket_done=done,
                        on_plan=on_plan, log=log)

    searcher(log, trainer=spy).grid_search(GRID)
    assert calls == [(2, 2), (2, 4)]  # one call per task, each logged before the next
    trials = logged_trials(log)
    assert len(trials) == 4 and len({t["key"] for t in trials}) == 4


@pytest.mark.slow  # a local Ray instance and its workers, which compile
def test_resume_trains_only_the_missing_trials(ray_cluster, tmp_path):
    full = tmp_path / "full.jsonl"
    searcher(full, trainer=RayExecutor(chunk_models=2)).grid_search(GRID)
    lines = full.read_text().splitlines(keepends=True)
    assert lines[0].startswith('{"type": "header"') and len(lines) == 5
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(lines[:3]))  # the header and the first task's two trials
    kept = {json.loads(line)["key"] for line in lines[1:3]}

    executor, asked = RayExecutor(chunk_models=2), []

    def recording(configs, *args, **kwargs):
        asked.extend(trial_key(c) for c in configs)
        return executor(configs, *args, **kwargs)

    searcher(partial, trainer=recording, resume=True).grid_search(GRID)
    every = read_log(str(full)).trials
    assert sorted(asked) == sorted(set(every) - kept)
    trials = logged_trials(partial)
    assert len(trials) == 4 and len({t["key"] for t in trials}) == 4
    assert_same_histories(read_log(str(partial)).trials, every)


@pytest.mark.slow  # a local Ray instance and its workers, which compile
def test_a_task_whose_worker_is_killed_is_retried_and_logged_once(ray_cluster, tmp_path):
    marker, attempts = tmp_path / "killed-once", tmp_path / "attempts"

    def killed_once(configs, *args):
        with open(attempts, "a") as f:
            f.write(json.dumps([c.seed for c in configs]) + "\n")
        outcomes = bucket_task(configs, *args)  # trained, but never returned: killed first
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return outcomes
        os.kill(os.getpid(), signal.SIGKILL)

    executor = RayExecutor(chunk_models=2, max_retries=2)
    executor.bucket_task = killed_once
    log = tmp_path / "search.jsonl"
    searcher(log, trainer=executor).grid_search(GRID)

    assert marker.exists() and len(attempts.read_text().splitlines()) == 3  # 2 tasks + 1 rerun
    trials = logged_trials(log)
    assert len(trials) == 4 and len({t["key"] for t in trials}) == 4
    configs = [ModelConfig.from_dict(t["config"]) for t in trials]
    from dendrax.population import train_configs

    reference = train_configs(configs, DATA, TrainSettings(n_epochs=1, batch_size=32),
                              log=None)
    for t, outcome in zip(trials, reference):
        for metric, values in outcome.history.items():
            np.testing.assert_allclose(np.asarray(t["history"][metric], float), values,
                                       rtol=0, atol=1e-6)


@pytest.mark.slow  # a local Ray instance and its workers, which compile
def test_a_failing_task_fails_the_call_after_the_others_are_logged(ray_cluster, tmp_path):
    def fails_for_lr_1e3(configs, *args):
        if any(c.lr == 1e-3 for c in configs):
            raise ValueError("this bucket cannot train")
        return bucket_task(configs, *args)

    executor = RayExecutor(chunk_models=2)
    executor.bucket_task = fails_for_lr_1e3
    log = tmp_path / "search.jsonl"
    with pytest.raises(ValueError, match="this bucket cannot train"):
        searcher(log, trainer=executor).grid_search(GRID)
    trials = logged_trials(log)
    assert len(trials) == 2 and {t["config"]["lr"] for t in trials} == {5e-4}


# ---- a real two-node cluster ----------------------------------------------------------

# The driver of the two-node test: a search with executor="ray" on the cluster at ADDRESS.
# Its bucket tasks say where they run (the node's DENDRAX_TEST_NODE) in STARTED; a task on
# the worker node then waits to be killed with its node, and the head's first task holds
# the head's only CPU until then, so that the other task must go to the worker node.
CLUSTER_DRIVER = """
import json, os, sys, time
sys.path.insert(0, {tests!r})
from test_ray import GRID, searcher
from dendrax.search.executors import bucket_task

STARTED = {started!r}


def wait_on_the_worker_node(configs, *args):
    node = os.environ.get("DENDRAX_TEST_NODE", "?")
    with open(STARTED, "a") as f:
        f.write(json.dumps({{"node": node, "pid": os.getpid(),
                            "trials": sorted([c.lr, c.seed] for c in configs)}}) + "\\n")
    deadline = time.monotonic() + 240
    if node == "worker":
        while time.monotonic() < deadline:
            time.sleep(0.5)  # mid-task: the test kills this node now
        raise TimeoutError("the worker node was never killed")
    while '"worker"' not in open(STARTED).read() and time.monotonic() < deadline:
        time.sleep(0.2)
    return bucket_task(configs, *args)


s = searcher({log!r}, executor="ray", ray_address={address!r})
s.trainer.chunk_models = 2
s.trainer.max_retries = 2
s.trainer.bucket_task = wait_on_the_worker_node
s.grid_search(GRID)
print("DONE", len(s.results))
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session_pids(sid: int) -> list[int]:
    """The processes of session ``sid``: a node started by ``ray start`` in its own
    session keeps its raylet, agents and worker processes there."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # a zombie is dead, but not reaped
            pids.append(int(name))
    return pids


def _kill_session(sid: int) -> None:
    for _ in range(3):  # a second pass for anything spawned while the first one ran
        for pid in _session_pids(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)


def _start_node(args, env, sessions) -> None:
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    proc = subprocess.Popen([ray_cli, "start", *args], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sessions.append(proc.pid)  # its session id: every process of the node
    try:
        out, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"ray start {' '.join(args)} did not return in 180 s")
    if proc.returncode != 0:
        pytest.fail(f"ray start {' '.join(args)} failed:\n{out[-3000:]}")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds a node's processes "
                                                                 "in /proc")
def test_a_search_survives_a_worker_node_killed_mid_task(tmp_path):
    """Two nodes of one cluster on this machine (a head and a worker node, each with one
    CPU, token authentication as docs/cluster.md sets it up); the worker node is killed
    with SIGKILL, raylet and all, while it runs a task. Ray reruns the task on the head,
    and the search finishes with every trial logged once."""
    if not os.path.exists(os.path.join(os.path.dirname(sys.executable), "ray")):
        pytest.fail("Ray's command-line tool is not installed: pip install 'dendrax[ray]'")
    import secrets
    import shutil
    import tempfile

    base = tempfile.mkdtemp(prefix="dxray-", dir="/tmp")  # short: Ray's socket paths
    port, client_port = _free_port(), _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0", "JAX_PLATFORMS": "cpu",
           "JAX_COMPILATION_CACHE_DIR": os.path.join(base, "jax-cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [
               os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
               os.environ.get("PYTHONPATH")]))}
    node = ["--num-cpus=1", "--num-gpus=0", "--object-store-memory=100000000",
            "--disable-usage-stats"]
    started, log = tmp_path / "started.jsonl", tmp_path / "search.jsonl"
    sessions, driver = [], None
    try:
        _start_node(["--head", f"--port={port}", f"--ray-client-server-port={client_port}",
                     "--include-dashboard=false", f"--temp-dir={base}/head", *node],
                    {**env, "DENDRAX_TEST_NODE": "head"}, sessions)
        _start_node([f"--address=127.0.0.1:{port}", f"--temp-dir={base}/worker", *node],
                    {**env, "DENDRAX_TEST_NODE": "worker"}, sessions)
        worker_session = sessions[1]
        script = CLUSTER_DRIVER.format(tests=os.path.dirname(os.path.abspath(__file__)),
                                       started=str(started), log=str(log),
                                       address=f"127.0.0.1:{port}")
        driver = subprocess.Popen([sys.executable, "-c", script], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 240
        while not (started.exists() and '"worker"' in started.read_text()):
            if driver.poll() is not None or time.monotonic() > deadline:
                out, err = driver.communicate(timeout=30)
                pytest.fail(f"no task started on the worker node:\n{out}\n{err[-3000:]}")
            time.sleep(0.2)
        _kill_session(worker_session)
        assert not _session_pids(worker_session)

        out, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err[-3000:]
        assert out.strip().splitlines()[-1] == "DONE 2"
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.communicate(timeout=30)
        for sid in sessions:
            _kill_session(sid)
        shutil.rmtree(base, ignore_errors=True)

    runs = [json.loads(line) for line in started.read_text().splitlines()]
    on_worker = [r["trials"] for r in runs if r["node"] == "worker"]
    assert len(on_worker) == 1  # killed mid-task there...
    assert on_worker[0] in [r["trials"] for r in runs if r["node"] == "head"]  # ...rerun here
    contents = read_log(str(log))
    assert contents.torn_line is None and len(contents.headers) == 1
    assert len(contents.trials) == 4 == len(logged_trials(log))  # each trial logged once
    assert sorted([t["config"]["lr"], t["config"]["seed"]] for t in contents.trials.values()) \
        == sorted(trial for r in runs if r["node"] == "head" for trial in r["trials"])
