"""Population-based training inside one compiled population (the JAX side).

The whole population is one program: one bucket padded to the largest sizes of its
initial members, so that any member can take any other's place (its sizes travel with it
in ``Hyper.sizes``). A Python loop runs the compiled epoch program between generations
(as successive halving does between rungs); at each generation boundary

1. a strategy (pure Python: dendrax.search.pbt) decides from the validation accuracies
   which members copy which;
2. :func:`exploit` copies each chosen member's WHOLE state from its parent (parameters,
   connectivity, optimiser state, step count, alive flag, divergence step) and its
   ``Hyper`` (sizes included) with one gather over the member axis, compiled once;
3. every copied member continues on a fresh key stream, its own seed folded with the
   generation (:func:`fresh_keys`): it does not replay its parent's data order and
   rewiring;
4. the explored hyperparameters enter through ``Hyper`` (traced arrays), so nothing
   recompiles;
5. the population state is checkpointed atomically (one file: msgpack, by
   flax.serialization, of the state's leaves and of the host state's JSON; written to a
   temporary file, fsync'ed and renamed), so a killed run resumes at its last generation
   and ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dendrax.config import ModelConfig
from dendrax.errors import ConfigError
from dendrax.nn.lowerings import resolve_lowering
from dendrax.plan import Bucket
from dendrax.population.compile import device_count, population_shardings
from dendrax.population.memory import check_models_fit, default_chunk_size
from dendrax.population.program import Hyper, MemberState, hyper_for
from dendrax.population.runner import make_outcome, prepare_population, run_epochs
from dendrax.spec import METRICS, ModelSizes, TrainSettings, TrialOutcome

CHECKPOINT_VERSION = 1


# ---- the pure functions ---------------------------------------------------------------

def exploit(state: MemberState, hyper: Hyper, dst, src) -> tuple[MemberState, Hyper]:
    """Member ``dst[i]`` becomes an exact copy of member ``src[i]`` (every leaf of its state
    and of its Hyper, sizes included); the others are untouched. ``src`` is read before
    anything is written, so a member may be both a parent and (later) a copy."""
    take = lambda x: x.at[dst].set(x[src])
    return jax.tree_util.tree_map(take, state), jax.tree_util.tree_map(take, hyper)


def fresh_keys(own_keys: jax.Array, generation) -> jax.Array:
    """Each member's keys from ``generation`` (>= 1) on, as raw key data: its own keys (one
    per stream, from its own seeds) each folded with the generation."""
    flat = own_keys.reshape(-1)
    folded = jax.vmap(lambda k: jax.random.fold_in(k, generation))(flat)
    return jax.random.key_data(folded).reshape(own_keys.shape + (-1,))


def rekey(state: MemberState, copied, keys: jax.Array) -> MemberState:
    """The members where ``copied`` is True take ``keys`` (raw key data) as their keys."""
    data = jax.random.key_data(state.key)
    mask = copied.reshape(copied.shape + (1,) * (data.ndim - 1))
    data = jnp.where(mask, keys, data)
    return state._replace(key=jax.random.wrap_key_data(data, impl=jax.random.key_impl(state.key)))


def _generation_update(state, hyper, src, copied, own_keys, generation):
    """One generation's exploit as one fixed-shape program: every member i takes member
    src[i] (src[i] == i for those that keep their own), then the copies are re-keyed."""
    n = src.shape[0]
    state, hyper = exploit(state, hyper, jnp.arange(n), src)
    return rekey(state, copied, fresh_keys(own_keys, generation)), hyper


generation_update = jax.jit(_generation_update)


# ---- checkpoints --------------------------------------------------------------------------

def _is_key(leaf) -> bool:
    return jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def save_checkpoint(path: str, state: MemberState, host: dict) -> None:
    """One file, written atomically (temporary file, fsync, rename): the msgpack
    (flax.serialization) of the state's leaves (keys as raw key data) and of the host
    state as JSON text. One file, so a kill can never pair one generation's state with
    another's host state."""
    from flax import serialization

    leaves = [np.asarray(jax.random.key_data(x) if _is_key(x) else x)
              for x in jax.tree_util.tree_leaves(state)]
    host = {**host, "version": CHECKPOINT_VERSION}
    blob = serialization.msgpack_serialize({
        "host": json.dumps(host), "leaves": {str(i): a for i, a in enumerate(leaves)}})
    _atomic_write(path, blob)


