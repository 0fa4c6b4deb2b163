"""Population trainer: many models of one shape signature as one jit/vmap program.

``make_train(...)`` returns pure functions over a population pytree (leading model axis):

- ``init(hyper, keys)``: parameters, connectivity and AdamW state of every member;
- ``epoch(state, hyper, data, epoch, order_key)``: one epoch (``lax.scan`` over the
  steps, with no Python per step) followed by validation and test evaluation;
- ``train(hyper, keys, data, order_key)``: all epochs fused into one ``lax.scan``.

Members differ in seed and in every value that is not a shape (lr, weight decay,
resampling on/off, percentage, interval): those are traced arrays, never static.
A member whose loss or parameters stop being finite, or whose loss exceeds
``settings.divergence_threshold``, is frozen ("diverged"): its updates
become no-ops, so its NaNs never reach its state, and the other members compute exactly
the floats they would compute without it.

``train_configs(...)`` is the device-independent entry point used by the searcher: it
groups configs into buckets (exact shapes, or padded ones: dendrax.buckets), splits a
population across the local devices and into chunks that fit in memory, optionally
stops the weaker models early (dendrax.halving), and returns one :class:`TrialOutcome`
per config.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dendrax.buckets import Bucket, plan_buckets, shape_label
from dendrax.config import ModelConfig, count_params
from dendrax.layers import LayerDims, branch_coordinates, padding_masks
from dendrax.models import DendriticModel, ModelDims, build_model, init_model
from dendrax.rewire import n_resample_for, rewire
from dendrax.trial import Progress, TrainSettings, TrialOutcome

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8
METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
           "test_accuracy", "swaps")

# Stream ids folded into each member's key, so that a member's randomness depends on
# its own seed only, never on its position in a population.
_INIT, _ORDER, _REWIRE = 0, 1, 2


class Hyper(NamedTuple):
    """Per-member traced values (each a scalar; stacked along the model axis): the
    hyperparameters, and the member's own sizes inside a padded bucket."""

    lr: jax.Array
    weight_decay: jax.Array
    n_resample: jax.Array  # connections replaced per branch and round; 0 = off
    steps_to_resample: jax.Array
    n_neurons: jax.Array
    n_dendrites: jax.Array
    n_inputs: jax.Array
    hidden: jax.Array

    @property
    def dims(self) -> ModelDims:
        return ModelDims(self.n_neurons, self.n_dendrites, self.n_inputs, self.hidden)


class MemberState(NamedTuple):
    params: Any
    connectivity: Any
    opt_state: Any
    key: jax.Array  # the member's own PRNG key (constant)
    step: jax.Array  # optimiser steps taken
    alive: jax.Array  # False once diverged
    diverged_step: jax.Array  # step at which the loss first stopped being finite, or -1


class DeviceData(NamedTuple):
    """The dataset on the device, evaluation sets padded to whole evaluation batches."""

    x_train: jax.Array
    y_train: jax.Array
    x_val: jax.Array
    y_val: jax.Array
    val_mask: jax.Array
    x_test: jax.Array
    y_test: jax.Array
    test_mask: jax.Array


def adamw(hyper: Hyper) -> optax.GradientTransformation:
    """AdamW with decoupled weight decay on every parameter, biases included."""
    return optax.adamw(hyper.lr, b1=ADAM_B1, b2=ADAM_B2, eps=ADAM_EPS,
                       weight_decay=hyper.weight_decay)


def _where(cond, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(cond, a, b), new, old)


