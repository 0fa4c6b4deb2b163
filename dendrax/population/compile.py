"""Compiled population programs: the spec of a population, and one compile per spec.

A population of configs is laid out on the local devices (:func:`population_layout`: its
members padded to a multiple of the devices, its :class:`ProgramSpec`). The program of a
spec is compiled ahead of time, on one background thread, once: :func:`request_program`
returns it as a future, so a population asked for early (:func:`prefetch_program`)
compiles while an earlier one trains. Compiled programs stay in memory, the most recently
used first, and across processes in JAX's compilation cache.
"""

from __future__ import annotations

import collections
import functools
import queue
import threading
import time
import warnings
from concurrent.futures import Future
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dendrax.config import ModelConfig
from dendrax.nn.lowerings import resolve_lowering
from dendrax.population.compile_cache import ensure_compilation_cache
from dendrax.population.memory import default_chunk_size, eval_rows
from dendrax.population.program import DeviceData, hyper_for, make_train, member_keys, seed_keys
from dendrax.spec import ModelShape, ProgramSpec, TrainSettings


# ---- where a population runs ------------------------------------------------------------

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
    """Local devices a population is split across: ``settings.devices``, at most as many
    as exist (with a warning when fewer exist); all of them when None."""
    available = jax.local_device_count()
    if settings.devices is not None and settings.devices > available:
        warnings.warn(f"devices={settings.devices} but only {available} local device(s) "
                      f"exist; training on {available}", RuntimeWarning, stacklevel=2)
    return available if settings.devices is None else max(1, min(settings.devices, available))


# ---- the spec of a population -----------------------------------------------------------

def effective_eval_batch(settings: TrainSettings, data) -> int:
    """The evaluation batch: ``settings.eval_batch_size``, at most the larger evaluation set."""
    largest = max(len(data.x_val), len(data.x_test), 1)
    return int(min(settings.eval_batch_size, largest))


def program_spec(shape: ModelShape, data, settings: TrainSettings, *, members: int,
                 padded: bool, n_devices: int, lowering: Optional[str] = None) -> ProgramSpec:
    """The :class:`ProgramSpec` of a population of ``members`` models of ``shape``; its
    lowering is the resolved one (:func:`dendrax.nn.lowerings.resolve_lowering`)."""
    eval_bs = effective_eval_batch(settings, data)
    n_eval = sum(eval_rows(len(x), eval_bs) for x in (data.x_val, data.x_test))
    return ProgramSpec(
        shape=shape, n_classes=int(data.n_classes), image_shape=tuple(data.image_shape),
        in_dim=int(data.in_dim), n_train=len(data.x_train), n_eval=n_eval,
        eval_batch_size=eval_bs, batch_size=settings.batch_size,
        data_order=settings.data_order,
        lowering=resolve_lowering(lowering or settings.lowering,
                                  matmul_dtype=settings.matmul_dtype),
        matmul_dtype=settings.matmul_dtype, divergence_threshold=settings.divergence_threshold,
        padded=padded, members=members, n_devices=n_devices)


def population_layout(configs: Sequence[ModelConfig], data, settings: TrainSettings,
                      shape: Optional[ModelShape] = None, lowering: Optional[str] = None):
    """(members padded to the device count, the program's spec) for these configs.

    Without ``shape`` all configs must share one shape; with it, each must fit inside it.
    """
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


# ---- compiling, once per spec -----------------------------------------------------------

class CompiledProgram(NamedTuple):
    init: Callable
    epoch: Callable
    seconds: float  # wall time its compile took (in whichever thread compiled it)


# Compiled programs by spec, as futures, least recently used first: a program is compiled
# once, on the compile thread, whether it was asked for ahead of time or when needed.
_PROGRAMS: "collections.OrderedDict[ProgramSpec, Future]" = collections.OrderedDict()
_PROGRAMS_KEPT = 32  # each holds hundreds of memory mappings; older ones are reloaded
_PROGRAMS_LOCK = threading.Lock()


