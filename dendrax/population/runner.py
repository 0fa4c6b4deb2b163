"""The runner: train a bucket of configs as compiled populations, in chunks that fit.

For one bucket of configs (one shape, or a padded one: dendrax.plan) it
- fetches the bucket's compiled program (dendrax.population.compile: once per population
  size, in memory and across processes);
- places the population's inputs on the local devices (its model axis is sharded);
- splits it into chunks that fit in device memory (dendrax.population.memory), halving a
  chunk on out-of-memory;
- returns one :class:`TrialOutcome` per config.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dendrax.config import ModelConfig, count_params
from dendrax.nn.lowerings import resolve_lowering
from dendrax.population.compile import (compile_time_to_report, device_count,
                                        population_layout, population_shardings,
                                        request_program)
from dendrax.population.memory import default_chunk_size, eval_rows, is_out_of_memory
from dendrax.population.program import (PAD, TEST, VAL, DeviceData, Hyper, MemberState,
                                        hyper_for, member_keys, seed_keys)
from dendrax.spec import METRICS, ModelShape, Progress, TrainSettings, TrialOutcome


def _stack_eval(x_val, y_val, x_test, y_test, batch: int):
    """The validation and test sets stacked, each padded to whole batches of ``batch``,
    with each row marked VAL, TEST or PAD. An empty set still gets one all-PAD batch, so
    the evaluation scan always has a shape."""
    parts = []
    for x, y, split in ((x_val, y_val, VAL), (x_test, y_test, TEST)):
        n = len(x)
        rows = eval_rows(n, batch)
        xp = np.zeros((rows, x.shape[1]), np.float32)
        yp = np.zeros((rows,), np.int32)
        sp = np.full((rows,), PAD, np.int32)
        xp[:n], yp[:n], sp[:n] = x, y, split
        parts.append((xp, yp, sp))
    return tuple(np.concatenate(column) for column in zip(*parts))


_DEVICE_DATA_CACHE: dict = {}


def device_data(data, eval_batch_size: int, n_devices: int = 1) -> DeviceData:
    """Put a dataset on the device(s) once; later calls reuse the same arrays."""
    key = (id(data), eval_batch_size, n_devices)
    cached = _DEVICE_DATA_CACHE.get(key)
    if cached is not None and cached[0] is data:
        return cached[1]
    arrays = DeviceData(np.asarray(data.x_train, np.float32), np.asarray(data.y_train, np.int32),
                        *_stack_eval(data.x_val, data.y_val, data.x_test, data.y_test,
                                     eval_batch_size))
    _, replicated = population_shardings(n_devices)
    on_device = DeviceData(*jax.device_put(tuple(arrays), replicated))
    _DEVICE_DATA_CACHE.clear()  # keep one dataset resident, not every one ever used
    _DEVICE_DATA_CACHE[key] = (data, on_device)
    return on_device


@dataclasses.dataclass(frozen=True)
class PreparedPopulation:
    """A compiled population program with its per-member inputs, ready to run."""

    configs: list  # the members, padded with repeats to a multiple of the device count
    n_real: int  # how many of them, from the first, are real (the rest are discarded)
    hyper: Hyper
    keys: jax.Array
    order_key: jax.Array
    data: DeviceData
    init: Callable
    epoch: Callable
    compile_time: float  # 0 when the program was compiled for an earlier population
    compile_wait: float  # how long this call waited for the compile
    settings: TrainSettings


def prepare_population(configs: Sequence[ModelConfig], data, settings: TrainSettings, *,
                       lowering: Optional[str] = None, shape: Optional[ModelShape] = None,
                       bucket: str = "", progress=None,
                       n_real: Optional[int] = None) -> PreparedPopulation:
    """Compile (or fetch) the program for these members and place their inputs on the
    device(s).

    Without ``shape`` all configs must share one shape. With ``shape`` (whose sizes bound
    every member's, see dendrax.plan) the population is padded to it and each
    member runs at its own sizes. ``n_real``: how many configs, from the first, are real
    (the rest fill slots and are not reported); None: all of them.
    """
    members, spec = population_layout(configs, data, settings, shape, lowering)
    future = request_program(spec)
    split, replicated = population_shardings(spec.n_devices)
    # The inputs are placed while the program may still be compiling.
    dev = device_data(data, spec.eval_batch_size, spec.n_devices)
    hyper = jax.device_put(hyper_for(members, data.in_dim), split)
    keys = jax.device_put(member_keys(members), split)
    order_key = jax.device_put(seed_keys([settings.data_seed])[0], replicated)
    t0 = time.perf_counter()
    fresh = not future.done()
    if fresh and progress is not None:
        progress(Progress(bucket=bucket, chunk_models=len(configs), epoch=0,
                          n_epochs=settings.n_epochs, alive=len(configs),
                          best_val_accuracy=float("nan"), phase="compile"))
    program = future.result()
    wait = time.perf_counter() - t0
    return PreparedPopulation(members, len(configs) if n_real is None else n_real, hyper, keys,
                              order_key, dev, program.init, program.epoch,
                              compile_time_to_report(spec, program), wait, settings)


def run_epochs(prepared: PreparedPopulation, state: MemberState, start: int, stop: int,
               history: dict, *, bucket: str = "", progress=None) -> MemberState:
    """Run epochs [start, stop) and append each epoch's metrics (real members only)."""
    n = prepared.n_real
    members = tuple(prepared.configs[:n])
    if progress is not None and start < stop:  # training begins: any compile is over
        progress(Progress(bucket=bucket, chunk_models=n, epoch=start,
                          n_epochs=prepared.settings.n_epochs,
                          alive=int(np.asarray(state.alive)[:n].sum()),
                          best_val_accuracy=float("nan"), phase="start"))
    for e in range(start, stop):
        state, metrics = prepared.epoch(state, prepared.hyper, prepared.data, jnp.int32(e),
                                        prepared.order_key)
        metrics = jax.device_get(metrics)
        for m in METRICS:
            history.setdefault(m, []).append(np.asarray(metrics[m])[:n])
        if progress is not None:
            alive = np.asarray(state.alive)[:n]
            val = np.asarray(metrics["val_accuracy"])[:n][alive]
            progress(Progress(bucket=bucket, chunk_models=n, epoch=e + 1,
                              n_epochs=prepared.settings.n_epochs, alive=int(alive.sum()),
                              best_val_accuracy=float(np.nanmax(val)) if val.size else float("nan"),
                              members=members,
                              metrics={m: np.asarray(metrics[m])[:n].tolist() for m in METRICS}))
    return state


def real_members(state: MemberState, n: int) -> MemberState:
    """The first ``n`` members of a population state (dropping device-count padding)."""
    return jax.tree_util.tree_map(lambda a: a[:n], state)


class Timings(NamedTuple):
    """Seconds one population took."""

    compile: float  # its program's compile, when this population was the first to run it
    compile_wait: float  # waiting for the compile thread (0 when compiled ahead of time)
    run: float  # init and every epoch


class PopulationRun(NamedTuple):
    """What :func:`train_population` returns."""

    histories: dict  # metric name → (epochs, real members) numpy array
    state: MemberState  # the real members' final state
    timings: Timings


def train_population(configs: Sequence[ModelConfig], data, settings: TrainSettings, *,
                     lowering: Optional[str] = None, bucket: str = "",
                     shape: Optional[ModelShape] = None,
                     progress: Optional[Callable[[Progress], None]] = None) -> PopulationRun:
    """Train configs as one population (no chunking); see :func:`prepare_population`."""
    prepared = prepare_population(configs, data, settings, lowering=lowering, shape=shape,
                                  bucket=bucket, progress=progress)
    t0 = time.perf_counter()
    state = prepared.init(prepared.hyper, prepared.keys)
    history: dict = {}
    state = run_epochs(prepared, state, 0, settings.n_epochs, history, bucket=bucket,
                       progress=progress)
    jax.block_until_ready(state)
    run_time = time.perf_counter() - t0
    histories = {m: np.stack(history[m]) for m in METRICS}
    return PopulationRun(histories, real_members(state, prepared.n_real),
                         Timings(prepared.compile_time, prepared.compile_wait, run_time))


def train_bucket(configs: Sequence[ModelConfig], data, settings: TrainSettings, *,
                 shape: Optional[ModelShape] = None, overhead: float = 0.0,
                 progress=None, log=print) -> list[TrialOutcome]:
    """Train one bucket in chunks; halve the chunk and retry on out-of-memory.

    ``shape`` is the bucket's (padded) shape; None means the configs' own, shared shape.
    """
    lowering = resolve_lowering(settings.lowering, matmul_dtype=settings.matmul_dtype)
    shape = shape or configs[0].shape(data.in_dim)
    name = shape.label
    chunk = settings.chunk_size or default_chunk_size(shape, data, settings, lowering)
    start = 0
    compile_total = run_total = 0.0
    raw = []
    while start < len(configs):
        part = configs[start:start + chunk]
        try:
            run = train_population(part, data, settings, lowering=lowering, bucket=name,
                                   shape=shape, progress=progress)
        except Exception as error:  # noqa: BLE001 - only out-of-memory errors are retried
            if not is_out_of_memory(error) or chunk == 1:
                raise
            chunk = max(1, chunk // 2)
            if log:
                log(f"[dendrax] {name}: out of memory with {len(part)} models; "
                    f"retrying in chunks of {chunk}")
            continue
        compile_total += run.timings.compile
        run_total += run.timings.run + run.timings.compile_wait
        raw.append((part, run))
        start += len(part)

    wall = run_total
    steps_per_epoch = len(data.x_train) // settings.batch_size
    n_devices = device_count(settings)
    outcomes: list[TrialOutcome] = []
    for part, run in raw:
        diverged_step = np.asarray(run.state.diverged_step)
        for i, config in enumerate(part):
            outcomes.append(make_outcome(
                config, {m: run.histories[m][:, i] for m in METRICS}, int(diverged_step[i]),
                steps_per_epoch, data, bucket=name, bucket_size=len(configs),
                bucket_wall_time=wall, compile_time=compile_total,
                train_time=wall / len(configs), padding_overhead=overhead,
                n_devices=n_devices))
    return outcomes


def make_outcome(config: ModelConfig, history: dict, diverged_step: int, steps_per_epoch: int,
                 data, **fields) -> TrialOutcome:
    """A TrialOutcome from one member's per-epoch metric arrays."""
    hist = {m: [float(v) for v in history[m]] for m in METRICS}
    hist["swaps"] = [int(v) for v in hist["swaps"]]
    diverged = diverged_step >= 0
    return TrialOutcome(
        config=config, total_params=count_params(config, data.in_dim, data.n_classes),
        history=hist, diverged=diverged, diverged_step=diverged_step if diverged else None,
        diverged_epoch=(diverged_step - 1) // steps_per_epoch + 1 if diverged else None,
        **fields)