def _where_members(mask, new, old):
    """Select whole members: ``mask`` has one entry per leading-axis member."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree_util.tree_map(pick, new, old)


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


@dataclasses.dataclass(frozen=True)
class PopulationProgram:
    init: Callable
    epoch: Callable
    train: Callable


def make_train(model: DendriticModel, in_dim: int, n_train: int,
               settings: TrainSettings, padded: bool = False) -> PopulationProgram:
    """Pure population functions for one shape signature (see the module docstring).

    With ``padded=True`` the model's sizes are upper bounds and every member runs at its
    own sizes (``Hyper.dims``); padding is masked to an exact no-op.
    """
    batch_size = settings.batch_size
    steps = n_train // batch_size  # the last partial batch is dropped, as the original
    if steps < 1:
        raise ValueError(f"batch_size={batch_size} is larger than the {n_train} training samples")
    shared_order = settings.data_order == "shared"
    eval_bs = settings.eval_batch_size
    has_soma = model.soma_enabled and model.architecture != "soma_disabled"
    coords = branch_coordinates(model.n_neurons, model.n_dendrites, has_soma)
    k_static = in_dim if model.strategy == "fully-connected" else model.n_dendrite_inputs

    def dims_of(hyper):
        return hyper.dims if padded else None

    def apply(params, connectivity, x, hyper):
        return model.apply({"params": params, "connectivity": connectivity}, x, dims_of(hyper))

    def init_member(key, hyper):
        params, connectivity = init_model(model, jax.random.fold_in(key, _INIT), in_dim,
                                          dims_of(hyper))
        return MemberState(params, connectivity, adamw(hyper).init(params), key,
                           jnp.int32(0), jnp.bool_(True), jnp.int32(-1))

    def init(hyper: Hyper, keys: jax.Array) -> MemberState:
        return jax.vmap(init_member)(keys, hyper)

    def loss_fn(params, connectivity, x, y, hyper):
        logits = apply(params, connectivity, x, hyper)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, jnp.sum(jnp.argmax(logits, -1) == y)

    def sgd_step(state: MemberState, hyper: Hyper, x, y):
        (loss, correct), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.connectivity, x, y, hyper)
        updates, opt_state = adamw(hyper).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ok = state.alive & jnp.isfinite(loss) & _all_finite(params)
        if settings.divergence_threshold is not None:
            ok &= loss <= settings.divergence_threshold
        newly_dead = state.alive & ~ok
        state = state._replace(
            params=_where(ok, params, state.params),
            opt_state=_where(ok, opt_state, state.opt_state),
            step=state.step + ok.astype(jnp.int32),
            alive=ok,
            diverged_step=jnp.where(newly_dead, state.step + 1, state.diverged_step))
        return state, jnp.where(ok, loss, jnp.nan), jnp.where(ok, correct, 0)

    def rewire_member(state: MemberState, hyper: Hyper):
        key = jax.random.fold_in(jax.random.fold_in(state.key, _REWIRE), state.step)
        masks = padding_masks(model.n_neurons, model.n_dendrites, k_static, has_soma,
                              None if not padded else LayerDims(*hyper.dims[:3]),
                              fully_connected=model.strategy == "fully-connected")
        params, connectivity, opt_state, accepted = rewire(
            state.params, state.connectivity, state.opt_state, key, hyper.n_resample, in_dim,
            coords, masks.connection)
        return state._replace(params=params, connectivity=connectivity,
                              opt_state=opt_state), accepted

    def population_step(state: MemberState, hyper: Hyper, x, y):
        batch_axis = None if shared_order else 0
        state, loss, correct = jax.vmap(sgd_step, in_axes=(0, 0, batch_axis, batch_axis))(
            state, hyper, x, y)
        due = (state.alive & (hyper.n_resample > 0)
               & (state.step % jnp.maximum(hyper.steps_to_resample, 1) == 0))

        def resample(state):
            rewired, accepted = jax.vmap(rewire_member)(state, hyper)
            return _where_members(due, rewired, state), jnp.where(due, accepted, 0)

        def skip(state):
            return state, jnp.zeros(due.shape, jnp.int32)

        # A real branch at population level: the rewiring work runs only on the steps
        # where at least one member is due, not on every step.
        state, swaps = jax.lax.cond(jnp.any(due), resample, skip, state)
        return state, loss, correct, swaps

    def evaluate(state: MemberState, hyper: Hyper, x, y, mask):
        n_valid = jnp.sum(mask)

        def body(totals, i):
            xb = jax.lax.dynamic_slice_in_dim(x, i * eval_bs, eval_bs)
            yb = jax.lax.dynamic_slice_in_dim(y, i * eval_bs, eval_bs)
            mb = jax.lax.dynamic_slice_in_dim(mask, i * eval_bs, eval_bs)
            logits = jax.vmap(lambda p, c, h: apply(p, c, xb, h))(
                state.params, state.connectivity, hyper)
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, yb[None])
            correct = (jnp.argmax(logits, -1) == yb[None]) & mb[None]
            return (totals[0] + jnp.sum(losses * mb[None], -1),
                    totals[1] + jnp.sum(correct, -1)), None

        members = state.step.shape[0]
        zeros = (jnp.zeros(members), jnp.zeros(members, jnp.int32))
        n_batches = x.shape[0] // eval_bs
        (loss_sum, correct), _ = jax.lax.scan(body, zeros, jnp.arange(n_batches))
        denom = jnp.maximum(n_valid, 1)
        nan = jnp.full(members, jnp.nan)
        return (jnp.where(n_valid > 0, loss_sum / denom, nan),
                jnp.where(n_valid > 0, correct / denom, nan))

    def epoch(state: MemberState, hyper: Hyper, data: DeviceData, epoch_index, order_key):
        if shared_order:
            perm = jax.random.permutation(jax.random.fold_in(order_key, epoch_index), n_train)
        else:
            perm = jax.vmap(lambda k: jax.random.permutation(
                jax.random.fold_in(jax.random.fold_in(k, _ORDER), epoch_index), n_train))(state.key)

        def body(state, i):
            if shared_order:
                batch = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)
            else:
                batch = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size, axis=1)
            x, y = data.x_train[batch], data.y_train[batch]
            state, loss, correct, swaps = population_step(state, hyper, x, y)
            return state, (loss, correct, swaps)

        state, (loss, correct, swaps) = jax.lax.scan(body, state, jnp.arange(steps))
        val_loss, val_acc = evaluate(state, hyper, data.x_val, data.y_val, data.val_mask)
        test_loss, test_acc = evaluate(state, hyper, data.x_test, data.y_test, data.test_mask)
        metrics = {
            "train_loss": jnp.mean(loss, 0),
            "train_accuracy": jnp.sum(correct, 0) / (steps * batch_size),
            "val_loss": val_loss, "val_accuracy": val_acc,
            "test_loss": test_loss, "test_accuracy": test_acc,
            "swaps": jnp.sum(swaps, 0),
        }
        return state, metrics

    def train(hyper: Hyper, keys: jax.Array, data: DeviceData, order_key, n_epochs: int):
        state = init(hyper, keys)
        return jax.lax.scan(lambda s, e: epoch(s, hyper, data, e, order_key),
                            state, jnp.arange(n_epochs))

    return PopulationProgram(init=init, epoch=epoch, train=train)


# ---- host side ---------------------------------------------------------------------

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


# Tests set this to pretend that populations above this many members do not fit.
SIMULATED_MEMORY_LIMIT_MODELS: Optional[int] = None


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


def _hyper_for(configs: Sequence[ModelConfig], in_dim: int) -> Hyper:
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
    config whose sizes bound every member's, see dendrax.buckets) the population is padded
    to the template's shapes and each member runs at its own sizes.
    """
    if SIMULATED_MEMORY_LIMIT_MODELS is not None and len(configs) > SIMULATED_MEMORY_LIMIT_MODELS:
        raise MemoryError(f"RESOURCE_EXHAUSTED: simulated, {len(configs)} members do not fit")
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
    hyper = jax.device_put(_hyper_for(members, in_dim), split)
    keys = jax.device_put(member_keys(members), split)
    order_key = jax.device_put(jax.random.PRNGKey(settings.data_seed), replicated)
    return PreparedPopulation(members, len(configs), hyper, keys, order_key, dev, init_c,
                              epoch_c, compile_time, settings)


