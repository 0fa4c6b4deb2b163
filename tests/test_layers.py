"""DendriticLayer: the two lowerings agree, connectivity is valid, the soma is block-diagonal."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dendrax.nn.layers import DendriticLayer, init_connectivity, leaky_relu, row_keys
from dendrax.nn.lowerings import sparse_branch_matmul
from dendrax.spec import ModelShape



def _shape(n_neurons, n_dendrites, k, soma=True):
    return ModelShape("dendritic_simple", soma, n_neurons, n_dendrites, k, None, "random")

def _random_problem(seed=0, batch=16, branches=12, k=20, in_dim=64):
    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    x = jax.random.normal(keys[0], (batch, in_dim))
    kernel = jax.random.normal(keys[1], (branches, k))
    index = init_connectivity(keys[2], "random", branches, k, in_dim, (8, 8, 1))
    return x, kernel, index


def test_lowerings_agree_on_outputs_and_gradients():
    x, kernel, index = _random_problem()

    def loss(kernel, lowering):
        return jnp.sum(jnp.sin(sparse_branch_matmul(x, kernel, index, lowering)))

    out_g = sparse_branch_matmul(x, kernel, index, "gather")
    out_d = sparse_branch_matmul(x, kernel, index, "dense")
    np.testing.assert_allclose(out_g, out_d, rtol=1e-5, atol=1e-5)
    grad_g = jax.grad(loss)(kernel, "gather")
    grad_d = jax.grad(loss)(kernel, "dense")
    np.testing.assert_allclose(grad_g, grad_d, rtol=1e-5, atol=1e-5)


def test_lowerings_match_numpy_and_run_under_jit_and_vmap():
    x, kernel, index = _random_problem(seed=1)
    xn, kn, ixn = map(np.asarray, (x, kernel, index))
    expected = np.einsum("nbk,bk->nb", xn[:, ixn], kn)
    kernels = jnp.stack([kernel, 2 * kernel])
    for lowering in ("gather", "dense"):
        f = jax.jit(jax.vmap(lambda k: sparse_branch_matmul(x, k, index, lowering)))
        out = f(kernels)
        np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(out[1], 2 * expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("strategy,k", [("random", 30), ("local-receptive-fields", 30),
                                        ("local-receptive-fields", 700),
                                        ("fully-connected", 784)])
def test_connectivity_is_k_distinct_features(strategy, k):
    index = np.asarray(init_connectivity(jax.random.PRNGKey(3), strategy, 10, k, 784,
                                         (28, 28, 1)))
    assert index.shape == (10, k) and index.dtype == np.int32
    assert index.min() >= 0 and index.max() < 784
    for row in index:
        assert len(set(row.tolist())) == k


def test_local_receptive_fields_are_local():
    index = np.asarray(init_connectivity(jax.random.PRNGKey(4), "local-receptive-fields",
                                         50, 16, 784, (28, 28, 1)))
    rows, cols = index // 28, index % 28
    # std = sqrt(16) = 4 pixels: the spread of a field is far below that of random pixels.
    assert np.mean(rows.std(axis=1) + cols.std(axis=1)) < 12


def test_local_receptive_fields_hold_their_centre_pixel():
    """As the original: the field's centre pixel is always one of its connections (the
    first), even when no Gaussian draw lands on it; padded to more slots, the same field."""
    key, branches = jax.random.PRNGKey(6), 40
    index = np.asarray(init_connectivity(key, "local-receptive-fields", branches, 64, 784,
                                         (28, 28, 1)))
    keys = row_keys(key, np.arange(branches)[:, None])
    centres = [np.asarray(jax.random.randint(jax.random.split(k, 3)[0], (2,), 0,
                                             jnp.array([28, 28]))) for k in keys]
    np.testing.assert_array_equal(index[:, 0], [r * 28 + c for r, c in centres])
    padded = np.asarray(init_connectivity(key, "local-receptive-fields", branches, 80, 784,
                                          (28, 28, 1), k_used=64))
    np.testing.assert_array_equal(padded[:, :64], index)


def test_local_receptive_fields_on_colour_images_use_every_channel():
    index = np.asarray(init_connectivity(jax.random.PRNGKey(5), "local-receptive-fields",
                                         20, 40, 32 * 32 * 3, (32, 32, 3)))
    assert set(np.unique(index % 3).tolist()) == {0, 1, 2}
    assert index.max() < 3072


def test_layer_matches_numpy_with_block_diagonal_soma():
    layer = DendriticLayer(_shape(3, 4, 10))
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 50))
    variables = layer.init({"params": jax.random.PRNGKey(1),
                            "connectivity": jax.random.PRNGKey(2)}, x)
    assert set(variables) == {"params", "connectivity"}
    p = jax.tree_util.tree_map(np.asarray, variables["params"])
    index = np.asarray(variables["connectivity"]["index"])
    assert index.shape == (12, 10)
    xn = np.asarray(x)
    branch = np.einsum("nbk,bk->nb", xn[:, index], p["branch_kernel"]) + p["branch_bias"]
    branch = np.where(branch >= 0, branch, 0.1 * branch).reshape(5, 3, 4)
    soma = (branch * p["soma_kernel"]).sum(-1) + p["soma_bias"]
    expected = np.where(soma >= 0, soma, 0.1 * soma)
    np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-5, atol=1e-5)


def test_layer_without_soma_outputs_its_branches():
    layer = DendriticLayer(_shape(0, 5, 8, soma=False))
    x = jnp.ones((2, 30))
    variables = layer.init({"params": jax.random.PRNGKey(1),
                            "connectivity": jax.random.PRNGKey(2)}, x)
    assert layer.apply(variables, x).shape == (2, 5)
    assert set(variables["params"]) == {"branch_kernel", "branch_bias"}


def test_initialisation_follows_the_original():
    layer = DendriticLayer(_shape(40, 25, 100))
    variables = layer.init({"params": jax.random.PRNGKey(1),
                            "connectivity": jax.random.PRNGKey(2)}, jnp.ones((1, 784)))
    p = variables["params"]
    assert abs(float(jnp.std(p["branch_kernel"])) - np.sqrt(2 / 784)) < 0.002
    assert abs(float(jnp.std(p["soma_kernel"])) - np.sqrt(2 / 1000)) < 0.004
    assert float(jnp.abs(p["branch_bias"]).max()) == 0.0
    assert float(jnp.abs(p["soma_bias"]).max()) == 0.0


def test_leaky_relu_slope():
    np.testing.assert_allclose(leaky_relu(jnp.array([-2.0, 0.0, 3.0])), [-0.2, 0.0, 3.0])


@pytest.mark.parametrize("matmul_dtype,precision", [("float32", "HIGHEST"), ("tf32", "DEFAULT"),
                                                    ("bfloat16", "DEFAULT")])
def test_matmul_dtype_sets_the_precision(matmul_dtype, precision):
    """"float32" asks for true float32 products (no TF32 or bfloat16 passes on GPUs);
    "tf32" leaves the backend's default; the dendritic and the Linear products both."""
    from dendrax.nn.models import Linear

    x, kernel, index = _random_problem()
    for lowering in ("dense", "gather"):
        text = str(jax.make_jaxpr(lambda k: sparse_branch_matmul(x, k, index, lowering,
                                                                 matmul_dtype))(kernel))
        assert f"Precision.{precision}" in text or (precision == "DEFAULT"
                                                     and "HIGHEST" not in text), text
        assert ("bf16" in text) == (matmul_dtype == "bfloat16")
    linear = Linear(3, matmul_dtype)
    variables = linear.init(jax.random.PRNGKey(0), x)
    text = str(jax.make_jaxpr(lambda v: linear.apply(v, x))(variables))
    assert ("Precision.HIGHEST" in text) == (matmul_dtype == "float32")
    # On the CPU every choice computes the same function.
    np.testing.assert_allclose(sparse_branch_matmul(x, kernel, index, "dense", matmul_dtype),
                               sparse_branch_matmul(x, kernel, index, "dense", "float32"),
                               rtol=2e-2 if matmul_dtype == "bfloat16" else 1e-6, atol=5e-2)


