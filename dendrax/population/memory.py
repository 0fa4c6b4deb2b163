"""Device memory: what is free, what one member needs, and how many members fit.

One reader of free memory (:func:`free_memory`) serves both the chunk planner
(:func:`default_chunk_size`, which plans with a share of it) and the fit check
(:func:`check_models_fit`, which refuses, before anything compiles, a model that cannot fit
even alone). What a member needs is a deliberately generous estimate
(:func:`bytes_per_model`); the runner still halves a chunk when XLA runs out of memory
(:func:`is_out_of_memory`).
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple, Optional, Sequence

import jax

from dendrax.errors import ModelTooLargeError
from dendrax.nn.lowerings import resolve_lowering
from dendrax.spec import ModelShape, TrainSettings, count_shape_params, lowering_named

MAX_CHUNK = 8192  # members in one compiled call, at most


def eval_rows(n: int, batch: int) -> int:
    """Rows of an evaluation set of ``n`` examples padded to whole batches of ``batch``;
    an empty set still gets one batch, so the evaluation scan always has a shape."""
    return max(batch, int(math.ceil(n / batch)) * batch)


class FreeMemory(NamedTuple):
    bytes: int
    accelerator: bool  # read from the device's allocator (else the host's available RAM)


def free_memory() -> Optional[FreeMemory]:
    """Bytes free on the first device: its allocator's limit less what is in use; on a
    backend that does not say (the CPU), the host's available RAM. None when neither can
    be read."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
        if stats.get("bytes_limit"):
            return FreeMemory(int(stats["bytes_limit"] - stats.get("bytes_in_use", 0)), True)
    except Exception:  # noqa: BLE001 - CPU backends may not implement memory_stats
        pass
    try:  # MemAvailable counts the page cache the kernel would give back; free pages don't
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return FreeMemory(int(line.split()[1]) * 1024, False)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return FreeMemory(int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")), False)
    except (ValueError, OSError, AttributeError):
        return None


def chunk_budget() -> int:
    """Bytes the chunk planner fills: 60% of an accelerator's free memory, or a third of
    the host's available RAM and at most 8 GiB (XLA's CPU buffers share it with everything
    else); 2 GiB when nothing can be read."""
    free = free_memory()
    if free is None:
        return 2 << 30
    if free.accelerator:
        return int(0.6 * free.bytes)
    return int(min(8 << 30, free.bytes // 3))


def bytes_per_model(shape: ModelShape, in_dim: int, n_train: int, settings: TrainSettings,
                    lowering: str, n_classes: int = 10) -> int:
    """A deliberately generous estimate of one member's device memory: params, gradients
    and two Adam moments; the lowering's temporaries
    (:meth:`dendrax.spec.Lowering.temporary_bytes`); the member's own batch; evaluation
    activations; its permutation of the training set; all times 1.5."""
    params = count_shape_params(shape, n_classes)
    total = 4 * 4 * params  # params, grads, two Adam moments
    total += lowering_named(lowering).temporary_bytes(shape, in_dim, settings.batch_size)
    if settings.data_order == "own":
        total += 2 * 4 * settings.batch_size * in_dim  # the member's own batch
    widths = shape.n_branches + (shape.hidden or 0) + n_classes
    total += 3 * 4 * settings.eval_batch_size * widths
    total += 4 * n_train  # the member's permutation
    return int(total * 1.5)


def check_models_fit(shapes: Sequence[ModelShape], data, settings: TrainSettings) -> None:
    """Raise ModelTooLargeError, before anything compiles, when ONE model of a bucket
    (of its padded shape) needs more than the device has free: chunking cannot help it.

    Uses the generous :func:`bytes_per_model`, against all free memory (not the share
    the chunker plans with), so only a model that cannot fit is refused.
    """
    free = free_memory()
    if free is None:
        return
    lowering = resolve_lowering(settings.lowering, matmul_dtype=settings.matmul_dtype)
    for shape in shapes:
        need = bytes_per_model(shape, data.in_dim, len(data.x_train), settings, lowering,
                               data.n_classes)
        if need > free.bytes:
            raise ModelTooLargeError(
                f"{shape.label} does not fit: one model "
                f"(n_neurons={shape.n_neurons}, n_dendrites={shape.n_dendrites}, "
                f"{shape.n_branches:,} branches of {shape.k} "
                f"inputs, {count_shape_params(shape, data.n_classes):,} parameters) "
                f"needs about {need / 2**30:.1f} GiB of device memory with lowering="
                f"{lowering!r} and batch_size={settings.batch_size}, but "
                f"{free.bytes / 2**30:.1f} GiB is free. Use smaller n_neurons or n_dendrites, "
                f"lowering='gather', or a smaller batch_size")


def default_chunk_size(shape: ModelShape, data, settings: TrainSettings, lowering: str) -> int:
    """Members of ``shape`` per compiled call when ``settings.chunk_size`` is None: as many
    as :func:`chunk_budget` holds by :func:`bytes_per_model`, from 1 to :data:`MAX_CHUNK`."""
    per_model = bytes_per_model(shape, data.in_dim, len(data.x_train), settings, lowering,
                                data.n_classes)
    return int(max(1, min(MAX_CHUNK, chunk_budget() // per_model)))


def is_out_of_memory(error: BaseException) -> bool:
    """Whether an error raised while compiling or running a population is XLA (or the host)
    running out of memory, so that a smaller chunk may fit."""
    text = str(error)
    return any(s in text for s in ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory",
                                   "OOM"))
