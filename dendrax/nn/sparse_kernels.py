"""Numba kernels of the "sparse" CPU lowering, as typed XLA FFI handlers.

Imports Numba; only :func:`dendrax.nn.sparse_cpu.load` imports this module. Each handler
is a C function ``XLA_FFI_Error* handler(XLA_FFI_CallFrame*)`` (XLA FFI API version 1),
compiled by Numba's LLVM (no C compiler) and cached on disk. XLA passes pointers to its
own buffers, so nothing is copied.

The C structs are read as arrays of 64-bit words, with the offsets of
xla/ffi/api/c_api.h (API 0.x, 64-bit machines); see the constants below. A handler
answers XLA's metadata query, does nothing at the stages before "execute", checks the
dtypes and shapes it gets, and returns NULL on success or an XLA error otherwise.

Shapes (``…`` are leading model axes added by ``vmap``; an argument whose model axis has
size 1 is shared by every model):

    forward:      x (…, batch, in_dim) stored feature-major, index (…, branches, k) int32,
                  w (…, branches, k)  →  out (…, batch, branches) stored branch-major
    weight_grad:  x as above, index as above, g (…, batch, branches) branch-major
                  →  dw (…, branches, k)
"""

from __future__ import annotations

import os

# OpenMP threads that spin-wait between parallel regions (libgomp's default) stall when
# the cores are shared, with XLA's own threads or other processes (docs/benchmarks.md,
# "The sparse CPU lowering"). Sleeping threads cost a wake-up per call instead. Read once,
# when Numba first loads OpenMP; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba import types  # noqa: E402
from numba.core import cgutils  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

# Start Numba's parallel runtime now: a parallel kernel loaded from Numba's disk cache
# links against its scheduler (allocate_sched, …), which only a fresh compile would load.
numba.get_num_threads()

# XLA_FFI_CallFrame {struct_size, extension_start, api, ctx, stage, args {struct_size,
# extension_start, size, types, args}, rets {same}, attrs {…}, future}: word offsets.
FRAME_WORDS = 22
FRAME_EXTENSION, FRAME_API, FRAME_STAGE = 1, 2, 4
FRAME_N_ARGS, FRAME_ARGS, FRAME_N_RETS, FRAME_RETS = 7, 9, 12, 14
# XLA_FFI_Buffer {struct_size, extension_start, dtype, data, rank, dims}.
BUFFER_DTYPE, BUFFER_DATA, BUFFER_RANK, BUFFER_DIMS = 2, 3, 4, 5
# XLA_FFI_Api {struct_size, extension_start, api_version {3 words}, internal_api,
# XLA_FFI_Error_Create, …}.
API_VERSION_WORD, API_ERROR_CREATE = 4, 6
STAGE_EXECUTE = 3
EXTENSION_METADATA = 1
DTYPE_S32, DTYPE_F32 = 4, 11
ERROR_INVALID_ARGUMENT = 3
ERROR_CREATE_ARGS_SIZE = 28  # offsetof(errc) + sizeof(errc)


@intrinsic
def _as_pointer(typingctx, address):
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)
    return types.voidptr(types.int64), codegen


@intrinsic
def _invalid_argument(typingctx, api_address):
    """Call api->XLA_FFI_Error_Create with INVALID_ARGUMENT and a fixed message; returns
    the XLA_FFI_Error* as an int."""
    def codegen(context, builder, signature, args):
        word = ir.IntType(64)
        api = builder.inttoptr(args[0], word.as_pointer())
        create = builder.load(builder.gep(api, [ir.Constant(ir.IntType(32), API_ERROR_CREATE)]))
        message = context.insert_const_string(
            builder.module, "dendrax sparse kernel: unexpected dtypes or shapes")
        call_args = cgutils.alloca_once(builder, word, size=4)
        for i, value in enumerate((ir.Constant(word, ERROR_CREATE_ARGS_SIZE),
                                   ir.Constant(word, 0), builder.ptrtoint(message, word),
                                   ir.Constant(word, ERROR_INVALID_ARGUMENT))):
            builder.store(value, builder.gep(call_args, [ir.Constant(ir.IntType(32), i)]))
        function = builder.inttoptr(create, ir.FunctionType(word, [word.as_pointer()])
                                    .as_pointer())
        return builder.call(function, [call_args])
    return types.int64(types.int64), codegen


@numba.njit(inline="always")
def _words(address, n):
    return numba.carray(_as_pointer(address), n, dtype=np.int64)


