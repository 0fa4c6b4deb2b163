"""The runner: compile a population program, place it on devices, run it in chunks.

For one bucket of configs (one shape, or a padded one: dendrax.plan) it
- compiles the program of dendrax.population.program once per population size and
  reuses it (in memory, and across processes through JAX's compilation cache);
- splits the population across the local devices (its model axis is sharded);
- splits it into chunks that fit in device memory, halving a chunk on out-of-memory;
- returns one :class:`TrialOutcome` per config.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import os
import threading
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dendrax.errors import ModelTooLargeError
from dendrax.nn.lowerings import resolve_lowering
from dendrax.nn.rewire import n_resample_for
from dendrax.population.compile_cache import ensure_compilation_cache
from dendrax.population.program import (PAD, TEST, VAL, DeviceData, Hyper,
                                        MemberState, make_train)
from dendrax.config import ModelConfig, count_params
from dendrax.spec import (METRICS, ModelShape, ModelSizes, ProgramSpec, Progress, TrainSettings,
                          TrialOutcome, count_shape_params, lowering_named)

def _stack_eval(x_val, y_val, x_test, y_test, batch: int):
    """The validation and test sets stacked, each padded to whole batches of ``batch``,
    with each row marked VAL, TEST or PAD. An empty set still gets one all-PAD batch, so
    the evaluation scan always has a shape."""
    parts = []
    for x, y, split in ((x_val, y_val, VAL), (x_test, y_test, TEST)):
        n = len(x)
        rows = max(batch, int(math.ceil(n / batch)) * batch)
        xp = np.zeros((rows, x.shape[1]), np.float32)
        yp = np.zeros((rows,), np.int32)
        sp = np.full((rows,), PAD, np.int32)
        xp[:n], yp[:n], sp[:n] = x, y, split
        parts.append((xp, yp, sp))
    return tuple(np.concatenate(column) for column in zip(*parts))


_DEVICE_DATA_CACHE: dict = {}


def population_shardings(n_devices: int):
    """(member sharding, replicated sharding) over a one-axis mesh of local devices, or
    (None, None) on one device. The population axis is split across the devices; the
    data is copied to each."""
    if n_devices <= 1:
        return None, None
    mesh = jax.sharding.Mesh(np.array(jax.local_devices()[:n_devices]), ("population",))
    return (jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("population")),
            jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))


def device_count(settings: TrainSettings) -> int:
    available = jax.local_device_count()
    if settings.devices is not None and settings.devices > available:
        warnings.warn(f"devices={settings.devices} but only {available} local device(s) "
                      f"exist; training on {available}", RuntimeWarning, stacklevel=2)
    return available if settings.devices is None else max(1, min(settings.devices, available))


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


def effective_eval_batch(settings: TrainSettings, data) -> int:
    largest = max(len(data.x_val), len(data.x_test), 1)
    return int(min(settings.eval_batch_size, largest))


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
    widths = branches + (shape.hidden or 0) + n_classes
    total += 3 * 4 * settings.eval_batch_size * widths
    total += 4 * n_train  # the member's permutation
    return int(total * 1.5)


def _device_memory_budget() -> int:
    try:
        stats = jax.devices()[0].memory_stats() or {}
        limit = stats.get("bytes_limit")
        if limit:
            return int(0.6 * (limit - stats.get("bytes_in_use", 0)))
    except Exception:  # noqa: BLE001 - CPU backends may not implement memory_stats
        pass
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return int(min(8 << 30, pages // 3))
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def _free_device_memory() -> Optional[int]:
    """Bytes free on the first device (accelerator memory, or available RAM on a CPU
    backend); None when neither can be read."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
        if stats.get("bytes_limit"):
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    except Exception:  # noqa: BLE001 - CPU backends may not implement memory_stats
        pass
    try:  # MemAvailable counts the page cache the kernel would give back; free pages don't
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_models_fit(shapes: Sequence[ModelShape], data, settings: TrainSettings) -> None:
    """Raise ModelTooLargeError, before anything compiles, when ONE model of a bucket
    (of its padded shape) needs more than the device has free: chunking cannot help it.

    Uses the generous :func:`bytes_per_model`, against all free memory (not the 60% the
    chunker plans with), so only a model that cannot fit is refused.
    """
    free = _free_device_memory()
    if free is None:
        return
    lowering = resolve_lowering(settings.lowering, matmul_dtype=settings.matmul_dtype)
    for shape in shapes:
        need = bytes_per_model(shape, data.in_dim, len(data.x_train), settings, lowering,
                               data.n_classes)
        if need > free:
            raise ModelTooLargeError(
                f"{shape.label} does not fit: one model "
                f"(n_neurons={shape.n_neurons}, n_dendrites={shape.n_dendrites}, "
                f"{shape.n_branches:,} branches of {shape.k} "
                f"inputs, {count_shape_params(shape, data.n_classes):,} parameters) "
                f"needs about {need / 2**30:.1f} GiB of device memory with lowering="
                f"{lowering!r} and batch_size={settings.batch_size}, but "
                f"{free / 2**30:.1f} GiB is free. Use smaller n_neurons or n_dendrites, "
                f"lowering='gather', or a smaller batch_size")


