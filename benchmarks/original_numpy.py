"""The original dendritic-network algorithm in plain NumPy: the baseline and the reference.

This is a re-implementation from the published description of the original NumPy/CuPy
toolkit (the project's written specification of it), not the original code. It keeps the original's
execution model: one model at a time, on the CPU, with a dense (branches × in_dim) weight
matrix and a 0/1 connection mask, ``x @ (W * mask).T``, hand-written backprop and masked
gradients. It serves two purposes:

1. the "original algorithm" baseline of the throughput benchmark (float32, NumPy's default
   BLAS threads), and
2. the reference that dendrax's tests compare against: one forward + backward + AdamW step,
   and one resampling round on fixed draws.

The model
---------
A dendritic layer has ``n_neurons`` somas with ``n_dendrites`` branches each; branch
``b = neuron * n_dendrites + dendrite`` reads k = ``n_dendrite_inputs`` distinct features::

    branch = leaky(x @ (W * mask).T + b)                       (batch, B)
    soma_n = leaky(sum_d soma_W[n, d] * branch[:, n*D + d] + soma_b[n])

with ``leaky`` = LeakyReLU(0.1). Without a soma there are ``n_dendrites`` branches and they
are the layer's outputs. Architectures (``arch``):

* ``dendritic_simple``:      Dendritic → Linear(out → classes)
* ``dendritic_with_hidden``: Dendritic → leaky → Linear(out → hidden) → leaky
                             → Linear(hidden → classes)
* ``soma_disabled``:         Dendritic(soma off) → Linear(n_dendrites → n_neurons) → leaky
                             → Linear(n_neurons → classes): the model that the original's
                             parameter formula describes (its code crashes unless n_neurons == 10)

Parameters are a flat dict of arrays (see :func:`init_model`). The optimiser is AdamW with
decoupled weight decay on every parameter, written with exactly ``optax.adamw``'s maths.

The one deliberate departure
----------------------------
When resampling rewires a synapse, the AdamW moments (mu, nu) at the removed and at the added
dense position are reset to 0, as dendrax does. The original's own Adam keeps the stale
moments of the dense position. Everything else follows that specification.

Run as a script to train the headline config on Fashion-MNIST::

    python benchmarks/original_numpy.py --epochs 2 --subset 10000
"""

from __future__ import annotations

import argparse
import gzip
import os
import time

import numpy as np

SLOPE = 0.1  # LeakyReLU negative slope everywhere
ARCHITECTURES = ("dendritic_simple", "dendritic_with_hidden", "soma_disabled")
DATA_DIR = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.1307, 0.3081  # MNIST statistics, applied to Fashion-MNIST too (as the original)


# ---------------------------------------------------------------- initialisation
def connect(strategy, n_branches, in_dim, k, rng, image_shape=(28, 28, 1)):
    """A (n_branches, in_dim) 0/1 mask with exactly k ones per row.

    "random": k distinct features, uniformly. "fully-connected": every feature (k is ignored).
    "local-receptive-fields": a uniform centre pixel (r, c) on the H×W image, then Gaussian
    offsets with std sqrt(k), rounded and clipped to the image, drawn until k distinct
    features are collected (the centre itself is not added unless drawn). Features are
    flattened as (H, W, C); with C > 1 each draw also picks a channel uniformly.
    """
    if strategy == "fully-connected":
        return np.ones((n_branches, in_dim))
    if not 1 <= k <= in_dim:
        raise ValueError(f"n_dendrite_inputs={k} must be in 1..{in_dim}")
    mask = np.zeros((n_branches, in_dim))
    for b in range(n_branches):
        if strategy == "random":
            idx = rng.choice(in_dim, size=k, replace=False)
        elif strategy == "local-receptive-fields":
            idx = _local_field(k, rng, image_shape, in_dim)
        else:
            raise ValueError(f"unknown strategy {strategy!r}")
        mask[b, idx] = 1.0
    return mask


def _local_field(k, rng, image_shape, in_dim):
    h, w, c = image_shape
    if h * w * c != in_dim:
        raise ValueError(f"image_shape {image_shape} does not match in_dim={in_dim}")
    centre = np.array([rng.integers(h), rng.integers(w)])
    chosen = {}  # insertion-ordered set of features
    while len(chosen) < k:
        rc = np.rint(centre + rng.normal(0.0, np.sqrt(k), size=2)).astype(int)
        r, col = np.clip(rc[0], 0, h - 1), np.clip(rc[1], 0, w - 1)
        ch = rng.integers(c) if c > 1 else 0
        chosen[int((r * w + col) * c + ch)] = None
    return np.fromiter(chosen, dtype=int)