def test_unknown_matmul_dtype_is_refused():
    from dendrax.errors import ConfigError
    from dendrax.spec import TrainSettings

    x, kernel, index = _random_problem()
    with pytest.raises(ValueError, match="float16"):
        sparse_branch_matmul(x, kernel, index, "dense", "float16")
    TrainSettings(matmul_dtype="tf32").validate()
    with pytest.raises(ConfigError, match="matmul_dtype='float16'.*float32, tf32, bfloat16"):
        TrainSettings(matmul_dtype="float16").validate()


def test_the_precision_table_has_one_entry_per_matmul_dtype_name():
    from dendrax import spec
    from dendrax.nn.lowerings import MATMUL_DTYPES

    assert tuple(MATMUL_DTYPES) == spec.MATMUL_DTYPES


def test_float64_products_need_x64_mode_rather_than_running_in_float32():
    if jax.config.jax_enable_x64:
        pytest.skip("x64 mode is on in this process")
    from conftest import prototype_data
    from dendrax.config import ModelConfig
    from dendrax.errors import ConfigError
    from dendrax.population import train_configs
    from dendrax.spec import TrainSettings

    x, kernel, index = _random_problem()
    with pytest.raises(ConfigError, match="matmul_dtype='float64' needs JAX's x64 mode"):
        sparse_branch_matmul(x, kernel, index, "dense", "float64")
    # A search says so before it plans or compiles anything.
    data = prototype_data(n_train=32, n_val=8, n_test=8, in_dim=16, image_shape=(4, 4, 1))
    with pytest.raises(ConfigError, match="needs JAX's x64 mode"):
        train_configs([ModelConfig(n_dendrite_inputs=4)], data,
                      TrainSettings(n_epochs=1, batch_size=8, matmul_dtype="float64"), log=None)


def test_every_lowering_is_one_entry_of_the_table_and_an_unknown_one_is_refused():
    from dendrax.nn import lowerings
    from dendrax.spec import LOWERINGS

    x, kernel, index = _random_problem(seed=2)
    for name, entry in LOWERINGS.items():
        assert callable(lowerings._function(entry.matmul)), name
    with pytest.raises(ValueError, match="unknown lowering 'blocked'; choose one of gather, "
                                         "dense, sparse"):
        sparse_branch_matmul(x, kernel, index, "blocked")

