"""Shared helpers for the searcher tests: a stand-in Dataset and a fake trainer.

The fake trainer honours the train_configs contract (buckets by shape key, one
on_bucket_done call per bucket, outcomes in input order) but computes accuracies from a
hash of the config, so searcher tests run in milliseconds without JAX.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from dendrax.search.config import ModelConfig, count_params
from dendrax.search import HyperparameterSearcher
from dendrax.search.trial import Progress, TrialOutcome


@dataclasses.dataclass
class FakeData:
    """Duck-typed dendrax.data.Dataset with tiny arrays."""

    in_dim: int = 784
    n_classes: int = 10
    is_sample: bool = True
    source: str = "fake"

    def __post_init__(self):
        # 512 examples: more than the default batch size, which the searcher checks.
        self.x_train = np.zeros((512, self.in_dim), np.float32)
        self.y_train = np.arange(512) % self.n_classes
        self.x_val = np.zeros((16, self.in_dim), np.float32)
        self.y_val = np.arange(16) % self.n_classes
        self.x_test = np.zeros((32, self.in_dim), np.float32)
        self.y_test = np.arange(32) % self.n_classes

    def summary(self) -> str:
        return f"fake dataset, {self.in_dim} features"


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

    def __call__(self, configs, data, settings, *, progress=None, on_bucket_done=None):
        self.calls.append(list(configs))
        self.settings.append(settings)
        buckets: dict[tuple, list[int]] = {}
        for i, config in enumerate(configs):
            buckets.setdefault(config.shape_key(data.in_dim), []).append(i)
        outcomes = [None] * len(configs)
        for n_done, (key, members) in enumerate(buckets.items()):
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
                    bucket=f"fake{n_done}", bucket_size=len(members),
                    bucket_wall_time=0.5, compile_time=0.1, train_time=0.5 / len(members))
                outcomes[i] = outcome
                bucket_outcomes.append(outcome)
            if progress is not None:
                progress(Progress(bucket=f"fake{n_done}", chunk_models=len(members),
                                  epoch=settings.n_epochs, n_epochs=settings.n_epochs,
                                  alive=len(members), best_val_accuracy=0.8))
            if on_bucket_done is not None:
                on_bucket_done(bucket_outcomes)
        return outcomes


def make_searcher(trainer=None, **kwargs) -> HyperparameterSearcher:
    """A quiet searcher on FakeData with a FakeTrainer, unless told otherwise."""
    kwargs.setdefault("verbose", False)
    kwargs.setdefault("data", FakeData())
    return HyperparameterSearcher(trainer=trainer if trainer is not None else FakeTrainer(),
                                  **kwargs)


# 12 neurons × 6 dendrites × 96 inputs on 784 features: exactly 7,198 parameters (reference measurement).
CONFIG_7198 = {"n_neurons": 12, "n_dendrites": 6, "n_dendrite_inputs": 96}
