"""Where a population step's time goes on a GPU: the dendritic layer's lowerings in
isolation, at the headline shape (72 branches × 96 inputs, 784 features, batch 256), for
one shared batch and P models — forward plus the gradient with respect to the weights.

    python benchmarks/gpu_profile.py --populations 512,4096
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp


def variants():
    def dense(x, w, idx, dtype, mode):
        branches = w.shape[0]
        rows = jnp.arange(branches)[:, None]
        zeros = jnp.zeros((branches, x.shape[-1]), dtype)
        if mode == "add":
            d = zeros.at[rows, idx].add(w.astype(dtype))
        else:
            d = zeros.at[rows, idx].set(w.astype(dtype), unique_indices=True)
        return jnp.dot(x.astype(dtype), d.T, preferred_element_type=jnp.float32)

    def gather(x, w, idx, dtype, mode):
        g = jnp.take(x.T, idx, axis=0)
        return jnp.einsum("bkn,bk->nb", g.astype(dtype), w.astype(dtype),
                          preferred_element_type=jnp.float32)

    return {"dense-add": (dense, "add"), "dense-set-unique": (dense, "set"),
            "gather": (gather, None)}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--populations", default="512,4096")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--whole-population", type=int, default=4096)
    args = parser.parse_args(argv)
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (256, 784))
    print(jax.devices()[0].device_kind, jax.__version__)
    for p in map(int, args.populations.split(",")):
        w = jax.random.normal(key, (p, 72, 96))
        idx = jax.vmap(lambda k: jax.vmap(lambda kk: jax.random.permutation(kk, 784)[:96])(
            jax.random.split(k, 72)))(jax.random.split(key, p)).astype(jnp.int32)
        for name, (fn, mode) in variants().items():
            for dtype in (jnp.float32, jnp.bfloat16):
                if name == "gather" and p > 512:
                    continue

                def loss(w):
                    out = jax.vmap(lambda wi, ii: fn(x, wi, ii, dtype, mode))(w, idx)
                    return jnp.sum(out * out)

                step = jax.jit(jax.value_and_grad(loss))
                jax.block_until_ready(step(w))
                t0 = time.perf_counter()
                for _ in range(args.repeats):
                    r = step(w)
                jax.block_until_ready(r)
                ms = (time.perf_counter() - t0) / args.repeats * 1e3
                flops = 2 * 2 * 256 * 784 * 72 * p if name != "gather" else 2 * 2 * 256 * 72 * 96 * p
                print(f"layer P={p:5d} {name:17s} {jnp.dtype(dtype).name:8s} {ms:8.3f} ms/step "
                      f"{flops / ms / 1e9:8.1f} TFLOP/s; alone it would allow "
                      f"{p / (ms * 1e-3 * 210):,.0f} model-epochs/s", flush=True)
    if args.data_dir:
        whole_epochs(args)


def whole_epochs(args):
    """Epoch time of the real trainer with its parts switched off one at a time."""
    import dataclasses

    from dendrax.config import ModelConfig
    from dendrax.data import load_dataset
    from dendrax.population import train_population
    from dendrax.spec import TrainSettings

    data = load_dataset("fashion-mnist", data_dir=args.data_dir, sources=("dir",))
    small_eval = dataclasses.replace(data, x_val=data.x_val[:256], y_val=data.y_val[:256],
                                     x_test=data.x_test[:256], y_test=data.y_test[:256])
    p = args.whole_population
    base = ModelConfig(n_neurons=12, n_dendrites=6, n_dendrite_inputs=96)
    cases = [("full", data, base, {}),
             ("eval on 512 not 16,000", small_eval, base, {}),
             ("eval small, no resampling", small_eval, base.replace(synaptic_resampling=False), {}),
             ("eval small, no resampling, no divergence check", small_eval,
              base.replace(synaptic_resampling=False), {"divergence_threshold": None}),
             ("eval small, gather", small_eval, base, {"lowering": "gather"})]
    for name, d, config, extra in cases:
        if extra.get("lowering") == "gather" and p > 512:
            continue
        settings = TrainSettings(n_epochs=3, data_order="shared", matmul_dtype="bfloat16",
                                 **{"lowering": "dense", **extra})
        configs = [config.replace(seed=s) for s in range(p)]
        t = train_population(configs, d, settings).timings
        per_epoch = t.run / 3
        print(f"epoch P={p} {name:48s} {per_epoch:7.3f} s/epoch = {p / per_epoch:8,.0f} "
              f"model-epochs/s (compile {t.compile:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