class _CompileThread:
    """One daemon thread that runs submitted calls in order, each returning a Future.

    A daemon, unlike a ThreadPoolExecutor's worker, so that the interpreter never waits
    for a compile on its way out: a Ctrl-C during a compile exits at once, and a second
    Ctrl-C cannot interrupt the interpreter's join of the thread (which ended in a C++
    ``terminate``). The command line leaves with ``os._exit`` while a compile is in flight
    (see :func:`compiling`), so XLA never runs during the interpreter's teardown."""

    def __init__(self) -> None:
        self._queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._busy = 0  # calls submitted and not finished

    def submit(self, function: Callable, *args) -> Future:
        future: Future = Future()
        with self._lock:
            self._busy += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="dendrax-compile",
                                                daemon=True)
                self._thread.start()
        self._queue.put((future, function, args))
        return future

    def busy(self) -> bool:
        with self._lock:
            return self._busy > 0

    def _work(self) -> None:
        while True:
            future, function, args = self._queue.get()
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(function(*args))
                    except BaseException as error:  # noqa: BLE001 - handed to the waiter
                        future.set_exception(error)
            finally:
                with self._lock:
                    self._busy -= 1


_COMPILE_THREAD = _CompileThread()


def compiling() -> bool:
    """Whether a program is compiling (or queued to) on the compile thread."""
    return _COMPILE_THREAD.busy()
_COMPILE_TIME_REPORTED: set = set()  # specs whose compile time a population has reported


def _compile(spec: ProgramSpec) -> CompiledProgram:
    """Compile init and epoch for one spec.

    The argument types are those of the runner's own inputs (:func:`hyper_for`,
    :func:`member_keys`, :func:`seed_keys`), read by ``jax.eval_shape`` without computing
    anything, so they cannot drift from what the runner passes. On several devices the
    member axis of every input is sharded across them, and XLA partitions the whole
    program along it. ``init`` runs once per population, so on the CPU it is compiled at
    XLA's lowest backend optimisation level, which compiles it several times faster
    (docs/benchmarks.md, "Fixed costs").
    """
    t0 = time.perf_counter()
    program = make_train(spec)
    split, replicated = population_shardings(spec.n_devices)
    # Any configs will do: only the shapes and dtypes of what they build are read.
    placeholders = [ModelConfig()] * spec.members

    def typed(function, sharding):
        return jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
            jax.eval_shape(function))

    hyper = typed(lambda: hyper_for(placeholders, spec.in_dim), split)
    keys = typed(lambda: member_keys(placeholders), split)
    order_key = typed(lambda: seed_keys([0])[0], replicated)
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
    epoch_index = jax.ShapeDtypeStruct((), jnp.int32, sharding=replicated)
    epoch = jit(program.epoch).lower(state, hyper, data, epoch_index, order_key).compile()
    return CompiledProgram(init, epoch, time.perf_counter() - t0)


def request_program(spec: ProgramSpec) -> Future:
    """The compiled program of ``spec`` as a future: compiled on the compile thread
    unless compiled, or asked for, before. Asking ahead lets it compile while an earlier
    population trains."""
    ensure_compilation_cache()
    with _PROGRAMS_LOCK:
        future = _PROGRAMS.get(spec)
        if future is None or (future.done() and future.exception() is not None):
            future = _COMPILE_THREAD.submit(_compile, spec)
            _PROGRAMS[spec] = future
            while len(_PROGRAMS) > _PROGRAMS_KEPT:
                _COMPILE_TIME_REPORTED.discard(_PROGRAMS.popitem(last=False)[0])
        else:
            _PROGRAMS.move_to_end(spec)
        return future


def compile_time_to_report(spec: ProgramSpec, program: CompiledProgram) -> float:
    """``program.seconds`` for the first population that runs it, 0.0 for later ones, so
    that each compile is counted once."""
    with _PROGRAMS_LOCK:
        first = spec not in _COMPILE_TIME_REPORTED
        _COMPILE_TIME_REPORTED.add(spec)
    return program.seconds if first else 0.0


def prefetch_program(configs: Sequence[ModelConfig], data, settings: TrainSettings, *,
                     shape: Optional[ModelShape] = None) -> None:
    """Start compiling, on the compile thread, the program the first chunk of this
    bucket will need, so that it compiles while an earlier population trains."""
    chunk = settings.chunk_size or default_chunk_size(
        shape or configs[0].shape(data.in_dim), data, settings,
        resolve_lowering(settings.lowering, matmul_dtype=settings.matmul_dtype))
    _, spec = population_layout(configs[:chunk], data, settings, shape)
    request_program(spec)


def clear_programs() -> None:
    """Forget every compiled program held in memory (the on-disk cache is kept)."""
    with _PROGRAMS_LOCK:
        _PROGRAMS.clear()
        _COMPILE_TIME_REPORTED.clear()
