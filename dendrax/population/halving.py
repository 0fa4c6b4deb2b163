"""Successive halving inside populations: Hyperband's rungs, applied in-batch.

Every bucket trains its models for r epochs (``halving_min_epochs``). Then all models of
the sweep, across buckets, are ranked by validation accuracy (diverged ones last) and only
the best ⌈n/η⌉ go on, for η·r epochs in total, then η²·r, … up to ``n_epochs``.

Survivors are compacted into a smaller population rather than masked, so a model that
stops costs nothing afterwards. A bucket's population size is rounded up to a power of two
(the extra slots repeat a survivor and their results are dropped), so each bucket compiles
at most log2(size) + 2 programs however the rungs split. The first population holds
exactly the bucket's members (most models stop at the first rung, so idle slots there
would cost the most). A bucket shrinks only when the compute it saves over the remaining
epochs (measured epoch time) exceeds the compile it costs (measured compile time);
otherwise it keeps its size and program, and the slots of stopped models repeat a
survivor.

A stopped model's outcome has ``stopped_epoch`` set and its history ends there; it is
handed to ``on_bucket_done`` as soon as it stops.

Ties in validation accuracy go to the model earlier in the sweep. A sweep can replay
models that already finished (``replay``: a resumed search's models from its log, each
at its place in the sweep): at every rung they are ranked with the models training, by
the validation accuracy their recorded history holds at the rung's end, so the models
that train go on exactly when they would have in the uninterrupted sweep.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dendrax.config import ModelConfig
from dendrax.spec import METRICS, ModelShape, TrainSettings, TrialOutcome
from dendrax.plan import Bucket
from dendrax.population.compile import (device_count, population_layout, population_shardings,
                                        request_program)
from dendrax.population.runner import make_outcome, prepare_population, run_epochs


def rung_schedule(n_epochs: int, eta: int, min_epochs: int) -> list[int]:
    """Epoch counts at which the rungs end: r, ηr, η²r, … and finally n_epochs."""
    ends, epoch = [], min_epochs
    while epoch < n_epochs:
        ends.append(epoch)
        epoch *= eta
    return ends + [n_epochs]


def mean_epochs(n_epochs: int, eta: int, min_epochs: int) -> float:
    """Epochs a model trains on average under the rungs: the whole first rung, then each
    later rung's epochs times the share ``η^-i`` of models still training there."""
    ends = rung_schedule(n_epochs, eta, min_epochs)
    return sum((end - start) / eta ** i for i, (start, end) in enumerate(zip([0] + ends, ends)))


def keep_count(n_models: int, eta: int) -> int:
    """How many of n models go on to the next rung: ⌈n/η⌉."""
    return math.ceil(n_models / eta)


def replay_score(outcome: TrialOutcome, epoch: int) -> Optional[float]:
    """A finished model's score at the rung ending at ``epoch``: its validation accuracy
    then (-inf when it had diverged by then or the value is not finite), or None when it
    did not train that far (halving stopped it at an earlier rung)."""
    values = outcome.history.get("val_accuracy") or []
    if len(values) < epoch or (outcome.stopped_epoch is not None
                               and outcome.stopped_epoch < epoch):
        return None
    if outcome.diverged and (outcome.diverged_epoch is None or outcome.diverged_epoch <= epoch):
        return -math.inf
    value = float(values[epoch - 1])
    return value if math.isfinite(value) else -math.inf


def rung_survivors(scores: dict, eta: int) -> set:
    """The places (any sortable keys) that go on from a rung: the best ⌈n/η⌉ of
    ``scores`` (place -> score), ties broken by place."""
    ranked = sorted(scores, key=lambda place: (-scores[place], place))
    return set(ranked[:keep_count(len(ranked), eta)])