def init_model(arch, in_dim, n_classes, n_neurons, n_dendrites, n_dendrite_inputs,
               soma_enabled=True, hidden_dim=None, strategy="random", image_shape=(28, 28, 1),
               *, rng, dtype=np.float32):
    """Initial parameters, a dict of arrays in ``dtype``.

    Keys (B branches, N somas, D dendrites per soma):
      dend_W (B, in_dim)   dense branch weights, exactly 0 where unconnected
      dend_mask (B, in_dim) 0/1 connections, k ones per row (not trained)
      dend_b (B,)
      soma_W (N, D), soma_b (N,)   only with a soma; soma n reads branches n*D .. n*D+D-1
      lin0_W (fan_in, fan_out), lin0_b (fan_out,), then lin1_W, lin1_b; y = x @ W + b
    Init: branch weights N(0, 2/in_dim), soma weights N(0, 2/B), Linear N(0, 2/fan_in),
    biases 0. ``soma_disabled`` always builds its dendritic layer without a soma.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHITECTURES}")
    soma = soma_enabled and arch != "soma_disabled"
    n_branches = n_neurons * n_dendrites if soma else n_dendrites
    mask = connect(strategy, n_branches, in_dim, n_dendrite_inputs, rng, image_shape)
    p = {"dend_W": rng.normal(0.0, np.sqrt(2.0 / in_dim), (n_branches, in_dim)) * mask,
         "dend_mask": mask,
         "dend_b": np.zeros(n_branches)}
    if soma:
        p["soma_W"] = rng.normal(0.0, np.sqrt(2.0 / n_branches), (n_neurons, n_dendrites))
        p["soma_b"] = np.zeros(n_neurons)
    out = n_neurons if soma else n_dendrites
    if arch == "dendritic_simple":
        widths = [out, n_classes]
    else:
        hidden = n_neurons if arch == "soma_disabled" or hidden_dim is None else hidden_dim
        widths = [out, hidden, n_classes]
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        p[f"lin{i}_W"] = rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_in, fan_out))
        p[f"lin{i}_b"] = np.zeros(fan_out)
    return {name: a.astype(dtype) for name, a in p.items()}


def count_params(params):
    """Trainable parameters: connected synapses plus every other array (the mask excluded)."""
    return int(params["dend_mask"].sum()) + sum(
        a.size for name, a in params.items() if name not in ("dend_W", "dend_mask"))


def infer_arch(params):
    """The architecture implied by the keys, when they imply one.

    Two Linear layers without a soma fit both ``soma_disabled`` and ``dendritic_with_hidden``
    with ``soma_enabled=False`` (they differ by one LeakyReLU), so that case needs ``arch``.
    """
    if "lin1_W" not in params:
        return "dendritic_simple"
    if "soma_W" in params:
        return "dendritic_with_hidden"
    raise ValueError("two Linear layers and no soma: pass arch='soma_disabled' or "
                     "arch='dendritic_with_hidden'")


# ---------------------------------------------------------------- forward and backprop
def _leaky(z):
    # z >= 0 takes the identity branch, as jax.nn.leaky_relu does (matters only at exactly 0).
    return np.where(z >= 0, z, SLOPE * z)


def _leaky_grad(z, g):
    return np.where(z >= 0, g, SLOPE * g)


def _forward(params, x, arch):
    """Logits and the pre-activations that backprop needs."""
    arch = arch or infer_arch(params)
    cache = {"x": x}
    h = x @ (params["dend_W"] * params["dend_mask"]).T + params["dend_b"]
    cache["h"] = h
    a = _leaky(h)
    if "soma_W" in params:
        n, d = params["soma_W"].shape
        cache["branch"] = a.reshape(len(x), n, d)
        s = np.einsum("bnd,nd->bn", cache["branch"], params["soma_W"]) + params["soma_b"]
        cache["s"] = s
        a = _leaky(s)
    if arch == "dendritic_with_hidden":
        cache["pre0"] = a
        a = _leaky(a)
    cache["in0"] = a
    z = a @ params["lin0_W"] + params["lin0_b"]
    if "lin1_W" in params:
        cache["pre1"] = z
        cache["in1"] = a = _leaky(z)
        z = a @ params["lin1_W"] + params["lin1_b"]
    return z, cache


def forward(params, x, *, arch=None):
    """Logits (batch, classes). ``arch`` defaults to :func:`infer_arch`; the soma is on when
    ``soma_W`` is present."""
    return _forward(params, x, arch)[0]


def softmax_cross_entropy(logits, y):
    """Mean softmax cross-entropy over the batch, and d(loss)/d(logits)."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    dz = np.exp(logp)
    dz[rows, y] -= 1.0
    return -logp[rows, y].mean(), dz / len(y)


