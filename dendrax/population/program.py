"""The population program: many models of one shape as pure functions over a pytree.

``make_train(spec)`` returns pure functions over a population pytree (leading model axis),
whose per-member inputs :func:`hyper_for` and :func:`member_keys` build from configs:

- ``init(hyper, keys)``: parameters, connectivity and AdamW state of every member;
- ``epoch(state, hyper, data, epoch, order_key)``: one epoch (``lax.scan`` over the
  steps, with no Python per step) followed by one evaluation pass over the validation
  and test sets;
- ``train(hyper, keys, data, order_key, n_epochs)``: all epochs fused into one ``lax.scan``.

Members differ in seed and in every value that is not a shape (lr, weight decay,
resampling on/off, percentage, interval): those are traced arrays, never static.
A member whose loss or parameters stop being finite, or whose loss exceeds
``spec.divergence_threshold``, is frozen ("diverged"): its updates become no-ops, so its
NaNs never reach its state, and the other members compute exactly the floats they would
compute without it.

Randomness: every member draws from its own typed keys, one per stream (init, batch order,
rewiring): ``jax.random.key(s)`` with the stream id folded in per use, where ``s`` is the
config's seed for that stream (``init_seed``, ``order_seed``, ``rewire_seed``), or its
``seed`` when that is None, so a config without stream seeds draws exactly what it drew
before they existed. Never from its position in the population. With JAX's partitionable threefry (the default since JAX 0.5, required
here) a model padded to larger shapes draws the same numbers as the model alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dendrax.config import ModelConfig
from dendrax.nn.models import build_model, init_model
from dendrax.nn.rewire import SynapticResampling, n_resample_for
from dendrax.spec import ModelSizes, ProgramSpec

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8

# Stream ids folded into each member's key, so that a member's randomness depends on
# its own seed only, never on its position in a population.
_INIT, _ORDER, _REWIRE = 0, 1, 2

# Rows of DeviceData.eval_split: which evaluation set a row belongs to.
VAL, TEST, PAD = 0, 1, -1


class Hyper(NamedTuple):
    """Per-member traced values (each a scalar; stacked along the model axis): the
    hyperparameters, and the member's own sizes inside a padded bucket."""

    lr: jax.Array
    weight_decay: jax.Array
    n_resample: jax.Array  # connections replaced per branch and round; 0 = off
    steps_to_resample: jax.Array
    sizes: ModelSizes  # of int32 scalars


class MemberState(NamedTuple):
    params: Any
    connectivity: Any
    opt_state: Any
    key: jax.Array  # the member's own typed PRNG keys, one per stream (constant; after a PBT
    # exploit, its own folded with the generation: dendrax.population.pbt.fresh_keys)
    step: jax.Array  # optimiser steps taken
    alive: jax.Array  # False once diverged
    diverged_step: jax.Array  # step at which the loss first stopped being finite, or -1


class DeviceData(NamedTuple):
    """The dataset on the device. The validation and the test set are stacked into one
    evaluation set, each padded to whole evaluation batches; ``eval_split`` marks each
    row VAL, TEST or PAD."""

    x_train: jax.Array
    y_train: jax.Array
    x_eval: jax.Array
    y_eval: jax.Array
    eval_split: jax.Array


def hyper_for(configs: Sequence[ModelConfig], in_dim: int) -> Hyper:
    """The :class:`Hyper` of a population of ``configs``, one entry per member. The compiler
    reads its argument types from this function too (``jax.eval_shape``), so a new field
    of :class:`Hyper` is built here and nowhere else."""
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
    """Typed threefry keys for ``seeds`` (any shape), built on the host in one go: the key data of
    ``jax.random.key(seed)`` is (seed >> 32, seed & 0xFFFFFFFF)."""
    seeds = np.asarray(seeds, dtype=object).astype(np.uint64)  # any shape of ints
    data = np.stack([(seeds >> np.uint64(32)).astype(np.uint32),
                     (seeds & np.uint64(0xFFFFFFFF)).astype(np.uint32)], axis=-1)
    return jax.random.wrap_key_data(jnp.asarray(data), impl="threefry2x32")


def member_keys(configs: Sequence[ModelConfig]) -> jax.Array:
    """Each member's own keys, shape (members, 3): one per stream (``_INIT``, ``_ORDER``,
    ``_REWIRE``), each ``jax.random.key`` of the config's seed for that stream
    (:meth:`ModelConfig.stream_seeds`). The program folds the stream id into each."""
    return seed_keys([c.stream_seeds() for c in configs])