@numba.njit(cache=True)
def _answer_metadata(frame):
    """True if the frame is XLA's metadata query, then answered with the runtime's own API
    version, no traits and no state; False for a call."""
    if frame[FRAME_EXTENSION] == 0:
        return False
    extension = _words(frame[FRAME_EXTENSION], 4)  # {struct_size, type, next, metadata}
    if (extension[1] & 0xFFFFFFFF) != EXTENSION_METADATA:
        return False
    metadata = _words(extension[3], 6)  # {struct_size, api_version {3 words}, traits, id}
    api = _words(frame[FRAME_API], API_VERSION_WORD + 1)
    metadata[1] = 24  # sizeof(XLA_FFI_Api_Version)
    metadata[2] = 0
    metadata[3] = api[API_VERSION_WORD]  # major and minor version: two int32 in one word
    metadata[4] = 0   # traits
    metadata[5] = 0   # XLA_FFI_UNKNOWN_TYPE_ID
    return True


@numba.njit(cache=True)
def _buffer(frame, result, i):
    """(dtype, data address, dims) of argument i, or of result i if ``result``."""
    table = _words(frame[FRAME_RETS if result else FRAME_ARGS],
                   frame[FRAME_N_RETS if result else FRAME_N_ARGS])
    b = _words(table[i], 6)
    return (b[BUFFER_DTYPE] & 0xFFFFFFFF, b[BUFFER_DATA],
            _words(b[BUFFER_DIMS], b[BUFFER_RANK]))


@numba.njit(cache=True)
def _leading_fits(arg_dims, out_dims, last_two_a, last_two_b):
    """The argument ends in (a, b) and its leading axes are the output's, or 1."""
    rank = len(arg_dims)
    if rank != len(out_dims) or rank < 2:
        return False
    if arg_dims[rank - 2] != last_two_a or arg_dims[rank - 1] != last_two_b:
        return False
    for axis in range(rank - 2):
        if arg_dims[axis] != 1 and arg_dims[axis] != out_dims[axis]:
            return False
    return True


@numba.njit(cache=True)
def _models(dims):
    total = 1
    for axis in range(len(dims) - 2):
        total *= dims[axis]
    return total


@numba.njit(cache=True)
def _model_offsets(arg_dims, out_dims):
    """For each model (flat index over the output's leading axes) the flat index of its
    matrix in the argument, whose leading axes are the output's or 1 (shared)."""
    lead = len(out_dims) - 2
    offsets = np.empty(_models(out_dims), np.int64)
    for m in range(len(offsets)):
        rest, offset, stride = m, 0, 1
        for axis in range(lead - 1, -1, -1):
            i = rest % out_dims[axis]
            rest //= out_dims[axis]
            if arg_dims[axis] != 1:
                offset += i * stride
            stride *= arg_dims[axis]
        offsets[m] = offset
    return offsets


@numba.njit(parallel=True, fastmath=True, cache=True)
def forward(x_t, index, weight, out_t, x_of, index_of, weight_of):
    """out_t[m, b, :] = Σ_j weight[·, b, j] · x_t[·, index[·, b, j], :] (· = the model's
    matrix of each argument, from the offsets)."""
    n_models, branches, batch = out_t.shape
    k = index.shape[2]
    in_dim = x_t.shape[1]
    for mb in numba.prange(n_models * branches):
        m, b = mb // branches, mb % branches
        xm, im, wm = x_of[m], index_of[m], weight_of[m]
        acc = out_t[m, b]
        acc[:] = 0.0
        for j in range(k):
            w = weight[wm, b, j]
            feature = index[im, b, j]
            # Padded slots hold weight 0: skipping them is exact for finite inputs. A
            # feature out of range adds nothing, as the dense lowering's scatter drops it.
            if w == 0.0 or feature < 0 or feature >= in_dim:
                continue
            row = x_t[xm, feature]
            for n in range(batch):
                acc[n] += w * row[n]


@numba.njit(parallel=True, fastmath=True, cache=True)
def weight_grad(x_t, index, g_t, dw, x_of, index_of, g_of):
    """dw[m, b, j] = Σ_n g_t[·, b, n] · x_t[·, index[·, b, j], n]."""
    n_models, branches, k = dw.shape
    batch = g_t.shape[2]
    in_dim = x_t.shape[1]
    for mb in numba.prange(n_models * branches):
        m, b = mb // branches, mb % branches
        xm, im = x_of[m], index_of[m]
        g = g_t[g_of[m], b]
        for j in range(k):
            feature = index[im, b, j]
            total = np.float32(0.0)
            if 0 <= feature < in_dim:
                row = x_t[xm, feature]
                for n in range(batch):
                    total += g[n] * row[n]
            dw[m, b, j] = total


