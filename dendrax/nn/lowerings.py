"""The lowerings of the dendritic contraction, and the one decision of which one runs.

For x of shape (batch, in_dim) and a kernel and an index of shape (branches, k):

    out[n, b] = Σ_j kernel[b, j] · x[n, index[b, j]]

Every lowering computes this same function, with the same gradients with respect to
``kernel`` and ``x``. The table of lowerings is :data:`dendrax.spec.LOWERINGS` (pure Python,
so the planner and the memory model read it too); this module holds their JAX functions,
the precision of each ``matmul_dtype``, and :func:`resolve_lowering`, which turns a
requested lowering into the one that runs before anything is traced. A program's
:class:`dendrax.spec.ProgramSpec` holds that resolved name, so the spec, the planner's cost
and the memory estimate all name what XLA runs; a layer asked for a lowering that cannot
run raises instead of running another one.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from typing import Optional

import jax
import jax.numpy as jnp

from dendrax.errors import ConfigError
from dendrax.nn import sparse_cpu
from dendrax.spec import LOWERINGS, lowering_named

# matmul_dtype → (operand dtype, matmul precision), one entry per name of
# dendrax.spec.MATMUL_DTYPES. "float32" is true float32 on every backend (HIGHEST: no TF32
# or bfloat16 passes on GPUs and TPUs); "tf32" is float32 at the backend's default
# precision (TF32 on Ampere and later GPUs); "bfloat16" bfloat16 operands with float32
# accumulation; "float64" float64 operands (JAX's x64 mode only).
MATMUL_DTYPES = {"float32": ("float32", jax.lax.Precision.HIGHEST),
                 "tf32": ("float32", jax.lax.Precision.DEFAULT),
                 "bfloat16": ("bfloat16", jax.lax.Precision.DEFAULT),
                 "float64": ("float64", jax.lax.Precision.HIGHEST)}


def matmul_settings(matmul_dtype: str):
    """(operand dtype, accumulation dtype, precision) for a ``matmul_dtype`` name.

    Raises ConfigError for an unknown name, and for "float64" outside JAX's x64 mode
    (JAX would compute in float32 and say so only in a warning).
    """
    if matmul_dtype not in MATMUL_DTYPES:
        raise ConfigError(f"matmul_dtype={matmul_dtype!r}; choose one of "
                          f"{', '.join(MATMUL_DTYPES)}")
    name, precision = MATMUL_DTYPES[matmul_dtype]
    dtype = jnp.dtype(name)
    if dtype.itemsize > 4 and not jax.config.jax_enable_x64:
        raise ConfigError(f"matmul_dtype={matmul_dtype!r} needs JAX's x64 mode "
                          f"(jax.config.update('jax_enable_x64', True))")
    return dtype, jnp.promote_types(dtype, jnp.float32), precision


# ---- the three lowerings (dendrax.spec.LOWERINGS names them) --------------------------

def gather_matmul(x, kernel, index, dtype, accumulate, precision):
    """Gather the k connected inputs of every branch, then contract over them."""
    # Gather rows of xᵀ: each row is one feature over the whole batch, so the gather copies
    # contiguous runs instead of single scattered floats (docs/benchmarks.md, "Lowerings").
    gathered = jnp.take(x.T, index, axis=0)  # (branches, k, batch)
    return jnp.einsum("bkn,bk->nb", gathered.astype(dtype), kernel.astype(dtype),
                      precision=precision, preferred_element_type=accumulate)


def dense_matmul(x, kernel, index, dtype, accumulate, precision):
    """Scatter the kernel into a (branches, in_dim) matrix, then one matrix product."""
    branches, _ = kernel.shape
    rows = jnp.arange(branches)[:, None]
    # Scatter in the operand dtype: with bfloat16 the (branches, in_dim) matrix, the largest
    # array of a step, moves half the bytes. Adding (not setting) keeps padded slots, whose
    # weight is 0, harmless whatever feature they point at.
    dense = jnp.zeros((branches, x.shape[-1]), dtype).at[rows, index].add(kernel.astype(dtype))
    return jnp.dot(x.astype(dtype), dense.T, precision=precision,
                   preferred_element_type=accumulate)


def sparse_matmul(x, kernel, index, dtype, accumulate, precision):
    """The Numba kernel over the k connected inputs only (dendrax.nn.sparse_cpu), in float32."""
    sparse_cpu.load()
    if dtype != jnp.float32:
        # The kernel computes in float32; rounding its inputs first gives the products of
        # the requested precision, as the other lowerings' float32 accumulation does.
        x = x.astype(dtype)
        kernel = kernel.astype(dtype)
    return sparse_cpu.sparse_matmul(x, kernel, index)


def sparse_unavailable(backend: str, matmul_dtype: str) -> Optional[str]:
    """Why the "sparse" kernel cannot run on ``backend`` for ``matmul_dtype``, or None: it is
    a CPU kernel, it computes in float32, and it needs Numba with OpenMP or TBB."""
    if backend != "cpu":
        return f"it is a CPU kernel and the backend is {backend}"
    if jnp.dtype(MATMUL_DTYPES[matmul_dtype][0]).itemsize > 4:
        return f"it computes in float32 and matmul_dtype={matmul_dtype!r} asks for more"
    if not sparse_cpu.kernel_installed():
        return (f"it needs Numba with OpenMP or TBB ({sparse_cpu.INSTALL_HINT}, and pip "
                f"install tbb where Numba finds no OpenMP)")
    return None


# ---- which lowering runs ---------------------------------------------------------------

@functools.cache
def _function(path: str):
    """The function named ``"module:function"`` (the table keeps names, not functions)."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def unavailable(lowering: str, backend: str, matmul_dtype: str) -> Optional[str]:
    """Why ``lowering`` cannot run on ``backend`` for ``matmul_dtype``, or None when it can
    (ValueError for a name that is no lowering)."""
    check = lowering_named(lowering).unavailable
    if check is None or matmul_dtype not in MATMUL_DTYPES:
        return None  # runs everywhere; an unknown matmul_dtype is matmul_settings' error
    return _function(check)(backend, matmul_dtype)