def forward_backward(params, x, y, *, arch=None):
    """(loss, grads, logits): hand-written backprop. Gradients follow the params' dtype, and
    ``grads["dend_W"]`` is masked (exactly 0 where unconnected). No entry for the mask."""
    logits, c = _forward(params, x, arch)
    loss, dz = softmax_cross_entropy(logits, y)
    g = {}
    if "lin1_W" in params:
        g["lin1_W"], g["lin1_b"] = c["in1"].T @ dz, dz.sum(0)
        dz = _leaky_grad(c["pre1"], dz @ params["lin1_W"].T)
    g["lin0_W"], g["lin0_b"] = c["in0"].T @ dz, dz.sum(0)
    da = dz @ params["lin0_W"].T
    if "pre0" in c:
        da = _leaky_grad(c["pre0"], da)
    if "soma_W" in params:
        ds = _leaky_grad(c["s"], da)
        g["soma_W"] = np.einsum("bn,bnd->nd", ds, c["branch"])
        g["soma_b"] = ds.sum(0)
        da = (ds[:, :, None] * params["soma_W"]).reshape(len(x), -1)
    dh = _leaky_grad(c["h"], da)
    g["dend_W"] = (dh.T @ c["x"]) * params["dend_mask"]
    g["dend_b"] = dh.sum(0)
    return loss, g, logits


def loss_and_grads(params, x, y, *, arch=None):
    """(mean softmax cross-entropy, grads dict with the params' keys minus ``dend_mask``)."""
    loss, grads, _ = forward_backward(params, x, y, arch=arch)
    return loss, grads


# ---------------------------------------------------------------- AdamW (optax.adamw maths)
def adamw_init(params):
    """{"count": 0, "mu": zeros, "nu": zeros} for every trainable array."""
    zeros = {k: np.zeros_like(v) for k, v in params.items() if k != "dend_mask"}
    return {"count": 0, "mu": zeros, "nu": {k: v.copy() for k, v in zeros.items()}}


def adamw_step(params, grads, state, lr=5e-4, weight_decay=0.01, b1=0.9, b2=0.999, eps=1e-8):
    """One AdamW step, as ``optax.adamw`` (eps_root=0, no Nesterov), on every parameter:

        t = count + 1;  mu = b1 mu + (1-b1) g;  nu = b2 nu + (1-b2) g^2
        p -= lr * (mu / (1-b1^t) / (sqrt(nu / (1-b2^t)) + eps) + weight_decay * p)

    Unconnected dense entries have p = g = mu = nu = 0, so they stay exactly 0.
    Returns new (params, state); the inputs are not modified.
    """
    t = state["count"] + 1
    new_p, mu, nu = dict(params), {}, {}
    for k, g in grads.items():
        p = params[k]
        mu[k] = b1 * state["mu"][k] + (1 - b1) * g
        nu[k] = b2 * state["nu"][k] + (1 - b2) * g * g
        mu_hat = mu[k] / (1 - b1 ** t)
        nu_hat = nu[k] / (1 - b2 ** t)
        update = mu_hat / (np.sqrt(nu_hat) + eps) + weight_decay * p
        new_p[k] = (p - lr * update).astype(p.dtype, copy=False)
    return new_p, {"count": t, "mu": mu, "nu": nu}


# ---------------------------------------------------------------- synaptic resampling
def draw_resample(rng, n_branches, n_resample, in_dim, dtype=np.float32):
    """Random draws for one round: candidate features uniform in [0, in_dim), (B, n) ints,
    and fresh weights N(0, 2/in_dim), (B, n)."""
    candidates = rng.integers(0, in_dim, size=(n_branches, n_resample))
    fresh = rng.normal(0.0, np.sqrt(2.0 / in_dim), size=(n_branches, n_resample)).astype(dtype)
    return candidates, fresh