def load_checkpoint(path: str, like: MemberState) -> Optional[tuple[MemberState, dict]]:
    """(state, host state) from a checkpoint, or None when there is none, or it is not
    one this version wrote; ``like`` is a state of the same structure (its leaves' key
    types and shapes)."""
    from flax import serialization

    try:
        with open(path, "rb") as f:
            raw = serialization.msgpack_restore(f.read())
        host = json.loads(raw["host"])
    except Exception:  # noqa: BLE001 - missing, cut short or foreign: start afresh
        return None
    leaves, treedef = jax.tree_util.tree_flatten(like)
    stored = raw.get("leaves") or {}
    if host.get("version") != CHECKPOINT_VERSION or len(stored) != len(leaves):
        return None
    restored = []
    for i, leaf in enumerate(leaves):
        value = jnp.asarray(stored[str(i)])
        if _is_key(leaf):
            value = jax.random.wrap_key_data(value, impl=jax.random.key_impl(leaf))
        if value.shape != leaf.shape or value.dtype != leaf.dtype:
            return None
        restored.append(value)
    return jax.tree_util.tree_unflatten(treedef, restored), host


# ---- the run ------------------------------------------------------------------------------

def population_shape(configs: Sequence[ModelConfig], in_dim: int):
    """The padded shape every member fits in: the largest of each size over the members,
    all of one structure (architecture, soma, strategy, hidden layer or not)."""
    shapes = [c.shape(in_dim) for c in configs]
    structures = {s.structure for s in shapes}
    if len(structures) != 1:
        raise ConfigError(
            f"population-based training trains one population, where any member can take "
            f"any other's place, so every member needs one structure (architecture, soma, "
            f"strategy, hidden layer); the drawn population mixes {len(structures)}: fix "
            f"those parameters in the space")
    sizes = ModelSizes(*(max(column) for column in zip(*(s.sizes for s in shapes))))
    return shapes[0].with_sizes(sizes)


