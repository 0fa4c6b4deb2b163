"""The "sparse" CPU lowering (a Numba kernel behind an XLA FFI call) equals the dense and
gather lowerings and a NumPy reference, under jit, vmap (both batch orders), padding and
rewiring; a trained population matches dense training; where it cannot run, an explicit
"sparse" resolves to "dense" with a notice, and the layer refuses it."""

import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("numba")

from dendrax import population as train  # noqa: E402
from dendrax.nn.layers import DendriticLayer, init_connectivity  # noqa: E402
from dendrax.nn.lowerings import resolve_lowering, sparse_branch_matmul  # noqa: E402
from dendrax.nn import sparse_cpu  # noqa: E402
from dendrax.population import compile as compile_module  # noqa: E402
from dendrax.config import ModelConfig
from dendrax.spec import ModelShape, ModelSizes, TrainSettings
from conftest import SMALL_DATA  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)


def _problem(seed=0, models=None, batch=16, branches=12, k=20, in_dim=64):
    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    lead = () if models is None else (models,)
    x = jax.random.normal(keys[0], (batch, in_dim))
    kernel = jax.random.normal(keys[1], lead + (branches, k))
    index_keys = jax.random.split(keys[2], models or 1)
    index = jnp.stack([init_connectivity(kk, "random", branches, k, in_dim, (8, 8, 1))
                       for kk in index_keys])
    return x, kernel, index if models else index[0]


def _numpy_forward(x, kernel, index):
    x, kernel, index = map(np.asarray, (x, kernel, index))
    return np.einsum("nbk,bk->nb", x[:, index], kernel)


def _numpy_grads(x, kernel, index, g):
    """dW[b, j] = Σ_n g[n, b] x[n, index[b, j]];  dx[n, d] = Σ_{index[b, j] = d} g[n, b] w[b, j]."""
    x, kernel, index, g = map(np.asarray, (x, kernel, index, g))
    dw = np.einsum("nb,nbk->bk", g, x[:, index])
    dx = np.zeros_like(x)
    for b in range(index.shape[0]):
        for j in range(index.shape[1]):
            dx[:, index[b, j]] += g[:, b] * kernel[b, j]
    return dx, dw


def _loss(x, kernel, index, lowering):
    # sin makes the cotangent depend on the output, so a wrong forward shows in the grads.
    return jnp.sum(jnp.sin(sparse_branch_matmul(x, kernel, index, lowering)))


def test_matches_numpy_dense_and_gather_under_jit():
    x, kernel, index = _problem()
    out = jax.jit(lambda x, k: sparse_branch_matmul(x, k, index, "sparse"))(x, kernel)
    np.testing.assert_allclose(out, _numpy_forward(x, kernel, index), **TOL)
    g = np.cos(_numpy_forward(x, kernel, index))
    want_dx, want_dw = _numpy_grads(x, kernel, index, g)
    grads = {lowering: jax.jit(jax.grad(_loss, (0, 1)), static_argnums=3)(x, kernel, index,
                                                                            lowering)
             for lowering in ("sparse", "dense", "gather")}
    for lowering, (dx, dw) in grads.items():
        np.testing.assert_allclose(dw, want_dw, rtol=1e-4, atol=1e-4, err_msg=lowering)
        np.testing.assert_allclose(dx, want_dx, rtol=1e-4, atol=1e-4, err_msg=lowering)
    np.testing.assert_allclose(grads["sparse"][1], grads["dense"][1], **TOL)
    np.testing.assert_allclose(grads["sparse"][0], grads["dense"][0], **TOL)


def _ffi_calls(compiled_text, target):
    return [line for line in compiled_text.splitlines()
            if "custom-call(" in line and f'custom_call_target="{target}"' in line]