def resample(params, state, n_resample, candidates, fresh_weights):
    """One resampling round on fixed draws. Returns (params, state, accepted swaps).

    Each branch's n_resample connections with the smallest |w| (unconnected entries count as
    +inf; stable argsort, so ties go to the lower feature index) are the candidates for
    removal, weakest first; ``candidates[b, j]`` is the new feature drawn for the j-th
    weakest. A draw is dropped, and its connection kept, if the feature is already connected
    to the branch (mask before this round) or if it was drawn more than once for the branch in
    this round (all copies dropped). An accepted swap zeroes the old weight, moves the mask
    bit, sets the new weight to ``fresh_weights[b, j]`` and resets the AdamW moments at both
    positions to 0 (``state`` may be None). Every branch keeps exactly k connections.
    """
    if n_resample == 0:
        return params, state, 0
    W, mask = params["dend_W"], params["dend_mask"]
    n_branches, in_dim = W.shape
    weakest = np.argsort(np.where(mask > 0, np.abs(W), np.inf), axis=1,
                         kind="stable")[:, :n_resample]
    rows = np.broadcast_to(np.arange(n_branches)[:, None], candidates.shape)
    counts = np.zeros((n_branches, in_dim), dtype=np.int64)
    np.add.at(counts, (rows, candidates), 1)
    accept = (mask[rows, candidates] == 0) & (counts[rows, candidates] == 1)
    r, old, new = rows[accept], weakest[accept], candidates[accept]

    W, mask = W.copy(), mask.copy()
    W[r, old], mask[r, old] = 0, 0
    W[r, new], mask[r, new] = fresh_weights[accept], 1
    params = {**params, "dend_W": W, "dend_mask": mask}
    if state is not None:
        moments = {}
        for name in ("mu", "nu"):
            m = state[name]["dend_W"].copy()
            m[r, old], m[r, new] = 0, 0
            moments[name] = {**state[name], "dend_W": m}
        state = {**state, **moments}
    return params, state, int(accept.sum())


# ---------------------------------------------------------------- training
def evaluate(params, x, y, *, arch=None, batch_size=2000):
    """(mean loss, accuracy) over a dataset."""
    loss_sum, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = forward(params, x[i:i + batch_size], arch=arch)
        loss, _ = softmax_cross_entropy(logits, y[i:i + batch_size])
        loss_sum += float(loss) * len(logits)
        correct += int((logits.argmax(1) == y[i:i + batch_size]).sum())
    return loss_sum / len(x), correct / len(x)