def train_pbt(configs: Sequence[ModelConfig], data, settings: TrainSettings, *, strategy,
              progress=None, on_bucket_done=None, on_plan=None, log=print,
              on_exploits: Optional[Callable[[int, int, list, list], None]] = None,
              on_generation: Optional[Callable[[int, int], None]] = None,
              checkpoint: Optional[str] = None, resume: bool = False,
              lineage: Optional[list] = None) -> list[TrialOutcome]:
    """Train ``configs`` as one population under ``strategy`` (``boundaries(n_epochs)``,
    ``decide(generation, configs, scores)``: dendrax.search.pbt); one outcome per initial
    config, in input order (the Trainer contract; an outcome's config is the member's
    initial one, its history the member's slot, exploits included).

    ``on_exploits(generation, epoch, decisions, old_configs)`` is called after each
    generation's exploits and returns its lineage records, which are appended to
    ``lineage`` (and kept in the checkpoint, so a resumed run holds them all);
    ``on_generation(generation, epoch)`` is called after the generation's checkpoint.
    ``checkpoint``: a file path; with ``resume`` a checkpoint there of the same population
    is continued from."""
    settings.validate()
    for config in configs:
        config.validate(data.in_dim)
    settings = dataclasses.replace(settings, lowering=resolve_lowering(
        settings.lowering, matmul_dtype=settings.matmul_dtype))
    shape = population_shape(configs, data.in_dim)
    check_models_fit([shape], data, settings)
    chunk = settings.chunk_size or default_chunk_size(shape, data, settings, settings.lowering)
    if chunk < len(configs):
        raise ConfigError(f"population-based training needs the whole population of "
                          f"{len(configs)} members in one program, but only {chunk} fit in "
                          f"device memory (chunk_size); use a smaller population")
    bucket = Bucket(shape, tuple(range(len(configs))), padded=True, overhead=0.0)
    if on_plan is not None:
        on_plan([bucket])
    n = len(configs)
    initial = list(configs)
    current = list(configs)
    prepared = prepare_population(current, data, settings, shape=shape, bucket=shape.label,
                                  progress=progress, n_real=n)
    n_devices = device_count(settings)
    split, _ = population_shardings(n_devices)
    members = len(prepared.configs)  # n, padded with repeats to the device count
    own_keys = prepared.keys
    t0 = time.perf_counter()
    history: dict = {}
    start, generation = 0, 0
    lineage = [] if lineage is None else lineage
    # What a checkpoint must match to be resumed: the members and every setting.
    fingerprint = {"members": [c.to_dict() for c in initial],
                   "settings": json.loads(json.dumps(dataclasses.asdict(settings), default=str))}
    state = None
    if checkpoint is not None and resume:
        like = prepared.init(prepared.hyper, prepared.keys)  # the state's structure
        loaded = load_checkpoint(checkpoint, like)
        if loaded is not None and loaded[1].get("initial") == fingerprint \
                and loaded[1].get("strategy") == _strategy_spec(strategy):
            state, host = loaded
            state = jax.device_put(state, split) if split else state
            start, generation = host["epoch"], host["generation"]
            current = [ModelConfig.from_dict(c) for c in host["configs"]]
            history = {m: [np.asarray(v, dtype=np.float64) for v in host["history"][m]]
                       for m in host["history"]}
            lineage[:] = host["lineage"]
            if log:
                log(f"[dendrax] PBT: resumed from {checkpoint} at generation {generation} "
                    f"(epoch {start})")
    hyper = prepared.hyper
    if state is None:
        state = prepared.init(prepared.hyper, prepared.keys)
    else:
        hyper = _hyper(current, members, data, split)
    boundaries = strategy.boundaries(settings.n_epochs)
    stops = [e for e in boundaries if e > start] + [settings.n_epochs]
    for stop in stops:
        run = dataclasses.replace(prepared, hyper=hyper)
        state = run_epochs(run, state, start, stop, history, bucket=shape.label,
                           progress=progress)
        start = stop
        if stop == settings.n_epochs:
            break
        generation += 1
        alive = np.asarray(state.alive)[:n]
        val = np.asarray(history["val_accuracy"][-1])[:n]
        scores = [float(v) if a and math.isfinite(v) else -math.inf for v, a in zip(val, alive)]
        decisions = strategy.decide(generation, current, scores)
        old = list(current)
        src = np.arange(members)
        copied = np.zeros(members, bool)
        for d in decisions:
            if d.parent is not None:
                src[d.member] = d.parent
                copied[d.member] = True
            current[d.member] = d.config
        if copied.any():
            state, _ = generation_update(state, hyper, jnp.asarray(src, jnp.int32),
                                         jnp.asarray(copied), own_keys, jnp.int32(generation))
            if split:  # the compiled epoch takes its members split across the devices
                state = jax.device_put(state, split)
        hyper = _hyper(current, members, data, split)
        if on_exploits is not None and decisions:
            lineage.extend(on_exploits(generation, stop, decisions, old) or [])
        if checkpoint is not None:
            save_checkpoint(checkpoint, state, {
                "generation": generation, "epoch": stop, "initial": fingerprint,
                "strategy": _strategy_spec(strategy),
                "configs": [c.to_dict() for c in current],
                "history": {m: [np.asarray(v).tolist() for v in vs]
                            for m, vs in history.items()},
                "lineage": lineage})
        if log:
            log(f"[dendrax] PBT generation {generation} after epoch {stop}: "
                f"{sum(d.parent is not None for d in decisions)} members exploited; best val "
                f"acc {max(scores):.4f}")
        if on_generation is not None:
            on_generation(generation, stop)
    jax.block_until_ready(state)
    wall = time.perf_counter() - t0
    diverged_step = np.asarray(state.diverged_step)
    steps_per_epoch = len(data.x_train) // settings.batch_size
    outcomes = [make_outcome(
        config, {m: np.stack(history[m])[:, i] for m in METRICS}, int(diverged_step[i]),
        steps_per_epoch, data, bucket=shape.label, bucket_size=n,
        bucket_wall_time=wall + prepared.compile_time, compile_time=prepared.compile_time,
        train_time=wall / n, n_devices=n_devices)
        for i, config in enumerate(initial)]
    if on_bucket_done is not None:
        on_bucket_done(outcomes)
    return outcomes


def _strategy_spec(strategy) -> Any:
    spec = getattr(strategy, "to_spec", None)
    return json.loads(json.dumps(spec() if spec else repr(strategy), default=str))


def _hyper(configs: Sequence[ModelConfig], members: int, data, split) -> Hyper:
    """The population's Hyper for these configs (padded with repeats to ``members``)."""
    configs = list(configs) + [configs[-1]] * (members - len(configs))
    hyper = hyper_for(configs, data.in_dim)
    return jax.device_put(hyper, split) if split else hyper