def adamw(hyper: Hyper) -> optax.GradientTransformation:
    """Adam with decoupled weight decay on every parameter, biases included, in the
    original's order: the Adam step first, then the decay of the *updated* value,

        p ← (p − lr · m̂ / (√v̂ + ε)) · (1 − lr · wd)

    (``optax.adamw`` decays the value from before the step instead: p ← p − lr · (m̂ /
    (√v̂ + ε) + wd · p); the two differ by lr² · wd · m̂ / (√v̂ + ε) per step)."""
    return optax.chain(optax.scale_by_adam(b1=ADAM_B1, b2=ADAM_B2, eps=ADAM_EPS),
                       optax.scale_by_learning_rate(hyper.lr),
                       _decay_after_update(hyper.lr * hyper.weight_decay))


def _decay_after_update(rate) -> optax.GradientTransformation:
    """Turn an update u into the one that lands on (p + u) · (1 − rate)."""

    def update(updates, state, params):
        return jax.tree_util.tree_map(lambda u, p: u - rate * (p + u), updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _where(cond, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(cond, a, b), new, old)


def _where_members(mask, new, old):
    """Select whole members: ``mask`` has one entry per leading-axis member."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree_util.tree_map(pick, new, old)


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def require_partitionable_threefry() -> None:
    """The padding guarantee needs JAX's partitionable threefry (its default since 0.5)."""
    if not jax.config.jax_threefry_partitionable:
        raise RuntimeError("dendrax needs jax_threefry_partitionable=True (JAX's default since "
                           "0.5), so that a padded model draws the same numbers as the model "
                           "alone; it was turned off in this process")


@dataclasses.dataclass(frozen=True)
class PopulationProgram:
    init: Callable
    epoch: Callable
    train: Callable


def make_train(spec: ProgramSpec) -> PopulationProgram:
    """Pure population functions for one :class:`ProgramSpec` (see the module docstring).

    With ``spec.padded`` the shape's sizes are upper bounds and every member runs at its
    own sizes (``Hyper.sizes``); padding is masked to an exact no-op.
    """
    require_partitionable_threefry()
    batch_size = spec.batch_size
    steps = spec.n_train // batch_size  # the last partial batch is dropped, as the original
    if steps < 1:
        raise ValueError(f"batch_size={batch_size} is larger than the {spec.n_train} "
                         f"training samples")
    shared_order = spec.data_order == "shared"
    eval_bs = spec.eval_batch_size
    in_dim, n_train = spec.in_dim, spec.n_train
    model = build_model(spec.shape, spec.n_classes, spec.image_shape, spec.lowering,
                        spec.matmul_dtype)
    rewiring = SynapticResampling(spec.shape, in_dim)

    def sizes_of(hyper):
        return hyper.sizes if spec.padded else None

    def apply(params, connectivity, x, hyper):
        return model.apply({"params": params, "connectivity": connectivity}, x, sizes_of(hyper))

    def init_member(key, hyper):
        params, connectivity = init_model(model, jax.random.fold_in(key[_INIT], _INIT), in_dim,
                                          sizes_of(hyper))
        return MemberState(params, connectivity, adamw(hyper).init(params), key,
                           jnp.int32(0), jnp.bool_(True), jnp.int32(-1))

    def init(hyper: Hyper, keys: jax.Array) -> MemberState:
        return jax.vmap(init_member)(keys, hyper)

    def loss_fn(params, connectivity, x, y, hyper):
        logits = apply(params, connectivity, x, hyper)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, jnp.sum(jnp.argmax(logits, -1) == y)

    def gradients(state: MemberState, hyper: Hyper, x, y):
        (loss, correct), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.connectivity, x, y, hyper)
        return loss, correct, grads

    def update(before: MemberState, state: MemberState, hyper: Hyper, loss, correct, grads):
        """The optimiser step on ``state`` (``before``, rewired if a round was due) with the
        gradients taken on ``before``, less those of rewired synapses (the updater's
        :meth:`~dendrax.nn.rewire.SynapticResampling.mask_gradients`). A member whose step
        would diverge is frozen at ``before`` instead."""
        grads = rewiring.mask_gradients(grads, before.connectivity, state.connectivity)
        updates, opt_state = adamw(hyper).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ok = before.alive & jnp.isfinite(loss) & _all_finite(params)
        if spec.divergence_threshold is not None:
            ok &= loss <= spec.divergence_threshold
        newly_dead = before.alive & ~ok
        stepped = state._replace(params=params, opt_state=opt_state)
        state = _where(ok, stepped, before)._replace(
            key=before.key,
            step=before.step + ok.astype(jnp.int32),
            alive=ok,
            diverged_step=jnp.where(newly_dead, before.step + 1, before.diverged_step))
        return state, jnp.where(ok, loss, jnp.nan), jnp.where(ok, correct, 0)

    def rewire_member(state: MemberState, hyper: Hyper):
        # Keyed by the number of the step it precedes (counted from 1).
        key = jax.random.fold_in(jax.random.fold_in(state.key[_REWIRE], _REWIRE),
                                 state.step + 1)
        params, connectivity, opt_state, accepted = rewiring(
            state.params, state.connectivity, state.opt_state, key, hyper.n_resample,
            sizes_of(hyper))
        return state._replace(params=params, connectivity=connectivity,
                              opt_state=opt_state), accepted

    def population_step(state: MemberState, hyper: Hyper, x, y):
        """One step, in the original's order: gradients on the current weights; then, on
        every ``steps_to_resample``-th step, the rewiring round (inside the original's
        backward pass), ranking the weights from before this step's update; then AdamW."""
        batch_axis = None if shared_order else 0
        loss, correct, grads = jax.vmap(gradients, in_axes=(0, 0, batch_axis, batch_axis))(
            state, hyper, x, y)
        # The round before step n + 1 is due when n + 1 is a multiple of the interval.
        due = state.alive & rewiring.is_due(state.step + 1, hyper.n_resample,
                                            hyper.steps_to_resample)

        def resample(state):
            rewired, accepted = jax.vmap(rewire_member)(state, hyper)
            swaps = jnp.where(due, accepted, 0).astype(jnp.int32)
            return _where_members(due, rewired, state), swaps

        def skip(state):
            return state, jnp.zeros(due.shape, jnp.int32)

        # A real branch at population level: the rewiring work runs only on the steps
        # where at least one member is due, not on every step.
        rewired, swaps = jax.lax.cond(jnp.any(due), resample, skip, state)
        new, loss, correct = jax.vmap(update)(state, rewired, hyper, loss, correct, grads)
        return new, loss, correct, jnp.where(new.alive, swaps, 0)

    def evaluate(state: MemberState, hyper: Hyper, data: DeviceData):
        """Mean loss and accuracy of every member on the validation and the test set, in
        one pass over the stacked evaluation set (each batch lies within one set)."""
        members = state.step.shape[0]

        def body(totals, i):
            xb = jax.lax.dynamic_slice_in_dim(data.x_eval, i * eval_bs, eval_bs)
            yb = jax.lax.dynamic_slice_in_dim(data.y_eval, i * eval_bs, eval_bs)
            split = jax.lax.dynamic_slice_in_dim(data.eval_split, i * eval_bs, eval_bs)
            logits = jax.vmap(lambda p, c, h: apply(p, c, xb, h))(
                state.params, state.connectivity, hyper)
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, yb[None])
            hits = jnp.argmax(logits, -1) == yb[None]
            new = []
            for s, (loss_sum, correct) in zip((VAL, TEST), totals):
                mask = (split == s)[None]
                new.append((loss_sum + jnp.sum(losses * mask, -1),
                            correct + jnp.sum(hits & mask, -1, dtype=jnp.int32)))
            return tuple(new), None

        # Sums in the data's float type (float64 when checked against the oracle).
        zeros = (jnp.zeros(members, data.x_eval.dtype), jnp.zeros(members, jnp.int32))
        totals, _ = jax.lax.scan(body, (zeros, zeros), jnp.arange(data.x_eval.shape[0] // eval_bs))
        out = []
        for s, (loss_sum, correct) in zip((VAL, TEST), totals):
            n = jnp.sum(data.eval_split == s)
            denom = jnp.maximum(n, 1)
            nan = jnp.full(members, jnp.nan)
            out.append((jnp.where(n > 0, loss_sum / denom, nan),
                        jnp.where(n > 0, correct / denom, nan)))
        return out

    def epoch(state: MemberState, hyper: Hyper, data: DeviceData, epoch_index, order_key):
        if shared_order:
            perm = jax.random.permutation(jax.random.fold_in(order_key, epoch_index), n_train)
        else:
            perm = jax.vmap(lambda k: jax.random.permutation(
                jax.random.fold_in(jax.random.fold_in(k[_ORDER], _ORDER), epoch_index),
                n_train))(state.key)

        def body(state, i):
            if shared_order:
                batch = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)
            else:
                batch = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size, axis=1)
            x, y = data.x_train[batch], data.y_train[batch]
            state, loss, correct, swaps = population_step(state, hyper, x, y)
            return state, (loss, correct, swaps)

        state, (loss, correct, swaps) = jax.lax.scan(body, state, jnp.arange(steps))
        (val_loss, val_acc), (test_loss, test_acc) = evaluate(state, hyper, data)
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