@pytest.mark.parametrize("order", ["shared", "own"])
def test_vmap_is_one_call_per_population_and_matches_dense(order):
    """Shared order: x unbatched, kernel and index batched; own order: all batched. Either
    way a population is one forward and one weight-gradient call, and a shared x is
    passed once (leading axis 1), never copied per model."""
    models = 5
    x, kernel, index = _problem(seed=1, models=models)
    own = jax.random.normal(jax.random.PRNGKey(9), (models,) + x.shape)
    xs = x if order == "shared" else own
    x_axis = None if order == "shared" else 0

    def run(lowering):
        f = jax.vmap(jax.value_and_grad(_loss, (0, 1)), (x_axis, 0, 0, None))
        return jax.jit(f, static_argnums=3)(xs, kernel, index, lowering)

    (value, (dx, dw)), (value_d, (dx_d, dw_d)) = run("sparse"), run("dense")
    # float32 sums in another order: agreement to float32 rounding of sums of ~20 terms.
    np.testing.assert_allclose(value, value_d, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(dw, dw_d, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, dx_d, rtol=1e-4, atol=1e-4)
    for m in range(models):
        xm = xs if order == "shared" else xs[m]
        np.testing.assert_allclose(
            sparse_branch_matmul(xm, kernel[m], index[m], "sparse"),
            _numpy_forward(xm, kernel[m], index[m]), **TOL)

    f = jax.vmap(jax.grad(_loss, 1), (x_axis, 0, 0, None))
    text = jax.jit(f, static_argnums=3).lower(xs, kernel, index, "sparse").compile().as_text()
    forward = _ffi_calls(text, sparse_cpu.FORWARD_TARGET)
    weights = _ffi_calls(text, sparse_cpu.WEIGHT_GRAD_TARGET)
    assert len(forward) == 1 and len(weights) == 1
    x_rows = 1 if order == "shared" else models
    assert f"f32[{x_rows},16,64]" in forward[0].split("custom-call(")[1]
    assert "scatter" not in text  # dx (a scatter of the kernel) is dead code for data x


def test_padded_layer_matches_dense_outputs_and_gradients():
    """A layer of static sizes 4×3×10 holding a 3×2×6 model: padded slots (weight 0, any
    feature) change nothing, and get no gradient, with either lowering."""
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 64))
    dims = ModelSizes(n_neurons=3, n_dendrites=2, k=6, hidden=0)
    shape = ModelShape(architecture="dendritic_simple", has_soma=True, n_neurons=4,
                       n_dendrites=3, k=10, hidden=None, strategy="random")

    def layer(lowering):
        return DendriticLayer(shape=shape, image_shape=(8, 8, 1), lowering=lowering)

    variables = layer("dense").init({"params": jax.random.PRNGKey(1),
                                     "connectivity": jax.random.PRNGKey(2)}, x, dims)

    def loss(params, lowering):
        out = layer(lowering).apply({**variables, "params": params}, x, dims)
        return jnp.sum(jnp.sin(out))

    results = {lowering: jax.jit(jax.value_and_grad(loss), static_argnums=1)(
        variables["params"], lowering) for lowering in ("sparse", "dense")}
    np.testing.assert_allclose(results["sparse"][0], results["dense"][0], **TOL)
    flat_s = jax.tree_util.tree_leaves_with_path(results["sparse"][1])
    flat_d = jax.tree_util.tree_leaves(results["dense"][1])
    for (path, got), want in zip(flat_s, flat_d):
        np.testing.assert_allclose(got, want, **TOL, err_msg=jax.tree_util.keystr(path))
    kernel_grad = np.asarray(results["sparse"][1]["branch_kernel"])
    assert np.all(kernel_grad[:, 6:] == 0) and np.any(kernel_grad[:, :6] != 0)


def test_rewired_connectivity_and_out_of_range_slots():
    """New indices (as after rewiring) are read afresh by the compiled program; an index
    outside the input, like the dense scatter, contributes nothing."""
    x, kernel, index = _problem(seed=2)
    f = jax.jit(lambda k, i: sparse_branch_matmul(x, k, i, "sparse"))
    f(kernel, index)
    rewired = jnp.roll(index, 3, axis=1).at[0, 0].set((index[0, 0] + 1) % 64)
    np.testing.assert_allclose(f(kernel, rewired), _numpy_forward(x, kernel, rewired), **TOL)
    outside = index.at[1, 2].set(64)
    want = sparse_branch_matmul(x, kernel, outside, "dense")
    np.testing.assert_allclose(f(kernel, outside), want, **TOL)


def test_bfloat16_products_match_dense():
    x, kernel, index = _problem(seed=3)
    got = sparse_branch_matmul(x, kernel, index, "sparse", "bfloat16")
    want = sparse_branch_matmul(x, kernel, index, "dense", "bfloat16")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert np.abs(np.asarray(got) - _numpy_forward(x, kernel, index)).max() > 1e-4


DATA = SMALL_DATA


@pytest.mark.slow  # two population compiles: about a minute each on a busy 2-core CPU
@pytest.mark.parametrize("order", ["shared", "own"])
def test_population_trained_sparse_equals_dense_after_20_steps(order):
    """Two models, 20 Adam steps with rewiring every 4 steps: parameters, connectivity and
    metrics of the sparse lowering equal those of the dense lowering."""
    configs = [ModelConfig(n_neurons=3, n_dendrites=4, n_dendrite_inputs=10, seed=s,
                           steps_to_resample=4, percentage_resample=0.25) for s in (5, 6)]
    settings = TrainSettings(n_epochs=1, batch_size=32, data_order=order)  # 20 steps
    results = {lowering: train.train_population(configs, DATA, settings, lowering=lowering)
               for lowering in ("sparse", "dense")}
    (hist_s, state_s, _), (hist_d, state_d, _) = results["sparse"], results["dense"]
    assert np.asarray(state_s.step).tolist() == [20, 20]
    assert int(np.sum(hist_s["swaps"])) > 0  # the rewiring did happen
    np.testing.assert_array_equal(state_s.connectivity["dendrites"]["index"],
                                  state_d.connectivity["dendrites"]["index"])
    for (path, got), want in zip(jax.tree_util.tree_leaves_with_path(state_s.params),
                                 jax.tree_util.tree_leaves(state_d.params)):
        np.testing.assert_allclose(got, want, **TOL, err_msg=jax.tree_util.keystr(path))
    np.testing.assert_allclose(hist_s["train_loss"], hist_d["train_loss"], rtol=1e-5)


