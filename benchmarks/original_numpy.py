"""The original toolkit's training, step for step, in plain NumPy float64: the oracle.

Written by us from a line-by-line reading of the original NumPy/CuPy toolkit's code
(``modules.py``, ``training.py``, ``utils.py`` and ``hp_search/`` at commit 65a59f8); none
of its code is copied. It keeps the original's execution model and every detail that
changes a number:

* one model at a time, float64 parameters, a dense (branches × in_dim) weight matrix with a
  0/1 mask (``x @ (W * mask).T``) and a dense (n_neurons × branches) block-diagonal soma
  matrix with its own mask; Linear layers store W as (out, in) and compute ``x @ W.T + b``;
* the draws of one seed in the original's order, from NumPy's legacy generator
  (``np.random.seed(seed)`` and the module functions are the same stream as
  ``np.random.RandomState(seed)``): the dense branch weights, the dense soma weights, the
  connections of each branch, then each Linear layer; per epoch one ``shuffle``; per
  rewiring round the candidates, then the fresh weights of the accepted swaps only;
* forward, then backward; the rewiring runs *inside* backward, after the gradients are
  taken and before the optimiser step, so it ranks the weights from before this step's
  update and the new synapses get no gradient in that step;
* Adam with decoupled decay in the original's order: ``p -= lr·m̂/(√v̂ + ε)``, *then*
  ``p -= lr·wd·p`` on the updated value, for every parameter; the branch matrix is re-masked
  afterwards. The moments live on the dense matrices, so a synapse that reconnects to a
  feature inherits that position's stale moments (``fresh_moments=True`` resets them, as
  dendrax does);
* local receptive fields: a side of int(sqrt(in_dim)) pixels (55 on CIFAR-10's 3,072
  features), the centre pixel always included, offsets N(0, k) rounded half to even;
* cross-entropy of ``softmax + 1e-15``; train loss summed over the batches that ran and
  divided by ceil(n / batch), train accuracy over all n samples; test loss the mean of
  per-batch means over batches of 1,024;
* data: MNIST statistics for (Fashion-)MNIST, computed in float32; CIFAR-10 rows reshaped to
  (32, 32, 3) and normalised per channel of that reshape; ``subset_size`` takes the first N
  training rows and the first N // 6 test rows (N // 5 for CIFAR-10).

Where the original fails, so does this: ``soma_disabled`` needs ``n_neurons`` equal to the
number of classes (its second Linear layer expects n_neurons inputs and gets classes), and
``fully-connected`` with resampling on and ``n_dendrite_inputs`` below in_dim fails the
original's assertion at the first rewiring round.

Run as a script to train the headline config on Fashion-MNIST::

    python benchmarks/original_numpy.py --epochs 2 --subset 10000
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import math
import os
import pickle
import time
from typing import Callable, Optional

import numpy as np

SLOPE = 0.1  # LeakyReLU negative slope everywhere
LOG_EPS = 1e-15  # the original's cross-entropy takes log(softmax + 1e-15)
ARCHITECTURES = ("dendritic_simple", "dendritic_with_hidden", "soma_disabled")
STRATEGIES = ("random", "local-receptive-fields", "fully-connected")
DATA_DIR = "/usr/share/datasets/fashion-mnist"
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # applied to MNIST and Fashion-MNIST alike
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
MEAN, STD = MNIST_MEAN, MNIST_STD  # older name, kept for callers
EVAL_BATCH = 1024
HEADLINE = {"architecture": "dendritic_simple", "n_neurons": 12, "n_dendrites": 6,
            "n_dendrite_inputs": 96, "soma_enabled": True, "strategy": "random",
            "synaptic_resampling": True, "percentage_resample": 0.25, "steps_to_resample": 128}
# The original's create_model defaults for keys a config leaves out.
DEFAULTS = {"architecture": "dendritic_simple", "n_neurons": 10, "n_dendrites": 6,
            "n_dendrite_inputs": 128, "soma_enabled": True, "strategy": "random",
            "synaptic_resampling": True, "percentage_resample": 0.25, "steps_to_resample": 128,
            "hidden_dim": None}


# ---------------------------------------------------------------- the network
@dataclasses.dataclass
class Net:
    """One model: its parameters, masks, layer plan and rewiring counters.

    ``params`` keys: dend_W (B, in_dim), dend_b (B,), and with a soma soma_W (N, B) and
    soma_b (N,); then lin0_W (out, in), lin0_b, and lin1_W, lin1_b when there are two Linear
    layers. ``masks`` holds "dend" (B, in_dim) and, with a soma, "soma" (N, B). ``plan``
    lists the layers after the dendritic one: "linear0", "leaky", "linear1".
    """

    params: dict
    masks: dict
    plan: tuple
    k: int
    strategy: str
    resampling: bool
    percentage_resample: float
    steps_to_resample: int
    update_steps: int = 0  # backward passes since the last round (the original's counter)
    rounds: int = 0
    last_swaps: tuple = (np.zeros(0, int), np.zeros(0, int))  # (branch, new feature)

    @property
    def in_dim(self) -> int:
        return self.params["dend_W"].shape[1]

    @property
    def n_resample(self) -> int:
        return int(self.k * self.percentage_resample)


def _config(config: dict) -> dict:
    return {**DEFAULTS, **{k: v for k, v in config.items() if v is not None}}


def local_receptive_field(k: int, in_dim: int, rng) -> np.ndarray:
    """The original's local receptive field: a square of side int(sqrt(in_dim)), a uniform
    centre (row, then column), the centre pixel itself, then Gaussian offsets with std
    sqrt(k) (row draw, then column draw), rounded half to even and clipped, until k distinct
    pixels are held. Returned in the order a Python set of those indices lists them."""
    side = int(math.sqrt(in_dim))
    centre_row, centre_col = rng.randint(0, side), rng.randint(0, side)
    std = k ** 0.5
    chosen = {int(centre_row * side + centre_col)}
    while len(chosen) < k:
        row = np.clip(np.round(centre_row + rng.normal(0.0, std)), 0, side - 1)
        col = np.clip(np.round(centre_col + rng.normal(0.0, std)), 0, side - 1)
        chosen.add(int(row * side + col))
    return np.array(list(chosen), dtype=int)


def connect(strategy: str, n_branches: int, in_dim: int, k: int, rng) -> np.ndarray:
    """The (n_branches, in_dim) 0/1 branch mask, branch by branch, as the original draws it:
    "random" ``rng.choice(arange(in_dim), k, replace=False)``, "local-receptive-fields"
    :func:`local_receptive_field`, "fully-connected" every feature (no draw)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    mask = np.zeros((n_branches, in_dim))
    for b in range(n_branches):
        if strategy == "random":
            idx = rng.choice(np.arange(in_dim), size=k, replace=False)
        elif strategy == "local-receptive-fields":
            idx = local_receptive_field(k, in_dim, rng)
        else:
            idx = np.arange(in_dim)
        mask[b, idx] = 1.0
    return mask