def default_chunk_size(shape: ModelShape, data, settings: TrainSettings, lowering: str) -> int:
    per_model = bytes_per_model(shape, data.in_dim, len(data.x_train), settings, lowering,
                                data.n_classes)
    return int(max(1, min(8192, _device_memory_budget() // per_model)))


def is_out_of_memory(error: BaseException) -> bool:
    text = str(error)
    return any(s in text for s in ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory",
                                   "OOM"))


# ---- compiling ------------------------------------------------------------------------

class CompiledProgram(NamedTuple):
    init: Callable
    epoch: Callable
    seconds: float  # wall time its compile took (in whichever thread compiled it)


_KEY_DTYPE = jax.eval_shape(lambda: jax.random.key(0)).dtype  # without compiling
# Compiled programs by spec, as futures: a program is compiled once, on the compile
# thread, whether it was asked for ahead of time (prefetch) or when needed.
_PROGRAMS: "collections.OrderedDict[ProgramSpec, Future]" = collections.OrderedDict()
_PROGRAMS_KEPT = 32
_PROGRAMS_LOCK = threading.Lock()
_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dendrax-compile")
_USED: set = set()  # specs whose compile time was reported already


def program_spec(shape: ModelShape, data, settings: TrainSettings, *, members: int,
                 padded: bool, n_devices: int, lowering: Optional[str] = None) -> ProgramSpec:
    """The :class:`ProgramSpec` of a population of ``members`` models of ``shape``."""
    eval_bs = effective_eval_batch(settings, data)
    n_eval = sum(max(eval_bs, int(math.ceil(len(x) / eval_bs)) * eval_bs)
                 for x in (data.x_val, data.x_test))
    return ProgramSpec(
        shape=shape, n_classes=int(data.n_classes), image_shape=tuple(data.image_shape),
        in_dim=int(data.in_dim), n_train=len(data.x_train), n_eval=n_eval,
        eval_batch_size=eval_bs, batch_size=settings.batch_size,
        data_order=settings.data_order,
        lowering=resolve_lowering(lowering or settings.lowering,
                                  matmul_dtype=settings.matmul_dtype),
        matmul_dtype=settings.matmul_dtype, divergence_threshold=settings.divergence_threshold,
        padded=padded, members=members, n_devices=n_devices)


def _compile(spec: ProgramSpec) -> CompiledProgram:
    """Compile init and epoch for one spec.

    On several devices the member axis of every input is sharded across them, and XLA
    partitions the whole program along it. ``init`` runs once per population, so on the
    CPU it is compiled at XLA's lowest backend optimisation level, which compiles it
    several times faster (docs/benchmarks.md, "Fixed costs").
    """
    t0 = time.perf_counter()
    program = make_train(spec)
    members = spec.members
    split, replicated = population_shardings(spec.n_devices)
    int32 = jax.ShapeDtypeStruct((members,), jnp.int32, sharding=split)
    float32 = jax.ShapeDtypeStruct((members,), jnp.float32, sharding=split)
    hyper = Hyper(float32, float32, int32, int32, ModelSizes(int32, int32, int32, int32))
    keys = jax.ShapeDtypeStruct((members,), _KEY_DTYPE, sharding=split)
    rows = lambda n, *tail: jax.ShapeDtypeStruct((n, *tail), jnp.float32 if tail else jnp.int32,
                                                 sharding=replicated)
    data = DeviceData(rows(spec.n_train, spec.in_dim), rows(spec.n_train),
                      rows(spec.n_eval, spec.in_dim), rows(spec.n_eval), rows(spec.n_eval))
    # Every output (state and per-member metrics) has the member axis first: keep it split.
    jit = functools.partial(jax.jit, out_shardings=split) if split else jax.jit
    cheap = ({"xla_backend_optimization_level": 0}
             if jax.default_backend() == "cpu" else None)
    init = jit(program.init).lower(hyper, keys).compile(compiler_options=cheap)
    state = jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=split),
        jax.eval_shape(program.init, hyper, keys))
    scalar = jax.ShapeDtypeStruct((), jnp.int32, sharding=replicated)
    order_key = jax.ShapeDtypeStruct((), _KEY_DTYPE, sharding=replicated)
    epoch = jit(program.epoch).lower(state, hyper, data, scalar, order_key).compile()
    return CompiledProgram(init, epoch, time.perf_counter() - t0)