def test_without_numba_an_explicit_sparse_resolves_to_dense_and_the_layer_refuses_it(
        monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises
    with pytest.warns(UserWarning, match=r"lowering='sparse' cannot run here.*"
                                         r"dendrax\[cpu-kernel\].*lowering='dense'"):
        assert train.resolve_lowering("sparse", "cpu") == "dense"
    assert train.resolve_lowering("auto", "cpu") == "dense"
    # The program spec names what XLA runs, so the planner and the memory model cost it.
    settings = TrainSettings(n_epochs=1, batch_size=32, lowering="sparse")
    with pytest.warns(UserWarning, match="cannot run here"):
        spec = compile_module.program_spec(ModelConfig(n_dendrite_inputs=10).shape(64), DATA,
                                           settings, members=1, padded=False, n_devices=1)
    assert spec.lowering == "dense"
    x, kernel, index = _problem(seed=4)
    with pytest.raises(ValueError, match=r"lowering='sparse' cannot run here.*cpu-kernel"):
        sparse_branch_matmul(x, kernel, index, "sparse")


def test_an_explicit_sparse_on_another_backend_or_for_float64_resolves_to_dense():
    with pytest.warns(UserWarning, match="CPU kernel and the backend is gpu"):
        assert resolve_lowering("sparse", "gpu") == "dense"
    with pytest.warns(UserWarning, match="computes in float32"):
        assert resolve_lowering("sparse", "cpu", "float64") == "dense"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" asked for no lowering in particular
        assert resolve_lowering("auto", "cpu", "float64") == "dense"
    for lowering in ("dense", "gather"):
        assert resolve_lowering(lowering, "gpu", "float64") == lowering
    with pytest.raises(ValueError, match="unknown lowering"):
        resolve_lowering("blocked", "cpu")


def test_the_layer_refuses_sparse_for_float64_products():
    try:  # older JAX
        from jax.experimental import enable_x64
    except ImportError:  # JAX >= 0.8: a configuration context manager
        enable_x64 = jax.enable_x64
    x, kernel, index = _problem(seed=4)
    with enable_x64():
        with pytest.raises(ValueError, match="computes in float32"):
            sparse_branch_matmul(x, kernel, index, "sparse", "float64")


def test_auto_picks_sparse_on_cpu_only():
    assert train.resolve_lowering("auto", "cpu") == "sparse"
    assert train.resolve_lowering("auto", "gpu") == "dense"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no notice when the kernel can run
        sparse_branch_matmul(*_problem(seed=5), "sparse")


def test_kernel_rejects_wrong_dtypes_with_an_xla_error():
    """Called directly with int32 data, the handler returns an XLA error, not garbage."""
    sparse_cpu.load()
    x, kernel, index = _problem(seed=6)
    call = jax.ffi.ffi_call(sparse_cpu.FORWARD_TARGET,
                            jax.ShapeDtypeStruct((16, 12), jnp.float32))
    with pytest.raises(Exception, match="unexpected dtypes or shapes"):
        jax.block_until_ready(call(x.astype(jnp.int32), index, kernel))


@pytest.mark.slow  # a fresh process loads Numba and JAX
def test_a_fresh_process_runs_the_kernel_from_numbas_disk_cache():
    """The second process loads the compiled kernels from Numba's cache (the first may
    compile them): both must run them, which needs Numba's parallel runtime started."""
    import subprocess
    from pathlib import Path

    script = ("import jax.numpy as jnp\n"
              "from dendrax.nn.layers import sparse_branch_matmul\n"
              "out = sparse_branch_matmul(jnp.ones((4, 8)), jnp.ones((2, 3)),\n"
              "                           jnp.zeros((2, 3), jnp.int32), 'sparse')\n"
              "print(float(out.sum()))\n")
    root = Path(__file__).resolve().parents[1]
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().splitlines()[-1] == "24.0"


def test_without_a_thread_safe_threading_layer_auto_keeps_dense(monkeypatch):
    """Numba's workqueue layer aborts on concurrent launches: no sparse kernel then."""
    import numba

    monkeypatch.setattr(numba.config, "THREADING_LAYER", "workqueue")
    assert not sparse_cpu.kernel_installed()
    assert train.resolve_lowering("auto", "cpu") == "dense"
    with pytest.raises(ImportError, match="OpenMP or TBB"):
        sparse_cpu.load()
