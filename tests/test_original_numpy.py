"""Self-consistency of the oracle (benchmarks/original_numpy.py), the original toolkit's
training in plain NumPy float64.

Gradients against central finite differences, Adam against its formula in the original's
decay order, the resampling rules on hand-made draws, the rewiring's place inside backward,
the local receptive field's centre, the original's failures, the data normalisation and
bookkeeping. No JAX here: this is the reference that the JAX code is checked against.
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
CLASSES = 3


def tiny(arch="dendritic_simple", soma=True, seed=0, strategy="random", k=4, **extra):
    rng = np.random.RandomState(seed)
    config = {"architecture": arch, "n_neurons": CLASSES if arch == "soma_disabled" else 2,
              "n_dendrites": 3, "n_dendrite_inputs": k, "soma_enabled": soma,
              "hidden_dim": 5, "strategy": strategy, **extra}
    net = on.init_net(config, 16, CLASSES, rng)
    x = rng.normal(size=(6, 16))
    y = on.one_hot(rng.randint(0, CLASSES, size=6), CLASSES)
    return net, x, y


def loss_of(net, x, y):
    return on.cross_entropy(on.forward(net, x)[0], y)[0]


@pytest.mark.parametrize("arch,soma", VARIANTS)
def test_gradients_match_finite_differences(arch, soma):
    net, x, y = tiny(arch, soma)
    rng = np.random.default_rng(1)
    for name in net.params:  # non-zero biases: every bias path away from the init
        if name.endswith("_b"):
            net.params[name] = rng.normal(scale=0.1, size=net.params[name].shape)
    logits, cache = on.forward(net, x)
    grads = on.backward(net, cache, on.cross_entropy(logits, y)[1])
    assert set(grads) == set(net.params)
    assert np.all(grads["dend_W"][net.masks["dend"] == 0] == 0)
    h = 1e-6
    for name, g in grads.items():
        mask = net.masks["dend"] if name == "dend_W" else net.masks.get("soma") \
            if name == "soma_W" else np.ones_like(g)
        for i in np.ndindex(g.shape):
            if mask[i] == 0:
                assert g[i] == 0
                continue
            saved = net.params[name][i]
            net.params[name][i] = saved + h
            plus = loss_of(net, x, y)
            net.params[name][i] = saved - h
            minus = loss_of(net, x, y)
            net.params[name][i] = saved
            assert g[i] == pytest.approx((plus - minus) / (2 * h), rel=1e-5, abs=1e-8), (name, i)


def test_layers_follow_the_originals_lists():
    net, _, _ = tiny("dendritic_with_hidden")
    assert net.plan == ("leaky", "linear0", "leaky", "linear1")
    assert net.params["soma_W"].shape == (2, 6) and net.params["lin0_W"].shape == (5, 2)
    # The soma is block-diagonal: soma i reads branches 3i .. 3i+2 only.
    np.testing.assert_array_equal(net.masks["soma"], [[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]])
    assert np.all(net.params["soma_W"][net.masks["soma"] == 0] == 0)
    net, _, _ = tiny("soma_disabled")
    assert "soma_W" not in net.params and net.params["dend_W"].shape == (3, 16)
    assert net.params["lin0_W"].shape == (CLASSES, 3) and net.params["lin1_W"].shape == (CLASSES, 3)


def test_soma_disabled_fails_as_the_original_unless_n_neurons_is_classes():
    rng = np.random.RandomState(0)
    net = on.init_net({"architecture": "soma_disabled", "n_neurons": 4, "n_dendrites": 3,
                       "n_dendrite_inputs": 4}, 16, CLASSES, rng)
    with pytest.raises(ValueError):  # Linear(n_neurons → classes) receives `classes` inputs
        on.forward(net, rng.normal(size=(2, 16)))


def test_init_headline_config():
    net = on.init_net(on.HEADLINE, 784, 10, np.random.RandomState(0))
    assert on.count_params(net) == 7198
    assert all(a.dtype == np.float64 for a in net.params.values())
    assert np.all(net.masks["dend"].sum(1) == 96)
    assert np.all(net.params["dend_W"][net.masks["dend"] == 0] == 0)
    w = net.params["dend_W"][net.masks["dend"] == 1]
    assert w.std() == pytest.approx(np.sqrt(2 / 784), rel=0.05)


def test_local_receptive_field_always_holds_its_centre():
    for seed in range(20):
        rng, replay = np.random.RandomState(seed), np.random.RandomState(seed)
        idx = on.local_receptive_field(16, 784, rng)
        centre_row, centre_col = replay.randint(0, 28), replay.randint(0, 28)
        assert centre_row * 28 + centre_col in idx and len(set(idx)) == 16
        r, c = np.divmod(idx, 28)
        # Offsets have std 4: within 6 std of the centre, not spread over the 28 pixels.
        assert np.abs(r - centre_row).max() <= 24 and np.abs(c - centre_col).max() <= 24


def test_local_receptive_fields_on_cifar_use_a_55_pixel_square():
    idx = np.concatenate([on.local_receptive_field(64, 3072, np.random.RandomState(s))
                          for s in range(30)])
    assert idx.max() < 55 * 55 and idx.min() >= 0


def test_adam_decays_after_the_update():
    net, _, _ = tiny()
    net.params = {"a": np.array([0.5, -1.0]), "dend_W": np.zeros((1, 2))}
    net.masks["dend"] = np.ones((1, 2))
    opt = on.adam_init(net)
    p, m, v = net.params["a"].copy(), np.zeros(2), np.zeros(2)
    g = np.array([0.2, 0.0])
    for t in (1, 2, 3):
        on.adam_step(net, {"a": g}, opt, lr=0.1, weight_decay=0.5)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g ** 2
        p = p - 0.1 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        p = p - 0.1 * 0.5 * p  # decay on the updated value: the original's order
        np.testing.assert_allclose(net.params["a"], p, rtol=1e-14)
    assert opt["t"] == 3


def one_branch(weights, connected, in_dim=10):
    net, _, _ = tiny()
    net.params["dend_W"] = np.zeros((1, in_dim))
    net.masks["dend"] = np.zeros((1, in_dim))
    net.masks["dend"][0, connected] = 1
    net.params["dend_W"][0, connected] = weights
    net.k = len(connected)
    return net


def test_resample_rules_on_fixed_draws():
    # Connected 0..4; weakest first: 3 (|0.1|), 1 (|0.2|), 4 (|-0.25|), 0.
    net = one_branch([0.9, 0.2, 0.5, 0.1, -0.25], [0, 1, 2, 3, 4])
    net.percentage_resample = 0.8  # int(5 × 0.8) = 4
    # 7: accepted (replaces 3); 2: already connected, dropped; 8 twice: both dropped.
    rows, new = on.resample(net, np.array([[7, 2, 8, 8]]), np.array([[1.5, 2.5, 3.5, 4.5]]))
    assert list(rows) == [0] and list(new) == [7]
    np.testing.assert_array_equal(np.flatnonzero(net.masks["dend"][0]), [0, 1, 2, 4, 7])
    np.testing.assert_array_equal(net.params["dend_W"][0],
                                  [0.9, 0.2, 0.5, 0, -0.25, 0, 0, 1.5, 0, 0])
    # Fresh weights as a function: drawn for the accepted swaps only, in branch order.
    net = one_branch([0.9, 0.2, 0.5, 0.1, -0.25], [0, 1, 2, 3, 4])
    net.percentage_resample = 0.4
    asked = []
    on.resample(net, np.array([[8, 9]]), lambda n: asked.append(n) or np.array([7.0, 8.0]))
    assert asked == [2] and net.params["dend_W"][0, 8] == 7.0 and net.params["dend_W"][0, 9] == 8.0


def test_fully_connected_with_resampling_fails_as_the_original():
    net, x, y = tiny(strategy="fully-connected", k=4, steps_to_resample=1)
    with pytest.raises(AssertionError, match="connections"):
        on.train_step(net, on.adam_init(net), x, y,
                      draw=lambda: (np.zeros((6, 1), int), np.ones((6, 1))))
    # With k = in_dim every draw conflicts, nothing moves, and training goes on.
    net, x, y = tiny(strategy="fully-connected", k=16, steps_to_resample=1)
    on.train_step(net, on.adam_init(net), x, y,
                  draw=lambda: (np.zeros((6, 4), int), np.ones((6, 4))))
    assert net.rounds == 1 and net.last_swaps[0].size == 0


def test_rewiring_runs_inside_backward_before_the_update():
    """The round ranks the weights from before the step's update, and the new synapse gets
    no gradient in that step: only the decay moves it (fresh moments)."""
    net, x, y = tiny(steps_to_resample=2, percentage_resample=0.25)  # k=4: one per branch
    opt = on.adam_init(net)
    on.train_step(net, opt, x, y, lr=1e-2, weight_decay=0.1, draw=lambda: None)
    before = net.params["dend_W"].copy()
    weakest = np.argmin(np.where(net.masks["dend"] == 1, np.abs(before), np.inf), axis=1)
    free = np.argmax(net.masks["dend"] == 0, axis=1)  # an unconnected feature per branch
    on.train_step(net, opt, x, y, lr=1e-2, weight_decay=0.1, fresh_moments=True,
                  draw=lambda: (free[:, None], np.full((6, 1), 0.5)))
    rows = np.arange(6)
    assert np.all(net.masks["dend"][rows, weakest] == 0)
    assert np.all(net.params["dend_W"][rows, weakest] == 0)
    np.testing.assert_allclose(net.params["dend_W"][rows, free], 0.5 * (1 - 1e-2 * 0.1), rtol=1e-14)


def test_stale_moments_are_the_originals():
    """Without fresh_moments a reconnected position keeps its old Adam moments."""
    net, x, y = tiny(steps_to_resample=1, percentage_resample=0.25)
    opt = on.adam_init(net)
    opt["m"]["dend_W"][:] = 1.0
    opt["v"]["dend_W"][:] = 1.0
    free = np.argmax(net.masks["dend"] == 0, axis=1)
    on.train_step(net, opt, x, y, draw=lambda: (free[:, None], np.zeros((6, 1))))
    rows = np.arange(6)
    assert np.all(opt["m"]["dend_W"][rows, free] == 0.9)  # decayed, not reset
    assert np.all(net.params["dend_W"][rows, free] != 0)  # and they moved the new weight


def test_train_follows_the_originals_bookkeeping():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 20)) * 2
    y = rng.integers(0, 3, size=610)
    x = (centres[y] + rng.normal(size=(610, 20))).astype(np.float32)
    config = {"architecture": "dendritic_simple", "n_neurons": 4, "n_dendrites": 3,
              "n_dendrite_inputs": 8, "percentage_resample": 0.25, "steps_to_resample": 3}
    seen = []
    h = on.train(config, x[:500], y[:500], x[500:], y[500:], n_epochs=4, batch_size=32,
                 lr=1e-2, callback=lambda epoch, hist: seen.append(epoch))
    assert seen == [0, 1, 2, 3]
    assert h["train_loss"][-1] < h["train_loss"][0] and h["test_accuracy"][-1] > 0.8
    assert sum(h["swaps"]) > 0 and h["net"].rounds == (4 * 15) // 3
    assert np.all(h["net"].masks["dend"].sum(1) == 8)
    # 15 batches of 32 run; the original divides by 16 batches and by all 500 samples.
    assert max(h["train_accuracy"]) <= 480 / 500
    again = on.train(config, x[:500], y[:500], x[500:], y[500:], n_epochs=4, batch_size=32,
                     lr=1e-2)
    assert again["test_loss"] == h["test_loss"]  # one seed, one result


def test_evaluate_averages_per_batch_means():
    net, _, _ = tiny()
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(1030, 16)), on.one_hot(rng.integers(0, 3, 1030), 3)
    first = on.cross_entropy(on.forward(net, x[:1024])[0], y[:1024])[0]
    last = on.cross_entropy(on.forward(net, x[1024:])[0], y[1024:])[0]
    assert on.evaluate(net, x, y)[0] == pytest.approx((first + last) / 2, rel=1e-12)


def test_normalisation_as_the_original():
    pixels = np.arange(2 * 784, dtype=np.int64).reshape(2, 784) % 256
    x = on.normalise_mnist(pixels.astype(np.uint8))
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, (pixels / 255 - 0.1307) / 0.3081, rtol=1e-6)
    rows = (np.arange(2 * 3072) % 256).astype(np.uint8).reshape(2, 3072)
    c = on.normalise_cifar(rows)
    channel = np.arange(3072) % 3  # the reshape to (32, 32, 3): channel = index mod 3
    expected = (rows.astype(np.float32) / 255 - np.array(on.CIFAR_MEAN)[channel]) \
        / np.array(on.CIFAR_STD)[channel]
    assert c.dtype == np.float64
    np.testing.assert_allclose(c, expected, rtol=1e-12)


def test_read_idx_roundtrip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-idx3-ubyte.gz"
    header = bytes([0, 0, 0x08, 3]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + images.tobytes())
    np.testing.assert_array_equal(on.read_idx(str(path)), images)