def init_net(config: dict, in_dim: int, n_classes: int, rng) -> Net:
    """Build a model as the original's ``create_model`` does, drawing from ``rng`` (a
    ``np.random.RandomState``) in its order: dense branch weights N(0, 2/in_dim), dense soma
    weights N(0, 2/B), each branch's connections, then each Linear layer's W N(0, 2/fan_in).
    Biases start at 0; masked entries are zeroed.

    Architectures (the original's layer lists): dendritic_simple = Dendritic → Linear(out →
    classes); dendritic_with_hidden = Dendritic → leaky → Linear(out → hidden) → leaky →
    Linear(hidden → classes); soma_disabled = Dendritic(no soma) → Linear(n_dendrites →
    classes) → leaky → Linear(n_neurons → classes), which only runs when n_neurons equals
    the number of classes.
    """
    c = _config(config)
    arch = c["architecture"]
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {ARCHITECTURES}")
    n, d, k = c["n_neurons"], c["n_dendrites"], c["n_dendrite_inputs"]
    soma = bool(c["soma_enabled"]) and arch != "soma_disabled"
    branches = n * d if soma else d
    params = {"dend_W": rng.randn(branches, in_dim) * np.sqrt(2.0 / in_dim),
              "dend_b": np.zeros(branches)}
    masks = {}
    if soma:
        params["soma_W"] = rng.randn(n, branches) * np.sqrt(2.0 / branches)
        params["soma_b"] = np.zeros(n)
        masks["soma"] = np.kron(np.eye(n), np.ones((1, d)))  # soma i reads i*d .. i*d+d-1
        params["soma_W"] = params["soma_W"] * masks["soma"]
    masks["dend"] = connect(c["strategy"], branches, in_dim, k, rng)
    params["dend_W"] = params["dend_W"] * masks["dend"]
    out = n if soma else d
    if arch == "dendritic_simple":
        widths, plan = [(out, n_classes)], ("linear0",)
    elif arch == "dendritic_with_hidden":
        hidden = c["hidden_dim"] if c["hidden_dim"] is not None else n
        widths, plan = [(out, hidden), (hidden, n_classes)], ("leaky", "linear0", "leaky",
                                                              "linear1")
    else:
        widths, plan = [(d, n_classes), (n, n_classes)], ("linear0", "leaky", "linear1")
    for i, (fan_in, fan_out) in enumerate(widths):
        params[f"lin{i}_W"] = rng.randn(fan_out, fan_in) * np.sqrt(2.0 / fan_in)
        params[f"lin{i}_b"] = np.zeros(fan_out)
    return Net(params, masks, plan, k=k, strategy=c["strategy"],
               resampling=bool(c["synaptic_resampling"]),
               percentage_resample=float(c["percentage_resample"]),
               steps_to_resample=int(c["steps_to_resample"]))