_HANDLER = types.int64(types.voidptr)  # XLA_FFI_Error* (a pointer) as an int


@numba.njit(inline="always")
def _is_call(frame):
    """False for XLA's metadata query (answered here) and the stages before "execute"."""
    if _answer_metadata(frame):
        return False
    return (frame[FRAME_STAGE] & 0xFFFFFFFF) == STAGE_EXECUTE


@numba.njit(inline="always")
def _decode(frame):
    """Both kernels' call: three arguments (x float32, index int32, a third float32) and one
    float32 result. Returns whether the dtypes are those, then (data address, dims) of x,
    index, the third argument and the result, flattened. Call it once the frame is known to
    hold three arguments and one result."""
    x_type, x_data, x_dims = _buffer(frame, False, 0)
    i_type, i_data, i_dims = _buffer(frame, False, 1)
    t_type, t_data, t_dims = _buffer(frame, False, 2)
    o_type, o_data, o_dims = _buffer(frame, True, 0)
    ok = (x_type == DTYPE_F32 and i_type == DTYPE_S32 and t_type == DTYPE_F32
          and o_type == DTYPE_F32)
    return ok, x_data, x_dims, i_data, i_dims, t_data, t_dims, o_data, o_dims


@numba.njit(inline="always")
def _axis(dims, from_end):
    """dims[-from_end] of a buffer of rank 2 or more; -1 (matches no size) otherwise."""
    return dims[len(dims) - from_end] if len(dims) >= 2 else -1


@numba.njit(inline="always")
def _float32s(data, dims, rows, cols):
    """A float32 buffer as (models, rows, cols): its leading axes flattened."""
    return numba.carray(_as_pointer(data), (_models(dims), rows, cols), np.float32)


@numba.njit(inline="always")
def _int32s(data, dims, rows, cols):
    """An int32 buffer as (models, rows, cols): its leading axes flattened."""
    return numba.carray(_as_pointer(data), (_models(dims), rows, cols), np.int32)


@numba.cfunc(_HANDLER, cache=True)
def forward_handler(frame_address):
    frame = numba.carray(frame_address, FRAME_WORDS, dtype=np.int64)
    if not _is_call(frame):
        return 0
    if frame[FRAME_N_ARGS] != 3 or frame[FRAME_N_RETS] != 1:
        return _invalid_argument(frame[FRAME_API])
    ok, x_data, x_dims, i_data, i_dims, w_data, w_dims, o_data, o_dims = _decode(frame)
    batch, branches = _axis(o_dims, 2), _axis(o_dims, 1)
    k, in_dim = _axis(i_dims, 1), _axis(x_dims, 1)
    if (not ok or not _leading_fits(x_dims, o_dims, batch, in_dim)
            or not _leading_fits(i_dims, o_dims, branches, k)
            or not _leading_fits(w_dims, o_dims, branches, k)):
        return _invalid_argument(frame[FRAME_API])
    forward(_float32s(x_data, x_dims, in_dim, batch), _int32s(i_data, i_dims, branches, k),
            _float32s(w_data, w_dims, branches, k), _float32s(o_data, o_dims, branches, batch),
            _model_offsets(x_dims, o_dims), _model_offsets(i_dims, o_dims),
            _model_offsets(w_dims, o_dims))
    return 0


@numba.cfunc(_HANDLER, cache=True)
def weight_grad_handler(frame_address):
    frame = numba.carray(frame_address, FRAME_WORDS, dtype=np.int64)
    if not _is_call(frame):
        return 0
    if frame[FRAME_N_ARGS] != 3 or frame[FRAME_N_RETS] != 1:
        return _invalid_argument(frame[FRAME_API])
    ok, x_data, x_dims, i_data, i_dims, g_data, g_dims, o_data, o_dims = _decode(frame)
    branches, k = _axis(o_dims, 2), _axis(o_dims, 1)
    batch, in_dim = _axis(g_dims, 2), _axis(x_dims, 1)
    if (not ok or not _leading_fits(x_dims, o_dims, batch, in_dim)
            or not _leading_fits(i_dims, o_dims, branches, k)
            or not _leading_fits(g_dims, o_dims, batch, branches)):
        return _invalid_argument(frame[FRAME_API])
    weight_grad(_float32s(x_data, x_dims, in_dim, batch), _int32s(i_data, i_dims, branches, k),
                _float32s(g_data, g_dims, branches, batch), _float32s(o_data, o_dims, branches, k),
                _model_offsets(x_dims, o_dims), _model_offsets(i_dims, o_dims),
                _model_offsets(g_dims, o_dims))
    return 0
