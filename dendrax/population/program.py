"""The population program: many models of one shape as pure functions over a pytree.

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
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dendrax.nn.layers import LayerDims, branch_coordinates, padding_masks
from dendrax.nn.models import DendriticModel, ModelDims, init_model
from dendrax.nn.rewire import rewire
from dendrax.search.trial import TrainSettings

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

    def gradients(state: MemberState, hyper: Hyper, x, y):
        (loss, correct), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.connectivity, x, y, hyper)
        return loss, correct, grads

    def update(before: MemberState, state: MemberState, hyper: Hyper, loss, correct, grads):
        """The optimiser step on ``state`` (``before``, rewired if a round was due) with the
        gradients taken on ``before``. A rewired connection now reads another feature, so
        its gradient (taken for the old one) is dropped: the new synapse gets none this
        step, as in the original, where the new dense position had no gradient."""
        index = state.connectivity["dendrites"]["index"]
        same = (index == before.connectivity["dendrites"]["index"]).astype(
            grads["dendrites"]["branch_kernel"].dtype)
        grads = {**grads, "dendrites": {**grads["dendrites"], "branch_kernel":
                                        grads["dendrites"]["branch_kernel"] * same}}
        updates, opt_state = adamw(hyper).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ok = before.alive & jnp.isfinite(loss) & _all_finite(params)
        if settings.divergence_threshold is not None:
            ok &= loss <= settings.divergence_threshold
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
        key = jax.random.fold_in(jax.random.fold_in(state.key, _REWIRE), state.step + 1)
        masks = padding_masks(model.n_neurons, model.n_dendrites, k_static, has_soma,
                              None if not padded else LayerDims(*hyper.dims[:3]),
                              fully_connected=model.strategy == "fully-connected")
        params, connectivity, opt_state, accepted = rewire(
            state.params, state.connectivity, state.opt_state, key, hyper.n_resample, in_dim,
            coords, masks.connection)
        return state._replace(params=params, connectivity=connectivity,
                              opt_state=opt_state), accepted

    def population_step(state: MemberState, hyper: Hyper, x, y):
        """One step, in the original's order: gradients on the current weights; then, on
        every ``steps_to_resample``-th step, the rewiring round (inside the original's
        backward pass), ranking the weights from before this step's update; then AdamW."""
        batch_axis = None if shared_order else 0
        loss, correct, grads = jax.vmap(gradients, in_axes=(0, 0, batch_axis, batch_axis))(
            state, hyper, x, y)
        due = (state.alive & (hyper.n_resample > 0)
               & ((state.step + 1) % jnp.maximum(hyper.steps_to_resample, 1) == 0))

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
                    totals[1] + jnp.sum(correct, -1, dtype=jnp.int32)), None

        members = state.step.shape[0]
        zeros = (jnp.zeros(members, x.dtype), jnp.zeros(members, jnp.int32))
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