def request_program(spec: ProgramSpec) -> Future:
    """The compiled program of ``spec`` as a future: compiled on the compile thread
    unless compiled, or asked for, before. Asking ahead lets it compile while an earlier
    population trains."""
    ensure_compilation_cache()
    with _PROGRAMS_LOCK:
        future = _PROGRAMS.get(spec)
        if future is None or (future.done() and future.exception() is not None):
            future = _COMPILER.submit(_compile, spec)
            _PROGRAMS[spec] = future
            while len(_PROGRAMS) > _PROGRAMS_KEPT:
                _USED.discard(_PROGRAMS.popitem(last=False)[0])
        else:
            _PROGRAMS.move_to_end(spec)
        return future


def clear_programs() -> None:
    """Forget every compiled program held in memory (the on-disk cache is kept)."""
    with _PROGRAMS_LOCK:
        _PROGRAMS.clear()
        _USED.clear()


def hyper_for(configs: Sequence[ModelConfig], in_dim: int) -> Hyper:
    shapes = [c.shape(in_dim) for c in configs]
    column = lambda values: jnp.asarray(values, jnp.int32)
    return Hyper(
        lr=jnp.asarray([c.lr for c in configs], jnp.float32),
        weight_decay=jnp.asarray([c.weight_decay for c in configs], jnp.float32),
        n_resample=column([n_resample_for(s.k, c.percentage_resample,
                                          c.synaptic_resampling and s.has_dendrites)
                           for c, s in zip(configs, shapes)]),
        steps_to_resample=column([c.steps_to_resample for c in configs]),
        sizes=ModelSizes(*(column(values) for values in zip(*(s.sizes for s in shapes)))))


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """Typed threefry keys for ``seeds``, built on the host in one go: the key data of
    ``jax.random.key(seed)`` is (seed >> 32, seed & 0xFFFFFFFF)."""
    seeds = np.asarray([int(s) for s in seeds], dtype=np.uint64)
    data = np.stack([(seeds >> np.uint64(32)).astype(np.uint32),
                     (seeds & np.uint64(0xFFFFFFFF)).astype(np.uint32)], axis=-1)
    return jax.random.wrap_key_data(jnp.asarray(data), impl="threefry2x32")


def member_keys(configs: Sequence[ModelConfig]) -> jax.Array:
    return seed_keys([c.seed for c in configs])


@dataclasses.dataclass
class PreparedPopulation:
    """A compiled population program with its per-member inputs, ready to run."""

    configs: list  # the members, padded with repeats to a multiple of the device count
    n_real: int  # how many of them are real (the rest are discarded)
    hyper: Hyper
    keys: jax.Array
    order_key: jax.Array
    data: DeviceData
    init: Callable
    epoch: Callable
    compile_time: float  # 0 when the program was compiled for an earlier population
    compile_wait: float  # how long this call waited for the compile
    settings: TrainSettings


