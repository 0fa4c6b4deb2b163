"""The dense baseline ``mlp``: one training step equals a plain NumPy MLP, a padded member
equals the same MLP alone, it never rewires, and its config rules hold."""


import jax
import numpy as np
import pytest

from dendrax import population as train
from dendrax.population import compile as compile_module
from dendrax.config import ModelConfig, count_params
from dendrax.errors import ConfigError
from dendrax.plan import plan_buckets
from dendrax.spec import TrainSettings
from conftest import prototype_data, SMALL_DATA

IN_DIM, CLASSES, BATCH = 48, 5, 32
DATA = prototype_data(n_train=BATCH, n_val=8, n_test=8, in_dim=IN_DIM, n_classes=CLASSES,
                      image_shape=(6, 8, 1))
SLOPE = 0.1


def _leaky(z):
    return np.where(z >= 0, z, SLOPE * z)


def numpy_mlp_loss_and_grads(p, x, y):
    """Mean softmax cross-entropy of logits = LeakyReLU(x W0 + b0) W1 + b1 (or x W1 + b1
    without a hidden layer), and its gradients, by hand."""
    hidden = "W0" in p
    if hidden:
        z = x @ p["W0"] + p["b0"]
        h = _leaky(z)
    else:
        h = x
    logits = h @ p["W1"] + p["b1"]
    shifted = logits - logits.max(1, keepdims=True)
    prob = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    n = len(y)
    loss = -np.mean(np.log(prob[np.arange(n), y]))
    d_logits = prob.copy()
    d_logits[np.arange(n), y] -= 1.0
    d_logits /= n
    grads = {"W1": h.T @ d_logits, "b1": d_logits.sum(0)}
    if hidden:
        d_z = (d_logits @ p["W1"].T) * np.where(z >= 0, 1.0, SLOPE)
        grads.update(W0=x.T @ d_z, b0=d_z.sum(0))
    return logits, loss, grads


def _as_numpy(params):
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    out = {"W1": p["output"]["kernel"], "b1": p["output"]["bias"]}
    if "hidden" in p:
        out.update(W0=p["hidden"]["kernel"], b0=p["hidden"]["bias"])
    return out


def numpy_adamw_first_step(params, grads, lr, weight_decay, b1=0.9, b2=0.999, eps=1e-8):
    """The first AdamW step in the original's order: the Adam step, then the decay of the
    updated value (benchmarks/original_numpy.py, adam_step)."""
    out = {}
    for name, g in grads.items():
        m_hat = (1 - b1) * g / (1 - b1)
        v_hat = (1 - b2) * g ** 2 / (1 - b2)
        p = params[name] - lr * m_hat / (np.sqrt(v_hat) + eps)
        out[name] = p - lr * weight_decay * p
    return out


@pytest.mark.parametrize("hidden_dim", [7, 0], ids=["hidden", "linear"])
def test_one_training_step_equals_a_numpy_mlp(hidden_dim):
    # Resampling "on" must be ignored: an mlp has no dendritic layer to rewire.
    config = ModelConfig(architecture="mlp", hidden_dim=hidden_dim, lr=1e-2,
                         weight_decay=0.05, seed=3, steps_to_resample=1,
                         percentage_resample=0.5)
    settings = TrainSettings(n_epochs=1, batch_size=BATCH)  # one step over every sample
    spec = compile_module.program_spec(config.shape(IN_DIM), DATA, settings, members=1,
                                       padded=False, n_devices=1)
    program = train.make_train(spec)
    hyper, keys = train.hyper_for([config], IN_DIM), train.member_keys([config])
    assert int(hyper.n_resample[0]) == 0
    start = jax.tree_util.tree_map(lambda a: a[0], program.init(hyper, keys))
    history, final, _ = train.train_population([config], DATA, settings)
    final = jax.tree_util.tree_map(lambda a: a[0], final)

    params = _as_numpy(start.params)
    assert sum(v.size for v in params.values()) == count_params(config, IN_DIM, CLASSES)
    x, y = DATA.x_train.astype(np.float64), DATA.y_train
    _, loss, grads = numpy_mlp_loss_and_grads(params, x, y)
    expected = numpy_adamw_first_step(params, grads, lr=1e-2, weight_decay=0.05)
    got = _as_numpy(final.params)
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(np.asarray(history["train_loss"]).ravel()[0], loss, rtol=1e-5)
    assert np.asarray(history["swaps"]).sum() == 0


def test_padded_mlp_equals_the_same_mlp_alone():
    data = SMALL_DATA
    settings = TrainSettings(n_epochs=1, batch_size=32)  # 20 steps
    small = ModelConfig(architecture="mlp", hidden_dim=5, seed=11, lr=3e-3)
    large = ModelConfig(architecture="mlp", hidden_dim=9, seed=12)
    alone = train.train_population([small], data, settings).state
    padded = train.train_population([small, large], data, settings,
                                    shape=large.shape(64)).state
    a = jax.tree_util.tree_map(lambda t: np.asarray(t[0]), alone.params)
    p = jax.tree_util.tree_map(lambda t: np.asarray(t[0]), padded.params)
    np.testing.assert_allclose(p["hidden"]["kernel"][:, :5], a["hidden"]["kernel"],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p["hidden"]["bias"][:5], a["hidden"]["bias"], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(p["output"]["kernel"][:5], a["output"]["kernel"], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(p["output"]["bias"], a["output"]["bias"], rtol=1e-5, atol=1e-6)
    # The padding holds exactly zero weight after training: no gradient, no decay.
    assert not p["hidden"]["kernel"][:, 5:].any() and not p["hidden"]["bias"][5:].any()
    assert not p["output"]["kernel"][5:].any()


def test_a_linear_mlp_never_shares_a_bucket_with_a_hidden_one():
    linear = ModelConfig(architecture="mlp", hidden_dim=0)
    hidden = ModelConfig(architecture="mlp", hidden_dim=4)
    assert not linear.shape(64).fits_in(hidden.shape(64))
    for policy in ("padded", "pow2"):
        assert len(plan_buckets([linear, hidden], 64, policy)) == 2


def test_mlp_config_rules():
    with pytest.raises(ConfigError, match="needs hidden_dim"):
        ModelConfig(architecture="mlp").validate(784)
    with pytest.raises(ConfigError, match="hidden_dim"):
        ModelConfig(architecture="mlp", hidden_dim=-1).validate(784)
    with pytest.raises(ConfigError, match="hidden_dim"):  # 0 means "no hidden layer": mlp only
        ModelConfig(architecture="dendritic_with_hidden", hidden_dim=0).validate(784)
    # The dendritic fields are ignored: they change neither the shape nor the count.
    a = ModelConfig(architecture="mlp", hidden_dim=10)
    b = a.replace(n_neurons=3, n_dendrites=9, n_dendrite_inputs=5, soma_enabled=False,
                  strategy="local-receptive-fields")
    assert a.shape(784) == b.shape(784)
    assert count_params(a) == 784 * 10 + 10 + 10 * 10 + 10
    assert a.shape(784).label == "mlp|h10"
    assert ModelConfig(architecture="mlp", hidden_dim=0).shape(784).label == "mlp|linear"
