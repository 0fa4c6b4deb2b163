"""Shared test support: small generated datasets, a stand-in Dataset and a fake trainer.

The fake trainer honours the Trainer contract (dendrax.spec.Trainer: a bucket plan
handed to on_plan, one on_bucket_done call per bucket, outcomes in input order) but
computes accuracies from a hash of the config, so searcher tests run in milliseconds
without JAX. Test modules import these names from ``conftest``.

The fuzz test's session tally is a plugin of its own (tests/fuzz_plugin.py).

JAX's persistent compilation cache for the tests is pinned here, before anything imports
JAX: ``tests/.jax-cache`` (ignored by git) unless ``$JAX_COMPILATION_CACHE_DIR`` names
another folder. It is explicit, never the user's own cache, and shared by reruns and by
the processes the tests start (they inherit the variable).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

from pathlib import Path

import numpy as np


pytest_plugins = ["fuzz_plugin"]


def pytest_configure(config):
    """Pin the tests' JAX cache before any test module imports JAX (a hook, not an
    import-time side effect: the scripts some tests run import this module too, and set
    their own cache folders)."""
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).parent / ".jax-cache"))

from dendrax.search import HyperparameterSearcher
from dendrax.config import ModelConfig, count_params
from dendrax.plan import plan_buckets
from dendrax.spec import Progress, TrialOutcome


@dataclasses.dataclass(frozen=True)
class ArrayData:
    """Duck-typed stand-in for dendrax.data.Dataset: the arrays the trainer reads, and
    what the searcher and the command line print about a dataset."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple = (28, 28, 1)
    n_classes: int = 10
    name: str = "generated"
    is_sample: bool = False
    source: str = "generated"

    @property
    def in_dim(self) -> int:
        return self.x_train.shape[1]

    def summary(self) -> str:
        return f"{self.name} dataset, {self.in_dim} features"


def prototype_data(n_train=1024, n_val=256, n_test=256, in_dim=784, n_classes=10,
                   noise=1.0, seed=0, image_shape=(28, 28, 1)) -> ArrayData:
    """Classes are noisy copies of random prototypes: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(n_classes, in_dim)).astype(np.float32)

    def split(n):
        y = rng.integers(0, n_classes, n).astype(np.int32)
        x = (protos[y] + noise * rng.normal(size=(n, in_dim))).astype(np.float32)
        return x, y

    return ArrayData(*split(n_train), *split(n_val), *split(n_test),
                     image_shape=image_shape, n_classes=n_classes)


# The two datasets the training tests share. A compiled program's key (ProgramSpec) holds
# the training and evaluation sizes, so modules that train on the same one reuse each
# other's programs: from the in-memory cache within a session, from the persistent cache
# across sessions. Read-only arrays: no test may change them.
SMALL_DATA = prototype_data(n_train=640, n_val=64, n_test=64, in_dim=64, image_shape=(8, 8, 1))
TINY_DATA = prototype_data(n_train=256, n_val=64, n_test=64, in_dim=64, image_shape=(8, 8, 1))
for _array in (*dataclasses.astuple(SMALL_DATA)[:6], *dataclasses.astuple(TINY_DATA)[:6]):
    _array.flags.writeable = False


def fake_data(in_dim: int = 784, n_classes: int = 10, is_sample: bool = True) -> ArrayData:
    """All-zero arrays for searches with a FakeTrainer, which never reads them: 512
    training examples (more than the default batch size, which the searcher checks), 16
    validation and 32 test examples, labels cycling through the classes."""

    def split(n):
        return np.zeros((n, in_dim), np.float32), np.arange(n) % n_classes

    return ArrayData(*split(512), *split(16), *split(32), n_classes=n_classes, name="fake",
                     is_sample=is_sample, source="fake")


def unit_hash(*parts) -> float:
    """A deterministic number in [0, 1) from any JSON-able parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16 ** 12


def hashed_scores(config: ModelConfig) -> tuple[float, float]:
    """(val, test) accuracy: a per-config level plus small per-seed noise."""
    fields = config.to_dict()
    seed = fields.pop("seed")
    level = 0.70 + 0.2 * unit_hash(fields)
    return (level + 0.01 * unit_hash(fields, seed, "val"),
            level + 0.01 * unit_hash(fields, seed, "test"))