def population_layout(configs: Sequence[ModelConfig], data, settings: TrainSettings,
                      shape: Optional[ModelShape] = None, lowering: Optional[str] = None):
    """(members padded to the device count, the program's spec) for these configs."""
    in_dim = data.in_dim
    shapes = {c.shape(in_dim) for c in configs}
    if shape is None:
        if len(shapes) != 1:
            raise ValueError(f"a population needs one shape, got "
                             f"{sorted(s.label for s in shapes)}")
        shape = next(iter(shapes))
    for own in shapes:
        if not own.fits_in(shape):
            raise ValueError(f"{own.label} does not fit inside the padded shape {shape.label}")
    n_devices = device_count(settings)
    members = list(configs) + [configs[-1]] * ((-len(configs)) % n_devices)
    spec = program_spec(shape, data, settings, members=len(members),
                        padded=shapes != {shape}, n_devices=n_devices, lowering=lowering)
    return members, spec


def prepare_population(configs: Sequence[ModelConfig], data, settings: TrainSettings, *,
                       lowering: Optional[str] = None, shape: Optional[ModelShape] = None,
                       bucket: str = "", progress=None) -> PreparedPopulation:
    """Compile (or fetch) the program for these members and place their inputs on the
    device(s).

    Without ``shape`` all configs must share one shape. With ``shape`` (whose sizes bound
    every member's, see dendrax.plan) the population is padded to it and each
    member runs at its own sizes.
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
    with _PROGRAMS_LOCK:
        first_use = spec not in _USED
        _USED.add(spec)
    return PreparedPopulation(members, len(configs), hyper, keys, order_key, dev, program.init,
                              program.epoch, program.seconds if first_use else 0.0, wait,
                              settings)


def prefetch_program(configs: Sequence[ModelConfig], data, settings: TrainSettings, *,
                     shape: Optional[ModelShape] = None) -> None:
    """Start compiling, on the compile thread, the program the first chunk of this
    bucket will need, so that it compiles while an earlier population trains."""
    chunk = settings.chunk_size or default_chunk_size(
        shape or configs[0].shape(data.in_dim), data, settings,
        resolve_lowering(settings.lowering, matmul_dtype=settings.matmul_dtype))
    _, spec = population_layout(configs[:chunk], data, settings, shape)
    request_program(spec)


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


def train_population(configs: Sequence[ModelConfig], data, settings: TrainSettings, *,
                     lowering: Optional[str] = None, bucket: str = "",
                     shape: Optional[ModelShape] = None,
                     progress: Optional[Callable[[Progress], None]] = None):
    """Train configs as one population (no chunking); see :func:`prepare_population`.

    Returns ``(histories, final_state, timings)``: histories maps each metric to an
    (epochs, members) numpy array.
    """
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
    return histories, real_members(state, prepared.n_real), {
        "compile": prepared.compile_time, "compile_wait": prepared.compile_wait,
        "run": run_time}


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
            histories, state, timings = train_population(part, data, settings, lowering=lowering,
                                                         bucket=name, shape=shape,
                                                         progress=progress)
        except Exception as error:  # noqa: BLE001 - only out-of-memory errors are retried
            if not is_out_of_memory(error) or chunk == 1:
                raise
            chunk = max(1, chunk // 2)
            if log:
                log(f"[dendrax] {name}: out of memory with {len(part)} models; "
                    f"retrying in chunks of {chunk}")
            continue
        compile_total += timings["compile"]
        run_total += timings["run"] + timings["compile_wait"]
        raw.append((part, histories, state))
        start += len(part)

    wall = run_total
    steps_per_epoch = len(data.x_train) // settings.batch_size
    outcomes: list[TrialOutcome] = []
    for part, histories, state in raw:
        diverged_step = np.asarray(state.diverged_step)
        for i, config in enumerate(part):
            outcomes.append(make_outcome(
                config, {m: histories[m][:, i] for m in METRICS}, int(diverged_step[i]),
                steps_per_epoch, data, bucket=name, bucket_size=len(configs),
                bucket_wall_time=wall, compile_time=compile_total,
                train_time=wall / len(configs), padding_overhead=overhead,
                n_devices=device_count(settings)))
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