def _population_size(n: int, n_devices: int, first: bool = False) -> int:
    """Slots for n models: the next power of two, or for a bucket's first population (its
    first program, whatever the rungs) n itself; a multiple of the devices either way."""
    size = n if first else 1 << (n - 1).bit_length()
    return max(-(-size // n_devices) * n_devices, n_devices)


def worth_shrinking(current: int, smaller: int, epochs_left: int, epoch_seconds: float,
                    compile_seconds: float) -> bool:
    """Shrink a population when the compute saved beats one more compile."""
    saved = epochs_left * epoch_seconds * (1 - smaller / current)
    return saved > compile_seconds


@dataclasses.dataclass
class _LivePopulation:
    """A bucket of the plan while it trains under halving: its members still training,
    its population (members and filler), their state and its running times."""

    label: str
    shape: ModelShape
    overhead: float
    members: list[int]  # config indices, in population order
    population: list = dataclasses.field(default_factory=list)  # its configs, with filler
    state: object = None
    compile_time: float = 0.0
    run_time: float = 0.0
    size: int = 0  # members in the population, the bucket's whole life (for reporting)
    epoch_seconds: float = 0.0  # the last rung's time per epoch
    program_seconds: float = 0.0  # the first compile of this bucket's program


def train_with_halving(configs: Sequence[ModelConfig], plan: Sequence[Bucket], data,
                       settings: TrainSettings, *, progress=None, on_bucket_done=None,
                       log=print, replay=None) -> list[TrialOutcome]:
    """Train the buckets of ``plan`` with successive halving (see the module doc).

    ``replay``: {place in the sweep: outcome} of models that already finished; the
    ``configs`` fill the other places, in order. Ranked at every rung, never trained."""
    eta, n_epochs = settings.halving_eta, settings.n_epochs
    replay = dict(replay or {})
    n_sweep = len(configs) + len(replay)
    if any(not isinstance(p, int) or not 0 <= p < n_sweep for p in replay):
        raise ValueError(f"replay places must be integers in [0, {n_sweep})")
    place = [p for p in range(n_sweep) if p not in replay]  # config index -> its place
    n_devices = device_count(settings)
    split, _ = population_shardings(n_devices)
    steps_per_epoch = len(data.x_train) // settings.batch_size
    history: dict[int, dict[str, list]] = {i: {m: [] for m in METRICS} for i in range(len(configs))}
    time_share = np.zeros(len(configs))
    results: list[Optional[TrialOutcome]] = [None] * len(configs)

    buckets = [_LivePopulation(b.label, b.shape, b.overhead, list(b.members),
                       size=len(b.members)) for b in plan]

    def compact(bucket: _LivePopulation, positions: list[int], epochs_left: int = 0) -> None:
        """Make the bucket's population the members at ``positions`` (its state gathered
        from the current one); the first call lays out the whole bucket."""
        members = [bucket.members[p] for p in positions]
        first = not bucket.population
        size = _population_size(len(members), n_devices, first=first)
        if not first:
            current = len(bucket.population)
            if size < current and not worth_shrinking(current, size, epochs_left,
                                                      bucket.epoch_seconds,
                                                      bucket.program_seconds):
                size = current  # keep the compiled program; stopped slots repeat a survivor
            gather = jnp.asarray(positions + [positions[0]] * (size - len(positions)))
            state = jax.tree_util.tree_map(lambda a: a[gather], bucket.state)
            bucket.state = jax.device_put(state, split) if split else state
        filler = [configs[members[0]]] * (size - len(members))  # repeats: not reported
        bucket.members, bucket.population = members, [configs[i] for i in members] + filler

    def prepare(bucket: _LivePopulation):
        """The bucket's program and inputs, for one rung. Held only while the bucket
        trains: each compiled program maps hundreds of memory regions, and a sweep of
        many buckets holding all of theirs at once would run out (Linux allows 65,530 a
        process by default); the runner keeps the recent ones and reloads the others."""
        prepared = prepare_population(bucket.population, data, settings, shape=bucket.shape,
                                      bucket=bucket.label, progress=progress,
                                      n_real=len(bucket.members))
        if bucket.state is None:
            state = prepared.init(prepared.hyper, prepared.keys)
            bucket.state = jax.device_put(state, split) if split else state
        bucket.compile_time += prepared.compile_time
        bucket.program_seconds = bucket.program_seconds or prepared.compile_time
        return prepared

    def compile_ahead(bucket: _LivePopulation) -> None:
        if settings.compile_ahead:
            request_program(population_layout(bucket.population, data, settings,
                                              bucket.shape)[1])

    def outcome(bucket: _LivePopulation, position: int, stopped: Optional[int]) -> TrialOutcome:
        index = bucket.members[position]
        dstep = int(np.asarray(bucket.state.diverged_step)[position])
        return make_outcome(
            configs[index], history[index], dstep, steps_per_epoch, data, bucket=bucket.label,
            bucket_size=bucket.size, bucket_wall_time=bucket.compile_time + bucket.run_time,
            compile_time=bucket.compile_time, train_time=float(time_share[index]),
            padding_overhead=bucket.overhead, stopped_epoch=stopped, n_devices=n_devices)

    for bucket in buckets:
        compact(bucket, list(range(len(bucket.members))))

    start = 0
    for rung, end in enumerate(rung_schedule(n_epochs, eta, settings.halving_min_epochs)):
        active = [bucket for bucket in buckets if bucket.members]
        for b, bucket in enumerate(active):
            prepared = prepare(bucket)
            if b + 1 < len(active):  # the next bucket's program compiles while this trains
                compile_ahead(active[b + 1])
            t0 = time.perf_counter()
            epochs: dict = {}
            bucket.state = run_epochs(prepared, bucket.state, start, end, epochs,
                                      bucket=bucket.label, progress=progress)
            jax.block_until_ready(bucket.state)
            elapsed = time.perf_counter() - t0
            bucket.run_time += elapsed
            bucket.epoch_seconds = elapsed / max(end - start, 1)
            for position, index in enumerate(bucket.members):
                time_share[index] += (elapsed + prepared.compile_time) / len(bucket.members)
                for m in METRICS:
                    history[index][m].extend(float(v[position]) for v in epochs[m])
            del prepared  # the program may now leave memory (see prepare)
        start = end
        live = [(b, p) for b in buckets for p in range(len(b.members))]
        if end == n_epochs or not live:
            break

        def score(item):
            bucket, position = item
            index = bucket.members[position]
            val = history[index]["val_accuracy"][-1]
            diverged = int(np.asarray(bucket.state.diverged_step)[position]) >= 0
            return -math.inf if diverged or not np.isfinite(val) else val

        scores = {place[b.members[p]]: score((b, p)) for b, p in live}
        replayed = {p: replay_score(o, end) for p, o in replay.items()}
        scores.update({p: v for p, v in replayed.items() if v is not None})
        going_on = rung_survivors(scores, eta)
        best = max(scores.values())
        keep = {(id(b), p) for b, p in live if place[b.members[p]] in going_on}
        n_ranked = len(scores)
        stopped = []
        for bucket in buckets:
            if not bucket.members:
                continue
            positions = [p for p in range(len(bucket.members)) if (id(bucket), p) in keep]
            for p in range(len(bucket.members)):
                if (id(bucket), p) not in keep:
                    out = outcome(bucket, p, stopped=end)
                    results[bucket.members[p]] = out
                    stopped.append(out)
            if positions:
                compact(bucket, positions, epochs_left=n_epochs - end)
            else:
                bucket.members = []
        if log:
            from_log = n_ranked - len(live)
            log(f"[dendrax] halving rung {rung + 1} at epoch {end}: {n_ranked} models"
                + (f" ({from_log} finished before, replayed)" if from_log else "")
                + f", {len(going_on)} go on (eta={eta}); best val acc {best:.4f}")
        if on_bucket_done is not None and stopped:
            on_bucket_done(stopped)

    for bucket in buckets:
        finished = [outcome(bucket, p, stopped=None) for p in range(len(bucket.members))]
        for out, index in zip(finished, bucket.members):
            results[index] = out
        if on_bucket_done is not None and finished:
            on_bucket_done(finished)
    return results  # type: ignore[return-value]