def train(config, x_train, y_train, x_test, y_test, n_epochs=15, batch_size=256,
          lr=None, weight_decay=None, seed=None, callback=None):
    """Train one model the original's way and return its per-epoch history.

    ``config`` uses the original's (and ``dendrax.search.config.ModelConfig``'s) keys: architecture,
    n_neurons, n_dendrites, n_dendrite_inputs, soma_enabled, hidden_dim, strategy,
    synaptic_resampling, percentage_resample, steps_to_resample, and optionally lr,
    weight_decay, seed. The keyword arguments lr/weight_decay/seed override the config;
    the defaults are 5e-4, 0.01 and 0. Parameters take ``x_train``'s dtype.

    One ``np.random.default_rng(seed)`` drives, in order: init, then per epoch the batch
    permutation and every resampling draw. Batches are reshuffled each epoch and the last
    partial one is dropped. After optimizer step t (counted over the whole run, from 1), a
    resampling round runs when t % steps_to_resample == 0. train_loss/train_accuracy are
    means over that epoch's batches, taken before each step's update.

    Returns a dict of lists, one value per epoch: train_loss, train_accuracy, test_loss,
    test_accuracy, swaps, train_seconds, epoch_seconds (training plus test evaluation); and
    ``params`` (the final parameters). ``callback(epoch, history)`` runs after each epoch.
    """
    def pick(name, value, default):
        return value if value is not None else config.get(name, default)

    lr, weight_decay = pick("lr", lr, 5e-4), pick("weight_decay", weight_decay, 0.01)
    rng = np.random.default_rng(pick("seed", seed, 0))
    arch = config.get("architecture", "dendritic_simple")
    in_dim = x_train.shape[1]
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    params = init_model(
        arch, in_dim, n_classes, config.get("n_neurons", 10), config.get("n_dendrites", 6),
        config.get("n_dendrite_inputs", 128), config.get("soma_enabled", True),
        config.get("hidden_dim"), config.get("strategy", "random"),
        config.get("image_shape", (28, 28, 1)), rng=rng, dtype=x_train.dtype)
    state = adamw_init(params)
    k = int(params["dend_mask"][0].sum())
    n_resample = int(k * config.get("percentage_resample", 0.25)) \
        if config.get("synaptic_resampling", True) else 0
    every = config.get("steps_to_resample", 128)

    keys = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "swaps",
            "train_seconds", "epoch_seconds")
    history = {name: [] for name in keys}
    n_batches = len(x_train) // batch_size
    for epoch in range(n_epochs):
        start = time.perf_counter()
        order = rng.permutation(len(x_train))
        loss_sum, correct, swaps = 0.0, 0, 0
        for i in range(n_batches):
            idx = order[i * batch_size:(i + 1) * batch_size]
            xb, yb = x_train[idx], y_train[idx]
            loss, grads, logits = forward_backward(params, xb, yb, arch=arch)
            params, state = adamw_step(params, grads, state, lr, weight_decay)
            loss_sum += float(loss)
            correct += int((logits.argmax(1) == yb).sum())
            if n_resample and state["count"] % every == 0:
                cand, fresh = draw_resample(rng, len(params["dend_W"]), n_resample, in_dim,
                                            dtype=x_train.dtype)
                params, state, accepted = resample(params, state, n_resample, cand, fresh)
                swaps += accepted
        trained = time.perf_counter()
        test_loss, test_acc = evaluate(params, x_test, y_test, arch=arch)
        for name, value in zip(keys, (loss_sum / n_batches, correct / (n_batches * batch_size),
                                      test_loss, test_acc, swaps, trained - start,
                                      time.perf_counter() - start)):
            history[name].append(value)
        if callback is not None:
            callback(epoch, history)
    history["params"] = params
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


def load_fashion_mnist(data_dir=DATA_DIR, dtype=np.float32):
    """(x_train, y_train, x_test, y_test): flattened, pixel/255, then (x - 0.1307) / 0.3081."""
    def split(prefix):
        x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
        x = (x.reshape(len(x), -1).astype(dtype) / dtype(255) - dtype(MEAN)) / dtype(STD)
        return x, y.astype(np.int64)
    return (*split("train"), *split("t10k"))


HEADLINE = {"architecture": "dendritic_simple", "n_neurons": 12, "n_dendrites": 6,
            "n_dendrite_inputs": 96, "soma_enabled": True, "strategy": "random",
            "synaptic_resampling": True, "percentage_resample": 0.25, "steps_to_resample": 128}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--subset", type=int, default=None, help="use the first N training images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-resampling", action="store_true")
    ap.add_argument("--data-dir", default=DATA_DIR)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    x_train, y_train, x_test, y_test = load_fashion_mnist(args.data_dir)
    if args.subset:
        x_train, y_train = x_train[:args.subset], y_train[:args.subset]
    config = {**HEADLINE, "synaptic_resampling": not args.no_resampling, "seed": args.seed}
    print(f"data: {len(x_train)} train, {len(x_test)} test, loaded in "
          f"{time.perf_counter() - t0:.2f} s; config {config}")

    def report(epoch, h):
        print(f"epoch {epoch + 1:2d}  train loss {h['train_loss'][-1]:.4f} "
              f"acc {h['train_accuracy'][-1]:.4f}  test loss {h['test_loss'][-1]:.4f} "
              f"acc {h['test_accuracy'][-1]:.4f}  swaps {h['swaps'][-1]:4d}  "
              f"{h['epoch_seconds'][-1]:.3f} s/epoch ({h['train_seconds'][-1]:.3f} s training)",
              flush=True)

    history = train(config, x_train, y_train, x_test, y_test, n_epochs=args.epochs,
                    callback=report)
    print(f"parameters {count_params(history['params'])}; mean "
          f"{np.mean(history['epoch_seconds']):.3f} s/epoch over {args.epochs} epochs; "
          f"final test accuracy {history['test_accuracy'][-1]:.4f}")


if __name__ == "__main__":
    main()