def resolve_lowering(lowering: str, backend: Optional[str] = None,
                     matmul_dtype: str = "float32") -> str:
    """The lowering that runs for a requested one (a name of :data:`dendrax.spec.LOWERINGS`,
    or "auto"), on ``backend`` (default: JAX's) with ``matmul_dtype`` products.

    - "auto": the first lowering that names this backend in its ``auto_on`` and can run
      here ("sparse" on the CPU when its kernel can run), otherwise "dense".
    - A lowering that can run here: itself.
    - One that cannot ("sparse" on a GPU, without Numba, or for float64 products): "dense",
      which runs everywhere, with a warning that names why. It is a warning, not an error,
      because every lowering computes the same function: a search written for one machine
      still runs on another, and what it ran is the resolved name in its program spec.
    """
    backend = backend or jax.default_backend()
    if lowering == "auto":
        for name, entry in LOWERINGS.items():
            if backend in entry.auto_on and unavailable(name, backend, matmul_dtype) is None:
                return name
        return "dense"
    reason = unavailable(lowering, backend, matmul_dtype)
    if reason is None:
        return lowering
    warnings.warn(f"lowering={lowering!r} cannot run here: {reason}; training with "
                  f"lowering='dense', which computes the same function", stacklevel=2)
    return "dense"


def sparse_branch_matmul(x: jax.Array, kernel: jax.Array, index: jax.Array,
                         lowering: str = "dense", matmul_dtype: str = "float32") -> jax.Array:
    """out[n, b] = Σ_j kernel[b, j] · x[n, index[b, j]]  for x of shape (batch, in_dim).

    "gather" reads x[:, index] and contracts over j; "dense" scatters the kernel into a
    (branches, in_dim) matrix and does one matrix product; "sparse" (CPU) runs a Numba
    kernel over the k connected inputs only (dendrax.nn.sparse_cpu). All give the same
    function and the same gradients with respect to ``kernel`` and ``x``. ``lowering`` is a
    resolved one (:func:`resolve_lowering`): a lowering that cannot run here raises
    ValueError naming why, never runs another. ``matmul_dtype`` names the operand dtype and
    precision (:data:`MATMUL_DTYPES`).
    """
    dtype, accumulate, precision = matmul_settings(matmul_dtype)
    reason = unavailable(lowering, jax.default_backend(), matmul_dtype)
    if reason is not None:
        raise ValueError(f"lowering={lowering!r} cannot run here: {reason}; "
                         f"resolve_lowering({lowering!r}) gives the lowering that can")
    return _function(lowering_named(lowering).matmul)(x, kernel, index, dtype, accumulate,
                                                       precision)