def count_params(net: Net) -> int:
    """The original's count: connected synapses (mask ones), soma mask ones, every bias and
    every Linear weight."""
    p = net.params
    total = int(net.masks["dend"].sum()) + p["dend_b"].size
    if "soma" in net.masks:
        total += int(net.masks["soma"].sum()) + p["soma_b"].size
    return total + sum(p[name].size for name in p if name.startswith("lin"))


# ---------------------------------------------------------------- forward and backward
def _leaky(z):
    return np.where(z > 0, z, SLOPE * z)


def _leaky_grad(z, g):
    # The original's LeakyReLU.backward: slope 1 only where the input was > 0.
    return np.where(z > 0, g, SLOPE * g)


def forward(net: Net, x: np.ndarray):
    """(logits, cache): the dendritic layer, then ``net.plan``."""
    p, cache = net.params, {"x": x}
    h = x @ p["dend_W"].T + p["dend_b"]
    cache["dend_pre"] = h
    a = _leaky(h)
    if "soma_W" in p:
        cache["soma_in"] = a
        s = a @ p["soma_W"].T + p["soma_b"]
        cache["soma_pre"] = s
        a = _leaky(s)
    for i, layer in enumerate(net.plan):
        cache[i] = a
        if layer == "leaky":
            a = _leaky(a)
        else:
            j = layer[-1]
            a = a @ p[f"lin{j}_W"].T + p[f"lin{j}_b"]
    return a, cache


