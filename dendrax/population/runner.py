"""The runner: compile a population program, place it on devices, run it in chunks.

For one bucket of configs (one shape, or a padded one: dendrax.search.plan) it
- compiles the program of dendrax.population.program once per population size and
  reuses it (in memory, and across processes through JAX's compilation cache);
- splits the population across the local devices (its model axis is sharded);
- splits it into chunks that fit in device memory, halving a chunk on out-of-memory;
- returns one :class:`TrialOutcome` per config.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
import warnings
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dendrax.nn.models import DendriticModel, build_model
from dendrax.nn.rewire import n_resample_for
from dendrax.population.program import METRICS, DeviceData, Hyper, MemberState, make_train
from dendrax.search.config import ModelConfig, count_params
from dendrax.search.plan import shape_label
from dendrax.search.trial import Progress, TrainSettings, TrialOutcome

# The lowering "auto" resolves to, per backend. Dense won on both backends measured
# (docs/benchmarks.md): on the 2-core CPU 2.35 vs 1.29 model-epochs/s for one model and
# 8.1 vs 1.8 for eight with a shared order, since XLA's CPU gather moves ~2 G floats/s
# while its GEMM runs at ~165 GFLOP/s; on an H200 the prototype measured ~10×.
DEFAULT_LOWERING = {"cpu": "dense", "gpu": "dense", "cuda": "dense", "rocm": "dense",
                    "tpu": "dense"}


def resolve_lowering(lowering: str, backend: Optional[str] = None) -> str:
    """"auto" picks the lowering measured fastest on the backend."""
    if lowering != "auto":
        return lowering
    return DEFAULT_LOWERING.get(backend or jax.default_backend(), "dense")


def _pad_eval(x: np.ndarray, y: np.ndarray, batch: int):
    n = len(x)
    # An empty split still gets one all-masked batch, so the evaluation scan can trace.
    padded = max(batch, int(math.ceil(n / batch)) * batch)
    xp = np.zeros((padded, x.shape[1]), np.float32)
    yp = np.zeros((padded,), np.int32)
    mask = np.zeros((padded,), bool)
    xp[:n], yp[:n], mask[:n] = x, y, True
    return xp, yp, mask


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
    xv, yv, mv = _pad_eval(data.x_val, data.y_val, eval_batch_size)
    xt, yt, mt = _pad_eval(data.x_test, data.y_test, eval_batch_size)
    arrays = DeviceData(
        np.asarray(data.x_train, np.float32), np.asarray(data.y_train, np.int32),
        xv, yv, mv, xt, yt, mt)
    _, replicated = population_shardings(n_devices)
    on_device = DeviceData(*jax.device_put(tuple(arrays), replicated))
    _DEVICE_DATA_CACHE.clear()  # keep one dataset resident, not every one ever used
    _DEVICE_DATA_CACHE[key] = (data, on_device)
    return on_device


def effective_eval_batch(settings: TrainSettings, data) -> int:
    largest = max(len(data.x_val), len(data.x_test), 1)
    return int(min(settings.eval_batch_size, largest))


def bytes_per_model(config: ModelConfig, in_dim: int, n_train: int, settings: TrainSettings,
                    lowering: str) -> int:
    """A deliberately generous estimate of one member's device memory."""
    k = config.inputs_per_branch(in_dim)
    branches = config.n_branches
    params = count_params(config, in_dim)
    total = 4 * 4 * params  # params, grads, two Adam moments
    if lowering == "dense":
        total += 4 * 4 * branches * in_dim  # scattered kernel, its gradient, temporaries
    else:
        total += 3 * 4 * branches * k * settings.batch_size  # gathered inputs and their grads
    if settings.data_order == "own":
        total += 2 * 4 * settings.batch_size * in_dim  # the member's own batch
    widths = branches + (config.hidden_width or 0) + 10
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