def run_epochs(prepared: PreparedPopulation, state: MemberState, start: int, stop: int,
               history: dict, *, bucket: str = "", progress=None) -> MemberState:
    """Run epochs [start, stop) and append each epoch's metrics (real members only)."""
    n = prepared.n_real
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
                              best_val_accuracy=float(np.nanmax(val)) if val.size else float("nan")))
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
                train_time=wall / len(configs), padding_overhead=overhead))
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


def plan_configs(configs: Sequence[ModelConfig], data, settings: TrainSettings) -> list[Bucket]:
    """The buckets :func:`train_configs` will train, under ``settings.padding``."""
    backend = "cpu" if jax.default_backend() == "cpu" else "gpu"
    return plan_buckets(configs, data.in_dim, settings.padding, n_classes=data.n_classes,
                        samples=settings.n_epochs * len(data.x_train), backend=backend)


def train_configs(configs: Sequence[ModelConfig], data, settings: TrainSettings = TrainSettings(),
                  *, progress=None, on_bucket_done=None, log=print) -> list[TrialOutcome]:
    """Train every config on ``data``; one outcome per config, in input order.

    Configs are grouped into buckets (by exact shape, or padded: ``settings.padding``,
    see :func:`dendrax.buckets.plan_buckets`) and each bucket trains as one vmapped
    population; ``on_bucket_done(outcomes)`` is called as each bucket finishes.
    """
    settings.validate()
    for config in configs:
        config.validate(data.in_dim)
    if settings.halving_eta is not None:
        from dendrax.halving import train_with_halving  # builds on this module

        return train_with_halving(configs, data, settings, progress=progress,
                                  on_bucket_done=on_bucket_done, log=log)
    results: list[Optional[TrialOutcome]] = [None] * len(configs)
    for bucket in plan_configs(configs, data, settings):
        indices = bucket.members
        outcomes = train_bucket([configs[i] for i in indices], data, settings,
                                template=bucket.template if bucket.padded else None,
                                overhead=bucket.overhead, progress=progress, log=log)
        for i, outcome in zip(indices, outcomes):
            results[i] = outcome
        if on_bucket_done is not None:
            on_bucket_done(outcomes)
    return results  # type: ignore[return-value]
