"""The "sparse" lowering on CPU: a Numba kernel that XLA calls in place, without copies.

For x of shape (batch, in_dim), a kernel w and an index of shape (branches, k):

    forward    out[n, b] = Σ_j w[b, j] · x[n, index[b, j]]
    weights    dw[b, j]  = Σ_n g[n, b] · x[n, index[b, j]]
    inputs     dx[n, d]  = Σ_{(b, j): index[b, j] = d} g[n, b] · w[b, j]

The forward and the weight gradient read only the k connected inputs of each branch
(k · batch multiply-adds per branch, against in_dim · batch for the dense lowering), in a
Numba kernel run in parallel over model × branch. The input gradient, needed only when x
is not data, is an ordinary XLA expression (a scatter of the kernel, then one matrix
product), so that XLA removes it when nobody asks for it.

The kernels (dendrax.nn.sparse_kernels) are typed XLA FFI handlers (``jax.ffi``, API
version 1): XLA passes a call frame with pointers to its own buffers, so nothing is copied
and no Python runs during a step. They are Numba ``cfunc``s, compiled by Numba's own LLVM
on first use (and cached on disk), so no C compiler is needed. x reaches the kernel
feature-major and the output leaves it branch-major (FFI layouts): each connection then
reads one contiguous row of the batch, and XLA places the transposes where they cost least.

Under ``vmap`` (a population) the calls batch with ``expand_dims``: an argument that is not
batched gets a leading axis of size 1 and the kernel broadcasts it, so a population is one
call over model × branch, and a batch shared by all models is never copied per model.

Numba is an optional dependency (``pip install 'dendrax[cpu-kernel]'``; where Numba finds
no OpenMP, ``pip install tbb`` too); this module imports it only in :func:`load`. Numba runs
the kernels on its own thread pool (OpenMP or TBB), beside XLA's.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import threading

import jax
import jax.numpy as jnp

FORWARD_TARGET = "dendrax_sparse_forward"
WEIGHT_GRAD_TARGET = "dendrax_sparse_weight_grad"
INSTALL_HINT = "pip install 'dendrax[cpu-kernel]'"


def _capsule(address: int):
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)
    return new(address, b"xla._CUSTOM_CALL_TARGET", None)


_REGISTER_LOCK = threading.Lock()  # programs may be traced on a background thread


@functools.cache
def _register() -> dict:
    from dendrax.nn import sparse_kernels  # compiles, or loads Numba's disk cache

    handlers = {FORWARD_TARGET: sparse_kernels.forward_handler,
                WEIGHT_GRAD_TARGET: sparse_kernels.weight_grad_handler}
    for name, handler in handlers.items():
        jax.ffi.register_ffi_target(name, _capsule(handler.address), platform="cpu",
                                    api_version=1)
    return handlers  # kept alive: XLA holds raw pointers into their code


def kernel_installed() -> bool:
    """Whether Numba and a thread-safe Numba threading layer (OpenMP or TBB) can be loaded,
    without compiling anything. Numba's fallback layer, workqueue, aborts the process when
    two threads launch kernels at once, as XLA's threads may (several CPU devices)."""
    try:
        import numba
    except ImportError:
        return False
    if numba.config.THREADING_LAYER not in ("default", "safe", "threadsafe", "omp", "tbb"):
        return False
    for layer in ("omppool", "tbbpool"):
        try:
            importlib.import_module(f"numba.np.ufunc.{layer}")
            return True
        except ImportError:
            continue
    return False


def load() -> None:
    """Compile and register the kernels (once). Raises ImportError naming the pip extra if
    Numba or its thread-safe threading layer is missing (checked on every call, so that a
    test can hide Numba)."""
    if not kernel_installed():
        raise ImportError(f"the sparse CPU kernel needs Numba with its OpenMP or TBB "
                          f"threading layer: {INSTALL_HINT} (and pip install tbb where "
                          f"Numba finds no OpenMP)")
    with _REGISTER_LOCK:
        _register()


# ---- the JAX side -------------------------------------------------------------------
#
# FFI layouts are major-to-minor: (1, 0) asks XLA to hand over a (batch, in_dim) array as
# in_dim rows of batch floats, and to accept the (batch, branches) output the same way.

_TRANSPOSED = (1, 0)


def _call_forward(x, kernel, index):
    batch, branches = x.shape[0], kernel.shape[0]
    call = jax.ffi.ffi_call(
        FORWARD_TARGET, jax.ShapeDtypeStruct((batch, branches), jnp.float32),
        vmap_method="expand_dims", input_layouts=[_TRANSPOSED, None, None],
        output_layouts=_TRANSPOSED)
    return call(x, index, kernel)


def _call_weight_grad(x, index, g):
    call = jax.ffi.ffi_call(
        WEIGHT_GRAD_TARGET, jax.ShapeDtypeStruct(index.shape, jnp.float32),
        vmap_method="expand_dims", input_layouts=[_TRANSPOSED, None, _TRANSPOSED])
    return call(x, index, g)


def sparse_matmul(x: jax.Array, kernel: jax.Array, index: jax.Array) -> jax.Array:
    """out[n, b] = Σ_j kernel[b, j] · x[n, index[b, j]] in float32 (see module docstring).

    x: (batch, in_dim); kernel, index: (branches, k). Call :func:`load` first. Gradients
    flow to x and kernel (in their own dtypes); index is an integer array.
    """
    if x.ndim != 2 or kernel.ndim != 2 or kernel.shape != index.shape:
        raise ValueError(f"sparse lowering: x must be (batch, in_dim) and kernel, index "
                         f"(branches, k); got {x.shape}, {kernel.shape}, {index.shape}")
    return _sparse_matmul_f32(x.astype(jnp.float32), kernel.astype(jnp.float32),
                              index.astype(jnp.int32))


@jax.custom_vjp
def _sparse_matmul_f32(x, kernel, index):
    return _call_forward(x, kernel, index)


def _forward_rule(x, kernel, index):
    return _call_forward(x, kernel, index), (x, kernel, index)


def _backward_rule(residuals, g):
    x, kernel, index = residuals
    dw = _call_weight_grad(x, index, g)
    # dx by XLA: scatter the small kernel into (branches, in_dim), one product. Dead code,
    # and removed by XLA, when x is data.
    rows = jnp.arange(kernel.shape[0])[:, None]
    dense = jnp.zeros((kernel.shape[0], x.shape[1]), jnp.float32).at[rows, index].add(kernel)
    return g @ dense, dw, None


_sparse_matmul_f32.defvjp(_forward_rule, _backward_rule)