class FakeTrainer:
    """Records every call; ``score(config) -> (val_acc, test_acc)``; ``diverges(config)``;
    ``fail_after_buckets`` raises after that many buckets (a run killed mid-search)."""

    def __init__(self, score=hashed_scores, diverges=lambda config: False,
                 fail_after_buckets=None):
        self.score = score
        self.diverges = diverges
        self.fail_after_buckets = fail_after_buckets
        self.calls: list[list[ModelConfig]] = []
        self.settings = []

    @property
    def trained(self) -> list[ModelConfig]:
        return [c for call in self.calls for c in call]

    def __call__(self, configs, data, settings, *, progress=None, on_bucket_done=None,
                 on_plan=None, log=print):
        self.calls.append(list(configs))
        self.settings.append(settings)
        plan = plan_buckets(configs, data.in_dim, "exact", n_classes=data.n_classes)
        if on_plan is not None:
            on_plan(plan)
        outcomes = [None] * len(configs)
        for n_done, bucket in enumerate(plan):
            members = bucket.members
            if self.fail_after_buckets is not None and n_done >= self.fail_after_buckets:
                raise RuntimeError("killed")
            bucket_outcomes = []
            for i in members:
                config = configs[i]
                val, test = self.score(config)
                diverged = bool(self.diverges(config))
                n = settings.n_epochs
                ramp = [(e + 1) / n for e in range(n)]
                history = {
                    "train_loss": [1.0 - 0.5 * r for r in ramp],
                    "train_accuracy": [min(1.0, test + 0.02) * r for r in ramp],
                    "val_loss": [1.0 - 0.4 * r for r in ramp],
                    "val_accuracy": [val * r for r in ramp],
                    "test_loss": [1.0 - 0.3 * r for r in ramp],
                    "test_accuracy": [test * r for r in ramp],
                    "swaps": [3.0] * n,
                }
                if diverged:
                    history = {k: v[:1] + [float("nan")] * (n - 1) for k, v in history.items()}
                outcome = TrialOutcome(
                    config=config,
                    total_params=count_params(config, data.in_dim, data.n_classes),
                    history=history, diverged=diverged,
                    diverged_step=5 if diverged else None,
                    diverged_epoch=1 if diverged else None,
                    bucket=bucket.label, bucket_size=len(members),
                    bucket_wall_time=0.5, compile_time=0.1, train_time=0.5 / len(members))
                outcomes[i] = outcome
                bucket_outcomes.append(outcome)
            if progress is not None:
                progress(Progress(bucket=bucket.label, chunk_models=len(members),
                                  epoch=settings.n_epochs, n_epochs=settings.n_epochs,
                                  alive=len(members), best_val_accuracy=0.8))
            if on_bucket_done is not None:
                on_bucket_done(bucket_outcomes)
        return outcomes


def make_searcher(trainer=None, **kwargs) -> HyperparameterSearcher:
    """A quiet searcher on fake_data() with a FakeTrainer, unless told otherwise."""
    kwargs.setdefault("verbose", False)
    kwargs.setdefault("data", fake_data())
    return HyperparameterSearcher(trainer=trainer if trainer is not None else FakeTrainer(),
                                  **kwargs)


# 12 neurons × 6 dendrites × 96 inputs on 784 features: exactly 7,198 parameters (reference measurement).
CONFIG_7198 = {"n_neurons": 12, "n_dendrites": 6, "n_dendrite_inputs": 96}


# ---- a search in a child process that the test kills ---------------------------------------

def recording_trainer(trained_path: str, pause: float = 0.6):
    """A FakeTrainer that appends every model it is asked to train to ``trained_path`` (one
    JSON line per model) and pauses ``pause`` seconds after logging each bucket, so that a
    parent process can kill it between buckets (tests/test_crash_resume.py and the
    robustness study's kill test run it in a child script)."""
    fake = FakeTrainer()

    def trainer(configs, data, settings, *, progress=None, on_bucket_done=None,
                on_plan=None, log=None):
        with open(trained_path, "a") as f:
            for c in configs:
                f.write(json.dumps(c.to_dict(), sort_keys=True) + "\n")

        def done(outcomes):
            on_bucket_done(outcomes)
            time.sleep(pause)

        return fake(configs, data, settings, progress=progress, on_bucket_done=done,
                    on_plan=on_plan)

    return trainer


def run_child_search(folder, script: str, name: str, resume: bool,
                     kill_after_lines: int | None = None):
    """Run ``script`` (argv: log, trained, "1" to resume) in a fresh process; with
    ``kill_after_lines``, SIGKILL it once its log holds that many trial lines and return
    (None, trained path); else (the JSON after its "RESULT " line, trained path)."""
    log = folder / f"{name}.jsonl"
    trained = folder / f"{name}-trained-{int(resume)}.jsonl"
    path = folder / "child.py"
    path.write_text(script)
    proc = subprocess.Popen([sys.executable, str(path), str(log), str(trained),
                             "1" if resume else "0"], stdout=subprocess.PIPE, text=True)
    if kill_after_lines is not None:
        deadline = time.time() + 60
        while time.time() < deadline:
            lines = log.read_text().count('"type": "trial"') if log.exists() else 0
            if lines >= kill_after_lines:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None, trained
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), trained