def default_chunk_size(config: ModelConfig, in_dim: int, n_train: int,
                       settings: TrainSettings, lowering: str) -> int:
    per_model = bytes_per_model(config, in_dim, n_train, settings, lowering)
    return int(max(1, min(8192, _device_memory_budget() // per_model)))


def is_out_of_memory(error: BaseException) -> bool:
    text = str(error)
    return any(s in text for s in ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory",
                                   "OOM"))


@functools.lru_cache(maxsize=32)
def _compiled_program(model: DendriticModel, in_dim: int, n_train: int,
                      eval_shapes: tuple, settings: TrainSettings, members: int, padded: bool,
                      n_devices: int = 1):
    """Compile init and epoch for one population size; reused by every later chunk.

    On several devices the member axis of every input is sharded across them, and XLA
    partitions the whole program along it.
    """
    t0 = time.perf_counter()
    program = make_train(model, in_dim, n_train, settings, padded)
    split, replicated = population_shardings(n_devices)
    hyper = Hyper(*(jax.ShapeDtypeStruct((members,), d, sharding=split)
                    for d in (jnp.float32, jnp.float32) + (jnp.int32,) * 6))
    keys = jax.ShapeDtypeStruct((members, 2), jnp.uint32, sharding=split)
    data = DeviceData(*(jax.ShapeDtypeStruct(shape, dtype, sharding=replicated)
                        for shape, dtype in eval_shapes))
    # Every output (state and per-member metrics) has the member axis first: keep it split.
    jit = functools.partial(jax.jit, out_shardings=split) if split else jax.jit
    init = jit(program.init).lower(hyper, keys).compile()
    state = jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=split),
        jax.eval_shape(program.init, hyper, keys))
    scalar = jax.ShapeDtypeStruct((), jnp.int32, sharding=replicated)
    order_key = jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=replicated)
    epoch = jit(program.epoch).lower(state, hyper, data, scalar, order_key).compile()
    return init, epoch, time.perf_counter() - t0


def hyper_for(configs: Sequence[ModelConfig], in_dim: int) -> Hyper:
    return Hyper(
        lr=jnp.asarray([c.lr for c in configs], jnp.float32),
        weight_decay=jnp.asarray([c.weight_decay for c in configs], jnp.float32),
        n_resample=jnp.asarray([n_resample_for(c.inputs_per_branch(in_dim), c.percentage_resample,
                                                c.synaptic_resampling) for c in configs], jnp.int32),
        steps_to_resample=jnp.asarray([c.steps_to_resample for c in configs], jnp.int32),
        n_neurons=jnp.asarray([c.n_neurons for c in configs], jnp.int32),
        n_dendrites=jnp.asarray([c.n_dendrites for c in configs], jnp.int32),
        n_inputs=jnp.asarray([c.inputs_per_branch(in_dim) for c in configs], jnp.int32),
        hidden=jnp.asarray([c.hidden_width or 0 for c in configs], jnp.int32))


def member_keys(configs: Sequence[ModelConfig]) -> jax.Array:
    return jnp.stack([jax.random.PRNGKey(c.seed) for c in configs])


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
    compile_time: float
    settings: TrainSettings


def prepare_population(configs: Sequence[ModelConfig], data, settings: TrainSettings, *,
                       lowering: Optional[str] = None,
                       template: Optional[ModelConfig] = None) -> PreparedPopulation:
    """Compile (or fetch from the cache) the program for these members and place their
    inputs on the device(s).

    Without ``template`` all configs must share one shape signature. With ``template`` (a
    config whose sizes bound every member's, see dendrax.search.plan) the population is padded
    to the template's shapes and each member runs at its own sizes.
    """
    in_dim = data.in_dim
    padded = template is not None and any(c.shape_key(in_dim) != template.shape_key(in_dim)
                                          for c in configs)
    first = template if template is not None else configs[0]
    if template is None and len({c.shape_key(in_dim) for c in configs}) != 1:
        keys = sorted(map(str, {c.shape_key(in_dim) for c in configs}))
        raise ValueError(f"a population needs one shape signature, got {keys}")
    if padded:
        _check_fits(configs, template, in_dim)
    n_devices = device_count(settings)
    members = list(configs) + [configs[-1]] * ((-len(configs)) % n_devices)
    lowering = resolve_lowering(lowering or settings.lowering)
    eval_bs = effective_eval_batch(settings, data)
    settings = dataclasses.replace(settings, eval_batch_size=eval_bs)
    dev = device_data(data, eval_bs, n_devices)
    model = build_model(first, data.n_classes, data.image_shape, lowering, settings.matmul_dtype)
    shapes = tuple((a.shape, a.dtype) for a in dev)
    cached = _compiled_program.cache_info().hits
    # Only what shapes the program keys the cache: runs that differ in epochs, seeds or
    # bucket policy reuse it.
    program_settings = dataclasses.replace(settings, n_epochs=1, data_seed=0, chunk_size=None,
                                           padding="exact", halving_eta=None,
                                           halving_min_epochs=1, devices=None)
    init_c, epoch_c, compile_time = _compiled_program(model, in_dim, len(data.x_train), shapes,
                                                      program_settings, len(members), padded,
                                                      n_devices)
    if _compiled_program.cache_info().hits > cached:
        compile_time = 0.0  # compiled for an earlier chunk of the same size
    split, replicated = population_shardings(n_devices)
    hyper = jax.device_put(hyper_for(members, in_dim), split)
    keys = jax.device_put(member_keys(members), split)
    order_key = jax.device_put(jax.random.PRNGKey(settings.data_seed), replicated)
    return PreparedPopulation(members, len(configs), hyper, keys, order_key, dev, init_c,
                              epoch_c, compile_time, settings)