def cross_entropy(logits: np.ndarray, targets: np.ndarray):
    """(mean loss, d loss / d logits) of the original's CrossEntropy on one-hot targets."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    soft = e / e.sum(axis=1, keepdims=True)
    loss = np.mean(-np.sum(targets * np.log(soft + LOG_EPS), axis=1))
    return loss, (soft - targets) / len(logits)


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(labels), n_classes))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def backward(net: Net, cache: dict, grad: np.ndarray, draw: Optional[Callable] = None) -> dict:
    """Gradients of every parameter (branch and soma gradients masked), then, inside the
    dendritic layer's backward as in the original, the rewiring round when it is due.

    The counter counts backward passes; a round runs when it reaches ``steps_to_resample``
    and resets it. ``draw()`` gives the round's draws (see :func:`resample`); without it no
    round runs. ``net.last_swaps`` holds this call's accepted swaps.
    """
    p, g = net.params, {}
    for i in reversed(range(len(net.plan))):
        layer, a = net.plan[i], cache[i]
        if layer == "leaky":
            grad = _leaky_grad(a, grad)
        else:
            j = layer[-1]
            g[f"lin{j}_W"], g[f"lin{j}_b"] = grad.T @ a, grad.sum(axis=0)
            grad = grad @ p[f"lin{j}_W"]
    if "soma_W" in p:
        grad = _leaky_grad(cache["soma_pre"], grad)
        g["soma_W"] = grad.T @ cache["soma_in"] * net.masks["soma"]
        g["soma_b"] = grad.sum(axis=0)
        grad = grad @ p["soma_W"]
    grad = _leaky_grad(cache["dend_pre"], grad)
    g["dend_W"] = grad.T @ cache["x"] * net.masks["dend"]
    g["dend_b"] = grad.sum(axis=0)

    net.last_swaps = (np.zeros(0, int), np.zeros(0, int))
    if net.resampling and draw is not None:
        net.update_steps += 1
        if net.update_steps >= net.steps_to_resample:
            net.update_steps = 0
            if net.n_resample == 0:  # the original returns before drawing anything
                return _masked(net, g)
            candidates, fresh = draw()
            net.last_swaps = resample(net, candidates, fresh)
    return _masked(net, g)


def _masked(net: Net, grads: dict) -> dict:
    net.params["dend_W"] = net.params["dend_W"] * net.masks["dend"]
    return grads


def resample(net: Net, candidates: np.ndarray, fresh) -> tuple:
    """One rewiring round, in place; returns the accepted swaps as (branches, new features).

    Each branch's ``n_resample`` connections with the smallest |w| (unconnected entries
    count as +inf) are removed candidates, weakest first; ``candidates[b, j]`` is the new
    feature for the j-th weakest of branch b. A draw is dropped if the feature is connected
    already (mask before the round) or drawn more than once for the branch. ``fresh`` gives
    the accepted swaps' new weights: a (B, n) array (entry [b, j]) or a function of the
    number of accepted swaps returning that many, in branch-major order. Then the original's
    check that every branch holds exactly k connections (an AssertionError otherwise).
    """
    n = net.n_resample
    if n == 0:
        return np.zeros(0, int), np.zeros(0, int)
    W, mask = net.params["dend_W"], net.masks["dend"]
    branches, in_dim = W.shape
    metric = np.where(mask == 1, np.abs(W), np.inf)
    # Ties never occur between real weights; stable makes the oracle deterministic anyway.
    weakest = np.argsort(metric, axis=1, kind="stable")[:, :n]
    rows = np.repeat(np.arange(branches), n)
    old, new = weakest.reshape(-1), np.asarray(candidates).reshape(-1)
    conflict = mask[rows, new] == 1
    counts = np.bincount(rows * in_dim + new, minlength=branches * in_dim)
    ok = ~(conflict | (counts[rows * in_dim + new] > 1))
    r, o, c = rows[ok], old[ok], new[ok]
    if r.size:
        mask[r, o] = 0
        mask[r, c] = 1
        weights = fresh(r.size) if callable(fresh) else np.asarray(fresh).reshape(-1)[ok]
        W[r, c] = weights
    net.params["dend_W"] = W * mask
    net.rounds += 1
    if not np.all(mask.sum(axis=1) == net.k):
        raise AssertionError(f"Resampling failed: not all dendrites have {net.k} connections.")
    return r, c


def original_draw(net: Net, rng) -> Callable:
    """The round's draws from the original's stream: for local receptive fields one
    ``random()`` (its LRF-resampling coin, with probability 0 never taken), then the
    candidates ``randint(0, in_dim, B·n)``, then N(0, 2/in_dim) for the accepted swaps."""

    def draw():
        if net.strategy == "local-receptive-fields":
            rng.random_sample()
        branches, in_dim = net.params["dend_W"].shape
        candidates = rng.randint(0, in_dim, size=branches * net.n_resample)
        return (candidates.reshape(branches, net.n_resample),
                lambda m: rng.randn(m) * np.sqrt(2.0 / in_dim))

    return draw


# ---------------------------------------------------------------- the optimiser
def adam_init(net: Net) -> dict:
    """t = 0 and zero first and second moments for every parameter array (dense ones too)."""
    zeros = {k: np.zeros_like(v) for k, v in net.params.items()}
    return {"t": 0, "m": zeros, "v": {k: v.copy() for k, v in zeros.items()}}


def adam_step(net: Net, grads: dict, opt: dict, lr=5e-4, weight_decay=0.01, b1=0.9, b2=0.999,
              eps=1e-8) -> None:
    """The original's Adam, in place: t += 1; for every parameter
    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²;  p -= lr · m/(1-b1ᵗ) / (√(v/(1-b2ᵗ)) + ε);
    then p -= lr · wd · p (on the updated p); then the branch matrix is re-masked."""
    opt["t"] += 1
    t = opt["t"]
    for name, g in grads.items():
        opt["m"][name] = b1 * opt["m"][name] + (1 - b1) * g
        opt["v"][name] = b2 * opt["v"][name] + (1 - b2) * g ** 2
        m_hat = opt["m"][name] / (1 - b1 ** t)
        v_hat = opt["v"][name] / (1 - b2 ** t)
        p = net.params[name]
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        net.params[name] = p - lr * weight_decay * p
    net.params["dend_W"] = net.params["dend_W"] * net.masks["dend"]


def train_step(net: Net, opt: dict, x: np.ndarray, targets: np.ndarray, *, lr=5e-4,
               weight_decay=0.01, draw: Optional[Callable] = None,
               fresh_moments: bool = False):
    """One training step as the original's loop runs it: forward, loss, backward (with the
    rewiring inside), Adam. ``fresh_moments`` zeroes the Adam moments at each newly
    connected position before the update (dendrax's rule). Returns (loss, logits)."""
    logits, cache = forward(net, x)
    loss, grad = cross_entropy(logits, targets)
    grads = backward(net, cache, grad, draw)
    if fresh_moments and net.last_swaps[0].size:
        r, c = net.last_swaps
        for moments in (opt["m"], opt["v"]):
            moments["dend_W"][r, c] = 0.0
    adam_step(net, grads, opt, lr, weight_decay)
    return loss, logits


def evaluate(net: Net, x: np.ndarray, targets: np.ndarray, batch_size: int = EVAL_BATCH):
    """(loss, accuracy) as the original's evaluate: the mean over batches of 1,024 (the last
    one smaller) of each batch's mean loss, and the fraction correct."""
    losses, correct = [], 0
    for i in range(0, len(x), batch_size):
        logits, _ = forward(net, x[i:i + batch_size])
        losses.append(cross_entropy(logits, targets[i:i + batch_size])[0])
        correct += int(np.sum(logits.argmax(1) == targets[i:i + batch_size].argmax(1)))
    return float(np.sum(losses) / len(losses)), correct / len(x)


def train(config, x_train, y_train, x_test, y_test, n_epochs=15, batch_size=256,
          lr=None, weight_decay=None, seed=None, callback=None, fresh_moments=False):
    """Train one model the original's way (its ``train_and_evaluate``) and return its history.

    ``config`` uses the original's keys (architecture, n_neurons, n_dendrites,
    n_dendrite_inputs, soma_enabled, hidden_dim, strategy, synaptic_resampling,
    percentage_resample, steps_to_resample, seed, lr, weight_decay); keyword arguments
    override it; lr 5e-4, weight decay 0.01 and seed 0 by default. Labels are class
    integers. One ``np.random.RandomState(seed)`` drives init, the per-epoch ``shuffle``
    and every rewiring draw, in the original's order.

    Returns a dict of per-epoch lists: train_loss, train_accuracy, test_loss, test_accuracy
    (the original's bookkeeping, see the module docstring), swaps, train_seconds,
    epoch_seconds; and ``net``, the trained model.
    """
    def pick(name, value, default):
        return value if value is not None else config.get(name, default)

    lr, weight_decay = pick("lr", lr, 5e-4), pick("weight_decay", weight_decay, 0.01)
    rng = np.random.RandomState(pick("seed", seed, 0))
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    t_train, t_test = one_hot(y_train, n_classes), one_hot(y_test, n_classes)
    net = init_net(config, x_train.shape[1], n_classes, rng)
    opt = adam_init(net)
    draw = original_draw(net, rng)
    n = len(x_train)
    n_batches = -(-n // batch_size)  # the original divides by ceil(n / batch)
    keys = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "swaps",
            "train_seconds", "epoch_seconds")
    history = {name: [] for name in keys}
    for epoch in range(n_epochs):
        start = time.perf_counter()
        order = np.arange(n)
        rng.shuffle(order)
        xs, ts = x_train[order], t_train[order]
        loss_sum, correct, swaps = 0.0, 0, 0
        for i in range(0, n - batch_size + 1, batch_size):  # the last partial batch dropped
            loss, logits = train_step(net, opt, xs[i:i + batch_size], ts[i:i + batch_size],
                                      lr=lr, weight_decay=weight_decay, draw=draw,
                                      fresh_moments=fresh_moments)
            loss_sum += loss
            correct += int(np.sum(logits.argmax(1) == ts[i:i + batch_size].argmax(1)))
            swaps += net.last_swaps[0].size
        trained = time.perf_counter()
        test_loss, test_acc = evaluate(net, x_test, t_test)
        for name, value in zip(keys, (loss_sum / n_batches, correct / n, test_loss, test_acc,
                                      swaps, trained - start, time.perf_counter() - start)):
            history[name].append(float(value))
        if callback is not None:
            callback(epoch, history)
    history["net"] = net
    return history


# ---------------------------------------------------------------- data and command line
def read_idx(path):
    """An IDX file (optionally gzipped) as a NumPy array."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim).reshape(shape)


def normalise_mnist(pixels: np.ndarray) -> np.ndarray:
    """uint8 (n, 784) → float32 (x/255 − 0.1307)/0.3081, computed in float32 as the original."""
    return (pixels.astype(np.float32) / 255.0 - MNIST_MEAN) / MNIST_STD


def normalise_cifar(rows: np.ndarray) -> np.ndarray:
    """uint8 (n, 3072) rows → float64, as the original: x/255 in float32, reshaped to
    (n, 32, 32, 3), per-channel (x − mean)/std of that reshape, flattened back. On rows in
    the CIFAR-10 files' channel-planar order "channel" c is therefore feature index mod 3."""
    x = rows.astype(np.float32) / 255.0
    x = (x.reshape(-1, 32, 32, 3) - np.array(CIFAR_MEAN)) / np.array(CIFAR_STD)
    return x.reshape(len(rows), -1)


def load_fashion_mnist(data_dir=DATA_DIR, subset_size=None):
    """(x_train, y_train, x_test, y_test) from the IDX files, normalised as the original;
    ``subset_size`` N keeps the first N training and the first N // 6 test rows."""
    def split(prefix):
        x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
        return normalise_mnist(x.reshape(len(x), -1)), y.astype(np.int64)
    x_train, y_train, x_test, y_test = (*split("train"), *split("t10k"))
    if subset_size is not None:
        x_train, y_train = x_train[:subset_size], y_train[:subset_size]
        x_test, y_test = x_test[:subset_size // 6], y_test[:subset_size // 6]
    return x_train, y_train, x_test, y_test


def load_cifar10(folder, subset_size=None):
    """(x_train, y_train, x_test, y_test) from a cifar-10-batches-py folder (rows kept in the
    files' order), normalised as :func:`normalise_cifar`; ``subset_size`` N keeps the first
    N training and the first N // 5 test rows."""
    def batch(name):
        with open(os.path.join(folder, name), "rb") as f:
            d = pickle.load(f, encoding="bytes")
        return np.asarray(d[b"data"], np.uint8), np.asarray(d[b"labels"], np.int64)
    train = [batch(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = batch("test_batch")
    x_train = normalise_cifar(np.concatenate([x for x, _ in train]))
    y_train = np.concatenate([y for _, y in train])
    x_test = normalise_cifar(x_test)
    if subset_size is not None:
        x_train, y_train = x_train[:subset_size], y_train[:subset_size]
        x_test, y_test = x_test[:subset_size // 5], y_test[:subset_size // 5]
    return x_train, y_train, x_test, y_test


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--subset", type=int, default=None,
                    help="the original's subset_size: first N training, first N//6 test rows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-resampling", action="store_true")
    ap.add_argument("--data-dir", default=DATA_DIR)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    x_train, y_train, x_test, y_test = load_fashion_mnist(args.data_dir, args.subset)
    config = {**HEADLINE, "synaptic_resampling": not args.no_resampling, "seed": args.seed}
    print(f"data: {len(x_train)} train, {len(x_test)} test, loaded in "
          f"{time.perf_counter() - t0:.2f} s; config {config}")

    def report(epoch, h):
        print(f"epoch {epoch + 1:2d}  train loss {h['train_loss'][-1]:.4f} "
              f"acc {h['train_accuracy'][-1]:.4f}  test loss {h['test_loss'][-1]:.4f} "
              f"acc {h['test_accuracy'][-1]:.4f}  swaps {h['swaps'][-1]:4.0f}  "
              f"{h['epoch_seconds'][-1]:.3f} s/epoch ({h['train_seconds'][-1]:.3f} s training)",
              flush=True)

    history = train(config, x_train, y_train, x_test, y_test, n_epochs=args.epochs,
                    callback=report)
    print(f"parameters {count_params(history['net'])}; mean "
          f"{np.mean(history['epoch_seconds']):.3f} s/epoch over {args.epochs} epochs; "
          f"final test accuracy {history['test_accuracy'][-1]:.4f}")


if __name__ == "__main__":
    main()
