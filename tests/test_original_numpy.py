"""Self-consistency of the plain-NumPy reference (benchmarks/original_numpy.py).

Gradients against central finite differences (float64), AdamW against its formula, the
dense masked forward against an explicit gather, and the resampling rules on hand-made
draws. No JAX here: this is the reference that the JAX code is checked against.
"""

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import original_numpy as on  # noqa: E402

VARIANTS = [("dendritic_simple", True), ("dendritic_simple", False),
            ("dendritic_with_hidden", True), ("dendritic_with_hidden", False),
            ("soma_disabled", False)]


def tiny(arch="dendritic_simple", soma=True, seed=0, strategy="random", dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = on.init_model(arch, 12, 3, n_neurons=2, n_dendrites=3, n_dendrite_inputs=4,
                           soma_enabled=soma, hidden_dim=5, strategy=strategy,
                           image_shape=(3, 4, 1), rng=rng, dtype=dtype)
    x = rng.normal(size=(6, 12)).astype(dtype)
    y = rng.integers(0, 3, size=6)
    return params, x, y


@pytest.mark.parametrize("arch,soma", VARIANTS)
def test_gradients_match_finite_differences(arch, soma):
    params, x, y = tiny(arch, soma)
    # Non-zero biases so every bias gradient path is exercised away from the init.
    rng = np.random.default_rng(1)
    for name in params:
        if name.endswith("_b"):
            params[name] = rng.normal(scale=0.1, size=params[name].shape)
    loss, grads = on.loss_and_grads(params, x, y, arch=arch)
    assert set(grads) == set(params) - {"dend_mask"}
    assert grads["dend_W"].dtype == np.float64
    mask = params["dend_mask"]
    assert np.all(grads["dend_W"][mask == 0] == 0)

    h = 1e-6
    for name, g in grads.items():
        for i in np.ndindex(g.shape):
            if name == "dend_W" and mask[i] == 0:
                continue
            plus, minus = dict(params), dict(params)
            plus[name], minus[name] = params[name].copy(), params[name].copy()
            plus[name][i] += h
            minus[name][i] -= h
            numeric = (on.loss_and_grads(plus, x, y, arch=arch)[0]
                       - on.loss_and_grads(minus, x, y, arch=arch)[0]) / (2 * h)
            assert g[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8), (name, i)


@pytest.mark.parametrize("arch,soma", VARIANTS)
def test_dense_forward_matches_gathered_branches(arch, soma):
    params, x, y = tiny(arch, soma)
    leaky = lambda z: np.where(z >= 0, z, 0.1 * z)  # noqa: E731
    branches = []
    for b, row in enumerate(params["dend_mask"]):
        idx = np.flatnonzero(row)
        assert len(idx) == 4
        branches.append(leaky(x[:, idx] @ params["dend_W"][b, idx] + params["dend_b"][b]))
    a = np.stack(branches, axis=1)
    if soma:
        assert params["soma_W"].shape == (2, 3)
        # soma n reads branches n*D .. n*D+D-1
        a = leaky(np.stack([a[:, 3 * n:3 * n + 3] @ params["soma_W"][n] for n in range(2)], 1)
                  + params["soma_b"])
    if arch == "dendritic_with_hidden":
        a = leaky(a)
    z = a @ params["lin0_W"] + params["lin0_b"]
    if "lin1_W" in params:
        z = leaky(z) @ params["lin1_W"] + params["lin1_b"]
    np.testing.assert_allclose(on.forward(params, x, arch=arch), z, rtol=1e-12)


def test_architecture_shapes_and_inference():
    p, _, _ = tiny("soma_disabled", soma=True)  # soma_disabled never builds a soma
    assert "soma_W" not in p and p["dend_W"].shape == (3, 12)
    assert p["lin0_W"].shape == (3, 2) and p["lin1_W"].shape == (2, 3)  # n_dendrites→n_neurons
    p, _, _ = tiny("dendritic_with_hidden", soma=True)
    assert p["dend_W"].shape == (6, 12) and p["lin0_W"].shape == (2, 5)
    assert on.infer_arch(p) == "dendritic_with_hidden"
    assert on.infer_arch(tiny("dendritic_simple", False)[0]) == "dendritic_simple"
    with pytest.raises(ValueError, match="arch="):
        on.infer_arch(tiny("soma_disabled")[0])


def test_init_headline_config():
    rng = np.random.default_rng(0)
    p = on.init_model("dendritic_simple", 784, 10, 12, 6, 96, rng=rng)
    assert on.count_params(p) == 7198
    assert all(a.dtype == np.float32 for a in p.values())
    assert np.all(p["dend_mask"].sum(1) == 96)
    assert np.all(p["dend_W"][p["dend_mask"] == 0] == 0)
    assert all(np.all(p[k] == 0) for k in p if k.endswith("_b"))
    w = p["dend_W"][p["dend_mask"] == 1]
    assert w.std() == pytest.approx(np.sqrt(2 / 784), rel=0.05)


@pytest.mark.parametrize("strategy,k", [("random", 4), ("local-receptive-fields", 4),
                                        ("fully-connected", 12)])
def test_connection_strategies(strategy, k):
    p, _, _ = tiny(strategy=strategy)
    assert np.all(p["dend_mask"].sum(1) == k)
    assert set(np.unique(p["dend_mask"])) <= {0.0, 1.0}


def test_local_receptive_fields_are_local():
    rng = np.random.default_rng(3)
    mask = on.connect("local-receptive-fields", 50, 784, 16, rng)
    assert np.all(mask.sum(1) == 16)
    for row in mask:
        r, c = np.divmod(np.flatnonzero(row), 28)
        assert r.max() - r.min() <= 20 and c.max() - c.min() <= 20  # std 4, not spread over 28


def test_adamw_step_follows_formula():
    params = {"a": np.array([0.5, -1.0]), "dend_mask": np.ones(2)}
    grads = {"a": np.array([0.2, 0.0])}
    state = on.adamw_init(params)
    p, m, v = params["a"], np.zeros(2), np.zeros(2)
    for t in (1, 2, 3):
        params, state = on.adamw_step(params, grads, state, lr=0.1, weight_decay=0.5)
        m = 0.9 * m + 0.1 * grads["a"]
        v = 0.999 * v + 0.001 * grads["a"] ** 2
        step = (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        p = p - 0.1 * (step + 0.5 * p)
        np.testing.assert_allclose(params["a"], p, rtol=1e-14)
    assert state["count"] == 3
    assert params["dend_mask"] is not None and "dend_mask" not in state["mu"]


def test_unconnected_weights_stay_exactly_zero_under_adamw():
    params, x, y = tiny(dtype=np.float32)
    state = on.adamw_init(params)
    for _ in range(20):
        _, grads = on.loss_and_grads(params, x, y)
        params, state = on.adamw_step(params, grads, state, lr=1e-2, weight_decay=0.1)
    off = params["dend_mask"] == 0
    assert params["dend_W"].dtype == np.float32
    assert np.all(params["dend_W"][off] == 0) and np.all(state["nu"]["dend_W"][off] == 0)


def one_branch(weights, connected, in_dim=10):
    mask = np.zeros((1, in_dim))
    W = np.zeros((1, in_dim))
    mask[0, connected] = 1
    W[0, connected] = weights
    params = {"dend_W": W, "dend_mask": mask}
    state = {"count": 5, "mu": {"dend_W": np.full((1, in_dim), 0.3) * mask},
             "nu": {"dend_W": np.full((1, in_dim), 0.7) * mask}}
    return params, state


def test_resample_rules_on_fixed_draws():
    # Connected 0..4; weakest first: feature 3 (|0.1|), then 1 (the tie at |0.2| goes to
    # the lower index), then 4 (|-0.2|), then 0.
    params, state = one_branch([0.9, 0.2, 0.5, 0.1, -0.2], [0, 1, 2, 3, 4])
    # 7: accepted (replaces 3); 2: already connected, dropped; 8 twice: both dropped.
    candidates = np.array([[7, 2, 8, 8]])
    fresh = np.array([[1.5, 2.5, 3.5, 4.5]])
    new, new_state, accepted = on.resample(params, state, 4, candidates, fresh)
    assert accepted == 1
    np.testing.assert_array_equal(np.flatnonzero(new["dend_mask"][0]), [0, 1, 2, 4, 7])
    np.testing.assert_array_equal(new["dend_W"][0], [0.9, 0.2, 0.5, 0, -0.2, 0, 0, 1.5, 0, 0])
    for name in ("mu", "nu"):
        m = new_state[name]["dend_W"][0]
        assert m[3] == 0 and m[7] == 0 and np.all(m[[0, 1, 2, 4]] == state[name]["dend_W"][0, 0])
    assert new_state["count"] == 5
    # Inputs untouched (functional).
    np.testing.assert_array_equal(np.flatnonzero(params["dend_mask"][0]), [0, 1, 2, 3, 4])


def test_resample_uses_stable_order_for_ties():
    params, _ = one_branch([0.5, -0.5, 0.5, 0.5], [6, 2, 9, 4])
    new, _, accepted = on.resample(params, None, 2, np.array([[0, 1]]), np.array([[1.0, 2.0]]))
    assert accepted == 2
    # All |w| tie, so the two lowest connected feature indices (2, 4) are replaced, in order.
    np.testing.assert_array_equal(np.flatnonzero(new["dend_mask"][0]), [0, 1, 6, 9])
    assert new["dend_W"][0, 0] == 1.0 and new["dend_W"][0, 1] == 2.0


def test_resample_invariants_on_random_draws():
    rng = np.random.default_rng(7)
    params = on.init_model("dendritic_simple", 50, 3, 4, 5, 10, rng=rng, dtype=np.float64)
    state = on.adamw_init(params)
    state["mu"]["dend_W"] = params["dend_mask"] * 1.0
    touched = np.zeros(params["dend_mask"].shape, bool)
    total = 0
    for _ in range(5):
        cand, fresh = on.draw_resample(rng, 20, 5, 50, dtype=np.float64)
        assert cand.min() >= 0 and cand.max() < 50 and fresh.shape == (20, 5)
        before = params["dend_mask"]
        params, state, accepted = on.resample(params, state, 5, cand, fresh)
        changed = params["dend_mask"] != before
        assert changed.sum() == 2 * accepted  # one removed and one added per swap
        touched |= changed
        total += accepted
        assert np.all(params["dend_mask"].sum(1) == 10)
        assert np.all(params["dend_W"][params["dend_mask"] == 0] == 0)
        assert np.all(params["dend_W"][params["dend_mask"] == 1] != 0)
    assert total > 0
    # Moments survive exactly where no swap ever touched the position.
    mu = state["mu"]["dend_W"]
    assert np.all(mu[touched] == 0)
    assert np.all(mu[~touched] == params["dend_mask"][~touched])


def test_resample_nothing_to_do():
    params, state = one_branch([0.1, 0.2], [0, 1])
    assert on.resample(params, state, 0, np.zeros((1, 0), int), np.zeros((1, 0)))[2] == 0
    new, _, accepted = on.resample(params, state, 2, np.array([[0, 1]]), np.ones((1, 2)))
    assert accepted == 0 and np.array_equal(new["dend_W"], params["dend_W"])


def test_train_smoke_learns_and_resamples():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 20)) * 2
    y = rng.integers(0, 3, size=600)
    x = (centres[y] + rng.normal(size=(600, 20))).astype(np.float32)
    config = {"architecture": "dendritic_simple", "n_neurons": 4, "n_dendrites": 3,
              "n_dendrite_inputs": 8, "percentage_resample": 0.25, "steps_to_resample": 3}
    seen = []
    h = on.train(config, x[:500], y[:500], x[500:], y[500:], n_epochs=4, batch_size=32,
                 lr=1e-2, callback=lambda epoch, hist: seen.append(epoch))
    assert seen == [0, 1, 2, 3]
    assert all(len(h[k]) == 4 for k in ("train_loss", "train_accuracy", "test_loss",
                                        "test_accuracy", "swaps", "epoch_seconds"))
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert h["test_accuracy"][-1] > 0.8
    assert sum(h["swaps"]) > 0  # 15 steps an epoch → 5 rounds an epoch
    assert np.all(h["params"]["dend_mask"].sum(1) == 8)
    assert h["params"]["dend_W"].dtype == np.float32
    again = on.train(config, x[:500], y[:500], x[500:], y[500:], n_epochs=4, batch_size=32,
                     lr=1e-2)
    assert again["test_loss"] == h["test_loss"]  # one seed, one result


def test_read_idx_roundtrip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-idx3-ubyte.gz"
    header = bytes([0, 0, 0x08, 3]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + images.tobytes())
    np.testing.assert_array_equal(on.read_idx(str(path)), images)