def run_epochs(prepared: PreparedPopulation, state: MemberState, start: int, stop: int,
               history: dict, *, bucket: str = "", progress=None) -> MemberState:
    """Run epochs [start, stop) and append each epoch's metrics (real members only)."""
    n = prepared.n_real
    members = tuple(prepared.configs[:n])
    if progress is not None and start < stop:  # training begins: compile is over
        progress(Progress(bucket=bucket, chunk_models=n, epoch=start,
                          n_epochs=prepared.settings.n_epochs,
                          alive=int(np.asarray(state.alive)[:n].sum()),
                          best_val_accuracy=float("nan"), members=members))
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
                     template: Optional[ModelConfig] = None,
                     progress: Optional[Callable[[Progress], None]] = None):
    """Train configs as one population (no chunking); see :func:`prepare_population`.

    Returns ``(histories, final_state, timings)``: histories maps each metric to an
    (epochs, members) numpy array.
    """
    if progress is not None:
        progress(Progress(bucket=bucket, chunk_models=len(configs), epoch=0,
                          n_epochs=settings.n_epochs, alive=len(configs),
                          best_val_accuracy=float("nan"), phase="compile"))
    prepared = prepare_population(configs, data, settings, lowering=lowering, template=template)
    t0 = time.perf_counter()
    state = prepared.init(prepared.hyper, prepared.keys)
    history: dict = {}
    state = run_epochs(prepared, state, 0, settings.n_epochs, history, bucket=bucket,
                       progress=progress)
    jax.block_until_ready(state)
    run_time = time.perf_counter() - t0
    histories = {m: np.stack(history[m]) for m in METRICS}
    return histories, real_members(state, prepared.n_real), {
        "compile": prepared.compile_time, "run": run_time}


def _check_fits(configs, template, in_dim):
    _, t_soma, *t_sizes, t_strategy = template.shape_key(in_dim)
    for c in configs:
        arch, soma, *sizes, strategy = c.shape_key(in_dim)
        fits = all(s is None or s <= t for s, t in zip(sizes, t_sizes))
        if (arch, soma, strategy) != (template.architecture, t_soma, t_strategy) or not fits:
            raise ValueError(f"{c} does not fit inside the padded shape of {template}")


def train_bucket(configs: Sequence[ModelConfig], data, settings: TrainSettings, *,
                 template: Optional[ModelConfig] = None, overhead: float = 0.0,
                 progress=None, log=print) -> list[TrialOutcome]:
    """Train one bucket in chunks; halve the chunk and retry on out-of-memory."""
    in_dim = data.in_dim
    lowering = resolve_lowering(settings.lowering)
    shape = template if template is not None else configs[0]
    name = shape_label(shape.shape_key(in_dim))
    chunk = settings.chunk_size or default_chunk_size(shape, in_dim, len(data.x_train),
                                                      settings, lowering)
    outcomes: list[TrialOutcome] = []
    start = 0
    compile_total = run_total = 0.0
    raw = []
    while start < len(configs):
        part = configs[start:start + chunk]
        try:
            histories, state, timings = train_population(part, data, settings, lowering=lowering,
                                                         bucket=name, template=template,
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
        run_total += timings["run"]
        raw.append((part, histories, state))
        start += len(part)

    wall = compile_total + run_total
    steps_per_epoch = len(data.x_train) // settings.batch_size
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
