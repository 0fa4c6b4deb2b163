"""Resampling invariants: k distinct inputs per branch, only the weakest replaced,
per-model percentages under vmap, moments of rewired synapses reset."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dendrax.nn.layers import init_connectivity
from dendrax.nn.rewire import (Draws, SynapticResampling, apply_rewiring, draw_rewiring,
                               n_resample_for)
from dendrax.spec import ModelShape, rewires_after, rewiring_rounds

IN_DIM, BRANCHES, K = 100, 16, 24


def _model(seed):
    key_w, key_i = jax.random.split(jax.random.PRNGKey(seed))
    kernel = jax.random.normal(key_w, (BRANCHES, K))
    index = init_connectivity(key_i, "random", BRANCHES, K, IN_DIM, (10, 10, 1))
    return kernel, index


def test_invariants_under_vmap_with_mixed_percentages():
    models = [_model(s) for s in range(4)]
    kernels = jnp.stack([m[0] for m in models])
    indices = jnp.stack([m[1] for m in models])
    n_resample = jnp.array([n_resample_for(K, p, on) for p, on in
                            [(0.25, True), (0.5, True), (0.1, True), (0.5, False)]])
    keys = jax.random.split(jax.random.PRNGKey(9), 4)

    def one(kernel, index, key, n):
        draws = draw_rewiring(key, np.arange(BRANCHES)[:, None], K, IN_DIM)
        return apply_rewiring(kernel, index, draws, n, IN_DIM)

    new_k, new_i, swapped, accepted = jax.jit(jax.vmap(one))(kernels, indices, keys, n_resample)
    new_k, new_i, swapped = map(np.asarray, (new_k, new_i, swapped))
    np.testing.assert_array_equal(swapped.sum(axis=(1, 2)), accepted)
    assert accepted[3] == 0 and np.array_equal(new_i[3], indices[3])
    for m in range(4):
        n = int(n_resample[m])
        assert 0 < accepted[m] <= n * BRANCHES or n == 0
        for b in range(BRANCHES):
            assert len(set(new_i[m, b].tolist())) == K  # still k distinct inputs
            assert new_i[m, b].min() >= 0 and new_i[m, b].max() < IN_DIM
            weakest = set(np.argsort(np.abs(np.asarray(kernels[m, b])), kind="stable")[:n].tolist())
            assert set(np.flatnonzero(swapped[m, b]).tolist()) <= weakest
            # untouched connections keep feature and weight
            keep = ~swapped[m, b]
            np.testing.assert_array_equal(new_i[m, b][keep], np.asarray(indices[m, b])[keep])
            np.testing.assert_array_equal(new_k[m, b][keep], np.asarray(kernels[m, b])[keep])
            # new features were not connected before this round
            assert not set(new_i[m, b][~keep].tolist()) & set(np.asarray(indices[m, b]).tolist())


def test_conflicting_and_duplicate_draws_are_rejected():
    kernel = jnp.array([[0.1, 0.2, 0.3, 5.0]])
    index = jnp.array([[0, 1, 2, 3]], jnp.int32)
    # rank 0 draws 3 (already connected), ranks 1 and 2 both draw 7 (duplicate)
    draws = (jnp.array([[3, 7, 7, 9]], jnp.int32), jnp.full((1, 4), 0.5))
    k2, i2, swapped, accepted = apply_rewiring(kernel, index, Draws(*draws), 3, 10)
    assert int(accepted) == 0
    np.testing.assert_array_equal(i2, index)
    draws = Draws(jnp.array([[4, 7, 8, 9]], jnp.int32), jnp.array([[0.5, 0.6, 0.7, 0.8]]))
    k2, i2, swapped, accepted = apply_rewiring(kernel, index, draws, 2, 10)
    assert int(accepted) == 2
    np.testing.assert_array_equal(i2, [[4, 7, 2, 3]])
    np.testing.assert_allclose(k2, [[0.5, 0.6, 0.3, 5.0]])


def test_rewire_resets_adam_moments_of_swapped_synapses():
    kernel, index = _model(0)
    params = {"dendrites": {"branch_kernel": kernel, "branch_bias": jnp.zeros(BRANCHES)}}
    connectivity = {"dendrites": {"index": index}}
    opt = optax.adamw(1e-3)
    state = opt.init(params)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    _, state = opt.update(grads, state, params)
    rewiring = SynapticResampling(_shape(BRANCHES, kernel.shape[1]), IN_DIM)
    step = jax.jit(lambda p, c, s, key: rewiring(p, c, s, key, 6))
    new_params, new_conn, new_state, accepted = step(params, connectivity, state,
                                                     jax.random.PRNGKey(1))
    swapped = np.asarray(new_conn["dendrites"]["index"] != index)
    assert int(accepted) == swapped.sum() > 0
    mu = np.asarray(new_state[0].mu["dendrites"]["branch_kernel"])
    nu = np.asarray(new_state[0].nu["dendrites"]["branch_kernel"])
    assert np.all(mu[swapped] == 0) and np.all(nu[swapped] == 0)
    assert np.all(mu[~swapped] != 0) and np.all(nu[~swapped] != 0)
    assert np.all(np.asarray(new_state[0].mu["dendrites"]["branch_bias"]) != 0)


def _shape(branches: int, k: int) -> ModelShape:
    return ModelShape("soma_disabled", False, 0, branches, k, 4, "random")


def test_rewiring_covers_every_dendritic_layer_whatever_its_name():
    (k1, i1), (k2, i2) = _model(0), _model(1)
    params = {"first": {"branch_kernel": k1}, "second": {"branch_kernel": k2},
              "output": {"kernel": jnp.ones((3, 2))}}
    connectivity = {"first": {"index": i1}, "second": {"index": i2}}
    opt = optax.adamw(1e-3)
    rewiring = SynapticResampling(_shape(BRANCHES, k1.shape[1]), IN_DIM)
    new_params, new_conn, _, accepted = jax.jit(rewiring)(
        params, connectivity, opt.init(params), jax.random.key(3), jnp.int32(6))
    changed = [int(np.sum(np.asarray(new_conn[n]["index"]) != np.asarray(i)))
               for n, i in (("first", i1), ("second", i2))]
    assert all(c > 0 for c in changed) and int(accepted) == sum(changed)
    # Each layer draws from its own stream: the two rounds differ.
    assert not np.array_equal(np.asarray(new_conn["first"]["index"]),
                              np.asarray(new_conn["second"]["index"]))
    np.testing.assert_array_equal(new_params["output"]["kernel"], params["output"]["kernel"])


def test_the_schedule_is_every_interval_steps_and_only_when_on():
    rewiring = SynapticResampling(_shape(2, 4), IN_DIM)
    steps = jnp.arange(1, 9)
    due = rewiring.is_due(steps, jnp.int32(1), jnp.int32(4))
    np.testing.assert_array_equal(np.asarray(due), [s % 4 == 0 for s in range(1, 9)])
    assert not np.any(np.asarray(rewiring.is_due(steps, jnp.int32(0), jnp.int32(4))))


def test_the_jax_schedule_is_the_plain_rule_that_plots_and_warnings_use():
    """SynapticResampling.is_due (traced, per member, under jit and vmap) and
    dendrax.spec.rewires_after (plain Python: the figures and the never-rewires warning)
    are one rule; rewiring_rounds counts it."""
    rule = SynapticResampling(ModelShape("dendritic_simple", True, 2, 2, 3, None, "random"), 8)
    steps = jnp.arange(1, 400, dtype=jnp.int32)
    periods = jnp.array([1, 2, 7, 128, 1000, 0], dtype=jnp.int32)
    due = jax.jit(jax.vmap(lambda period: rule.is_due(steps, jnp.int32(1), period)))(periods)
    for row, period in zip(np.asarray(due), np.asarray(periods)):
        expected = [rewires_after(int(s), int(period)) for s in np.asarray(steps)]
        assert row.tolist() == expected, period
        assert int(row.sum()) == rewiring_rounds(399, int(period))
    off = rule.is_due(steps, jnp.int32(0), jnp.int32(1))
    assert not bool(off.any())  # n_resample 0: resampling off, never due


def test_padded_slots_are_never_selected_or_counted_as_connected():
    kernel = jnp.array([[0.1, 0.2, 0.0, 0.0], [0.3, 0.4, 0.0, 0.0]])
    index = jnp.array([[0, 1, 5, 6], [2, 3, 7, 8]], jnp.int32)
    ok = jnp.array([[True, True, False, False], [False, False, False, False]])
    # Rank 0 of branch 0 draws 5: a padded slot's feature, so not a real conflict.
    draws = Draws(jnp.array([[5, 9, 9, 9], [4, 4, 4, 4]], jnp.int32), jnp.full((2, 4), 0.5))
    k2, i2, swapped, accepted = apply_rewiring(kernel, index, draws, 1, 10, ok)
    assert int(accepted) == 1  # branch 1 is padding: nothing happens there
    np.testing.assert_array_equal(i2, [[5, 1, 5, 6], [2, 3, 7, 8]])
    np.testing.assert_array_equal(np.asarray(swapped), [[True, False, False, False],
                                                       [False] * 4])


def test_n_resample_uses_python_rounding():
    assert n_resample_for(96, 0.25, True) == 24
    assert n_resample_for(10, 0.7, True) == 7  # float32 would give 6
    assert n_resample_for(96, 0.25, False) == 0


def test_the_updater_drops_the_gradients_of_rewired_synapses_in_every_dendritic_layer():
    (k1, i1), (k2, i2) = _model(0), _model(1)
    before = {"first": {"index": i1}, "second": {"index": i2}}
    after = {"first": {"index": i1.at[0, 3].set((i1[0, 3] + 1) % IN_DIM)},
             "second": {"index": i2.at[5, 0].set((i2[5, 0] + 1) % IN_DIM)}}
    grads = {"first": {"branch_kernel": jnp.ones_like(k1), "branch_bias": jnp.ones(BRANCHES)},
             "second": {"branch_kernel": jnp.ones_like(k2)},
             "output": {"kernel": jnp.ones((3, 2))}}
    rewiring = SynapticResampling(_shape(BRANCHES, K), IN_DIM)
    masked = jax.jit(rewiring.mask_gradients)(grads, before, after)
    for name, (b, j) in (("first", (0, 3)), ("second", (5, 0))):
        want = np.ones((BRANCHES, K))
        want[b, j] = 0.0
        np.testing.assert_array_equal(masked[name]["branch_kernel"], want)
    np.testing.assert_array_equal(masked["first"]["branch_bias"], np.ones(BRANCHES))
    np.testing.assert_array_equal(masked["output"]["kernel"], np.ones((3, 2)))


def test_a_layer_laid_out_otherwise_than_the_updaters_shape_is_refused():
    kernel, index = _model(0)
    params = {"dendrites": {"branch_kernel": kernel}}
    rewiring = SynapticResampling(_shape(BRANCHES // 2, K), IN_DIM)
    with pytest.raises(ValueError, match="dendritic layer 'dendrites' has a"):
        rewiring(params, {"dendrites": {"index": index}}, optax.adamw(1e-3).init(params),
                 jax.random.key(0), jnp.int32(2))

