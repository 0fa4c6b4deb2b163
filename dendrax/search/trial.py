"""Plain-Python values passed between the searcher and the population trainer.

Neither side imports the other: the searcher hands a list of :class:`ModelConfig`
and a :class:`TrainSettings` to a trainer function, and gets one :class:`TrialOutcome`
back per config.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

from dendrax.search.config import ConfigError, ModelConfig

LOWERINGS = ("auto", "gather", "dense")
# "float32": true float32 products on every backend; "tf32": float32 at the backend's
# default matmul precision (TF32 on recent NVIDIA GPUs); "bfloat16": bfloat16 operands.
MATMUL_DTYPES = ("float32", "tf32", "bfloat16")
DATA_ORDERS = ("own", "shared")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Settings shared by every model of a run (not searched per trial).

    data_order: "own" gives each model its own batch order (seeded by its config seed);
        "shared" makes every model see the same batches (seeded by ``data_seed``), which
        lets the model axis fold into one large matrix product.
    lowering: "gather" (x[:, idx] then a contraction), "dense" (scatter into a
        branches × in_dim matrix, one GEMM) or "auto" (the faster on this backend).
    chunk_size: most models per compiled call; None estimates it from device memory.
    padding: "exact" trains only configs of identical shapes together; "padded" (or
        "pow2") rounds sizes up to a few levels so that a random search compiles a handful
        of programs instead of one per trial (see dendrax.search.plan); masks make the padding
        an exact no-op.
    devices: how many local devices share each population (its model axis is split
        across them); None uses them all.
    halving_eta: successive halving inside the populations (dendrax.population.halving): after
        ``halving_min_epochs`` epochs, then η times as many, and so on, only the best 1/η
        of all models by validation accuracy train on. None trains every model to the end.
    matmul_dtype: the precision of the matrix products: "float32" (true float32 on every
        backend), "tf32" (float32 at the backend's default precision: TF32 on Ampere and
        later NVIDIA GPUs, float32 on CPUs) or "bfloat16" (bfloat16 operands, float32 sums).
    divergence_threshold: a member whose training loss is NaN, infinite, or above this
        value is frozen and reported as diverged (None: only NaN and infinity count).
        The default, 1e4, is over 4,000 times the loss of a uniform guess on 10 classes.
    """

    n_epochs: int = 15
    batch_size: int = 256
    data_order: str = "own"
    data_seed: int = 0
    lowering: str = "auto"
    chunk_size: Optional[int] = None
    eval_batch_size: int = 2000
    matmul_dtype: str = "float32"
    divergence_threshold: Optional[float] = 1e4
    padding: str = "exact"
    devices: Optional[int] = None
    halving_eta: Optional[int] = None
    halving_min_epochs: int = 1

    def validate(self) -> None:
        if not isinstance(self.n_epochs, int) or self.n_epochs < 1:
            raise ConfigError(f"n_epochs={self.n_epochs!r} must be an integer >= 1")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size!r} must be an integer >= 1")
        if self.lowering not in LOWERINGS:
            raise ConfigError(f"lowering={self.lowering!r}; choose one of {', '.join(LOWERINGS)}")
        if self.data_order not in DATA_ORDERS:
            raise ConfigError(
                f"data_order={self.data_order!r}; choose one of {', '.join(DATA_ORDERS)}")
        if self.chunk_size is not None and (not isinstance(self.chunk_size, int)
                                            or self.chunk_size < 1):
            raise ConfigError(f"chunk_size={self.chunk_size!r} must be None or an integer >= 1")
        if self.halving_eta is not None and (not isinstance(self.halving_eta, int)
                                             or self.halving_eta < 2):
            raise ConfigError(f"halving_eta={self.halving_eta!r} must be None or an integer >= 2")
        if not isinstance(self.halving_min_epochs, int) or self.halving_min_epochs < 1:
            raise ConfigError(f"halving_min_epochs={self.halving_min_epochs!r} must be an "
                              f"integer >= 1")
        if self.padding not in ("exact", "padded", "pow2"):
            raise ConfigError(f"padding={self.padding!r}; choose exact, padded or pow2")
        if self.matmul_dtype not in MATMUL_DTYPES:
            raise ConfigError(f"matmul_dtype={self.matmul_dtype!r}; choose one of "
                              f"{', '.join(MATMUL_DTYPES)}")


@dataclasses.dataclass
class TrialOutcome:
    """What one trained model (one config, one seed) produced.

    history holds one value per epoch under: train_loss, train_accuracy, val_loss,
    val_accuracy, test_loss, test_accuracy, and swaps (accepted rewiring swaps that epoch).
    train_time is the bucket's wall time divided by its number of models; bucket is the
    label of the (possibly padded) shape it trained in, and padding_overhead the bucket's
    padded compute over its members' own compute, minus 1.
    """

    config: ModelConfig
    total_params: int
    history: dict[str, list[float]]
    diverged: bool = False
    diverged_step: Optional[int] = None
    diverged_epoch: Optional[int] = None
    bucket: str = ""
    bucket_size: int = 1
    bucket_wall_time: float = 0.0
    compile_time: float = 0.0
    train_time: float = 0.0
    padding_overhead: float = 0.0
    stopped_epoch: Optional[int] = None  # set when successive halving stopped it early

    def final(self, metric: str) -> float:
        values = self.history.get(metric) or [float("nan")]
        return float(values[-1])

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["config"] = self.config.to_dict()
        return out


@dataclasses.dataclass(frozen=True)
class Progress:
    """A progress event from the trainer: one per finished epoch of a chunk."""

    bucket: str
    chunk_models: int
    epoch: int
    n_epochs: int
    alive: int
    best_val_accuracy: float


ProgressFn = Callable[[Progress], None]
