"""GPU kernels: numba-cuda ``@cuda.jit`` kernels launched on CuPy arrays.

Every name in :data:`minivae.kernels.KERNELS` is defined here with the signature of its twin in
:mod:`minivae.kernels.reference` (the ground truth these are tested against). The kernels are:

* convolution, direct (one thread per output element, no im2col buffer): ``conv2d_forward``; the input
  gradient in *gather* form (each thread of ``gx`` sums the output pixels its input pixel touched, so no
  atomics are needed), which is also ``conv_transpose2d_forward`` (bias fused); the weight and bias
  gradients as one thread block per output element reducing over ``(N, H_out, W_out)`` in shared memory.
  ``conv_transpose2d_backward_*`` reuse the conv kernels exactly as reference.py does.
* dense: one tiled shared-memory GEMM (16x16 tiles, either operand transposed, bias fused) for
  ``y = x W^T + b``, ``gx = gy W`` and ``gW = gy^T x``, and a column sum for ``gb``.
* fused reparameterize + KL (one thread per example forward, per element backward) and BCE with logits
  (one thread per element).

Arrays: CuPy arrays on a real GPU, passed through ``__cuda_array_interface__`` and launched on CuPy's
current stream (so the kernels are ordered with CuPy's own work without host synchronisation). Under the
CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, no real GPU) the same kernels run in Python on NumPy arrays,
with smaller thread blocks; that is how they are tested on machines without a GPU.

Outputs are allocated with the inputs' array module and have the inputs' dtype (float32 or float64);
the kernels accumulate in that dtype. Non-contiguous inputs are copied to C order first. Kernels are
compiled lazily, once per dtype, on their first launch (``@cuda.jit`` without signatures: eager
signatures need a driver at import time).

The first launch on a real GPU sets numba-cuda's ``CUDA_ARRAY_INTERFACE_SYNC`` to false: by default numba
synchronises the host with the stream a CuPy array exports on every launch, which is unnecessary here because the kernels run on that same stream, and would serialise the host with the GPU.
It also silences numba's low-occupancy warnings, and restores ``np.row_stack`` (removed in NumPy 2.5) as
an alias of ``np.vstack`` when missing, because numba-cuda 0.30 refers to it when it first compiles.
"""
from __future__ import annotations

import ctypes
import functools
import math
import os

import numba
import numpy as np
from numba import cuda

from minivae.backend import get_array_module
from minivae.kernels.conv_arith import conv_output_size, conv_transpose2d_backward_kernels, conv_transpose_output_hw

__all__ = [
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_backward_bias",
    "conv_transpose2d_forward", "conv_transpose2d_backward_input", "conv_transpose2d_backward_weight",
    "dense_forward", "dense_backward", "reparameterize_kl_forward", "reparameterize_kl_backward",
    "bce_with_logits_forward", "bce_with_logits_backward", "simulated",
]


def simulated() -> bool:
    """True when numba-cuda runs its CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``): no real GPU."""
    return bool(getattr(numba.config, "ENABLE_CUDASIM", 0))


# Launch geometry. The simulator runs every thread as Python (~0.15 ms each), so it gets small blocks.
_BLOCK = 256                              # threads per block of the 1-D kernels (capped at the work size)


def _tile() -> int:
    return 8 if simulated() else 16      # GEMM tile edge


_KMAX = 25  # kernels with at most this many taps (5x5) use the weight-gradient kernel keeping taps in registers


def _batch_splits(n: int, blocks: int) -> int:
    """How many slices of the batch a reduction is split into so that ``blocks * splits`` fills the GPU."""
    if simulated():
        return min(n, 2)  # exercise the split path cheaply
    return max(1, min(n, -(-528 // max(blocks, 1))))  # ~4 blocks per SM of an H100 (132 SMs)


def _reduce_block() -> int:
    return 2 if simulated() else 256     # threads per block of the reductions (a power of two)


# --------------------------------------------------------------------------- kernel factory


@functools.lru_cache(maxsize=None)
def _kernels(dtype_name: str, tile: int, rblock: int):
    """The kernels for one dtype ("float32"/"float64"), GEMM tile edge and reduction block size.

    Built by a factory so that constants (zero, one, a half) and shared-array element types are of the
    array dtype: float32 kernels then never promote to float64.
    """
    from numba import types

    ft = getattr(types, dtype_name)
    zero, one, half = ft(0.0), ft(1.0), ft(0.5)
    TILE, TILE_PAD, RB = tile, tile + 1, rblock  # constants frozen into the kernels (shared array shapes)
    KMAX = _KMAX

    @cuda.jit
    def conv_forward(x, w, bias, has_bias, sh, sw, ph, pw, y):
        # y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] x[n, c, i*sh + p - ph, j*sw + q - pw]
        idx = cuda.grid(1)
        n_, o_, ho, wo = y.shape
        if idx >= n_ * o_ * ho * wo:
            return
        j = idx % wo
        t = idx // wo
        i = t % ho
        t = t // ho
        o = t % o_
        n = t // o_
        c_in, h_in, w_in = x.shape[1], x.shape[2], x.shape[3]
        kh, kw = w.shape[2], w.shape[3]
        acc = bias[o] if has_bias else zero
        for c in range(c_in):
            for p in range(kh):
                h = i * sh + p - ph
                if h >= 0 and h < h_in:
                    for q in range(kw):
                        u = j * sw + q - pw
                        if u >= 0 and u < w_in:
                            acc += w[o, c, p, q] * x[n, c, h, u]
        y[n, o, i, j] = acc

    @cuda.jit
    def conv_gather(gy, w, bias, has_bias, sh, sw, ph, pw, gx):
        # gx[n,c,h,u] = b[c] + sum over (o,p,q) with h = i*sh + p - ph, u = j*sw + q - pw of w[o,c,p,q] gy[n,o,i,j]
        # Threads walk each (n, c) plane in stride-phase-major order: all (h, u) with h % sh == a and
        # u % sw == b come together, so the threads of a warp share one set of taps (p = a + ph mod sh,
        # stepping by sh) and do not diverge, and neighbouring threads read neighbouring gy columns.
        idx = cuda.grid(1)
        n_, c_, h_in, w_in = gx.shape
        if idx >= n_ * c_ * h_in * w_in:
            return
        k = idx % (h_in * w_in)
        t = idx // (h_in * w_in)
        c = t % c_
        n = t // c_
        a = 0
        b = 0
        found = False
        for pa in range(sh):
            rows = (h_in - pa + sh - 1) // sh
            for pb in range(sw):
                cols = (w_in - pb + sw - 1) // sw
                if not found:
                    if k < rows * cols:
                        a = pa
                        b = pb
                        found = True
                    else:
                        k -= rows * cols
        rows = (h_in - a + sh - 1) // sh
        cols = (w_in - b + sw - 1) // sw
        h = a + (k // cols) * sh
        u = b + (k % cols) * sw
        o_, ho, wo = gy.shape[1], gy.shape[2], gy.shape[3]
        kh, kw = w.shape[2], w.shape[3]
        acc = bias[c] if has_bias else zero
        for p in range((a + ph) % sh, kh, sh):
            i = (h + ph - p) // sh
            if h + ph - p >= 0 and i < ho:
                for q in range((b + pw) % sw, kw, sw):
                    j = (u + pw - q) // sw
                    if u + pw - q >= 0 and j < wo:
                        for o in range(o_):
                            acc += w[o, c, p, q] * gy[n, o, i, j]
        gx[n, c, h, u] = acc

    @cuda.jit
    def conv_weight_grad_taps(gy, x, sh, sw, ph, pw, part):
        # One block per (o, c) and per split s of the batch; each thread keeps the kh*kw taps in registers:
        # part[s,o,c,p,q] = sum_{n = s, s + S, ...} sum_{i,j} gy[n,o,i,j] x[n, c, i*sh + p - ph, j*sw + q - pw]
        s_, o_, c_, kh, kw = part.shape
        c = cuda.blockIdx.x % c_
        o = cuda.blockIdx.x // c_
        split = cuda.blockIdx.y
        n_, ho, wo = gy.shape[0], gy.shape[2], gy.shape[3]
        h_in, w_in = x.shape[2], x.shape[3]
        tid = cuda.threadIdx.x
        acc = cuda.local.array(KMAX, ft)
        for t in range(kh * kw):
            acc[t] = zero
        for n in range(split, n_, s_):
            for r in range(tid, ho * wo, RB):
                i = r // wo
                j = r - i * wo
                g = gy[n, o, i, j]
                for p in range(kh):
                    h = i * sh + p - ph
                    if h >= 0 and h < h_in:
                        for q in range(kw):
                            u = j * sw + q - pw
                            if u >= 0 and u < w_in:
                                acc[p * kw + q] += g * x[n, c, h, u]
        buf = cuda.shared.array(RB, ft)
        for t in range(kh * kw):  # tree-reduce each tap over the block (thread 0 reads buf[0] last)
            buf[tid] = acc[t]
            cuda.syncthreads()
            step = RB // 2
            while step > 0:
                if tid < step:
                    buf[tid] += buf[tid + step]
                cuda.syncthreads()
                step //= 2
            if tid == 0:
                part[split, o, c, t // kw, t % kw] = buf[0]

    @cuda.jit
    def conv_weight_grad(gy, x, sh, sw, ph, pw, gw):
        # kernels with more than KMAX taps: one block per gw[o,c,p,q] = sum_{n,i,j} gy[n,o,i,j] x[n,c,...]
        o_, c_, kh, kw = gw.shape
        b = cuda.blockIdx.x
        q = b % kw
        t = b // kw
        p = t % kh
        t = t // kh
        c = t % c_
        o = t // c_
        n_, ho, wo = gy.shape[0], gy.shape[2], gy.shape[3]
        h_in, w_in = x.shape[2], x.shape[3]
        tid = cuda.threadIdx.x
        acc = zero
        for r in range(tid, n_ * ho * wo, RB):
            j = r % wo
            s = r // wo
            i = s % ho
            n = s // ho
            h = i * sh + p - ph
            u = j * sw + q - pw
            if h >= 0 and h < h_in and u >= 0 and u < w_in:
                acc += gy[n, o, i, j] * x[n, c, h, u]
        buf = cuda.shared.array(RB, ft)
        buf[tid] = acc
        cuda.syncthreads()
        step = RB // 2
        while step > 0:
            if tid < step:
                buf[tid] += buf[tid + step]
            cuda.syncthreads()
            step //= 2
        if tid == 0:
            gw[o, c, p, q] = buf[0]

    @cuda.jit
    def channel_sum(gy, part):
        # one block per channel o and batch split s: part[s, o] = sum_{n = s, s + S, ...} sum_{i,j} gy[n,o,i,j]
        s_ = part.shape[0]
        o = cuda.blockIdx.x
        split = cuda.blockIdx.y
        n_, hw = gy.shape[0], gy.shape[2] * gy.shape[3]
        wo = gy.shape[3]
        tid = cuda.threadIdx.x
        acc = zero
        for n in range(split, n_, s_):
            for r in range(tid, hw, RB):
                i = r // wo
                acc += gy[n, o, i, r - i * wo]
        buf = cuda.shared.array(RB, ft)
        buf[tid] = acc
        cuda.syncthreads()
        step = RB // 2
        while step > 0:
            if tid < step:
                buf[tid] += buf[tid + step]
            cuda.syncthreads()
            step //= 2
        if tid == 0:
            part[split, o] = buf[0]

    @cuda.jit
    def gemm(a, b, ta, tb, bias, has_bias, c):
        # c = op(a) @ op(b) (+ bias[col]); op(a) = a.T when ta, op(b) = b.T when tb.
        # Tiles are loaded so that consecutive threads (threadIdx.x) read consecutive addresses.
        sa = cuda.shared.array((TILE, TILE_PAD), ft)  # sa[r, k] = op(a)[i0 + r, k0 + k]
        sb = cuda.shared.array((TILE, TILE_PAD), ft)  # sb[k, s] = op(b)[k0 + k, j0 + s]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        i0 = cuda.blockIdx.y * TILE
        j0 = cuda.blockIdx.x * TILE
        m_, n_ = c.shape
        k_ = a.shape[0] if ta else a.shape[1]
        acc = zero
        for k0 in range(0, k_, TILE):
            if ta:
                i, k = i0 + tx, k0 + ty
                sa[tx, ty] = a[k, i] if (i < m_ and k < k_) else zero
            else:
                i, k = i0 + ty, k0 + tx
                sa[ty, tx] = a[i, k] if (i < m_ and k < k_) else zero
            if tb:
                k, j = k0 + tx, j0 + ty
                sb[tx, ty] = b[j, k] if (j < n_ and k < k_) else zero
            else:
                k, j = k0 + ty, j0 + tx
                sb[ty, tx] = b[k, j] if (j < n_ and k < k_) else zero
            cuda.syncthreads()
            for kk in range(TILE):
                acc += sa[ty, kk] * sb[kk, tx]
            cuda.syncthreads()
        row, col = i0 + ty, j0 + tx
        if row < m_ and col < n_:
            if has_bias:
                acc += bias[col]
            c[row, col] = acc

    @cuda.jit
    def column_sum(g, out):
        j = cuda.grid(1)
        if j < g.shape[1]:
            acc = zero
            for i in range(g.shape[0]):
                acc += g[i, j]
            out[j] = acc

    @cuda.jit
    def reparam_kl_forward(mu, logvar, eps, z, kl):
        n = cuda.grid(1)
        if n < mu.shape[0]:
            acc = zero
            for d in range(mu.shape[1]):
                m = mu[n, d]
                lv = logvar[n, d]
                std = math.exp(half * lv)
                z[n, d] = m + std * eps[n, d]
                acc += m * m + math.exp(lv) - one - lv
            kl[n] = half * acc

    @cuda.jit
    def reparam_kl_backward(gz, gkl, mu, logvar, eps, gmu, glogvar):
        idx = cuda.grid(1)
        d_ = mu.shape[1]
        if idx < mu.shape[0] * d_:
            n = idx // d_
            d = idx % d_
            g = gkl[n]
            std = math.exp(half * logvar[n, d])
            gmu[n, d] = gz[n, d] + g * mu[n, d]
            glogvar[n, d] = half * gz[n, d] * eps[n, d] * std + half * g * (std * std - one)

    @cuda.jit
    def bce_forward(x, t, out):
        idx = cuda.grid(1)
        if idx < x.size:
            v = x[idx]
            out[idx] = max(v, zero) - v * t[idx] + math.log1p(math.exp(-abs(v)))

    @cuda.jit
    def bce_backward(gy, x, t, out):
        idx = cuda.grid(1)
        if idx < x.size:
            out[idx] = gy[idx] * (half * (one + math.tanh(half * x[idx])) - t[idx])

    return dict(conv_forward=conv_forward, conv_gather=conv_gather, conv_weight_grad=conv_weight_grad,
                conv_weight_grad_taps=conv_weight_grad_taps,
                channel_sum=channel_sum, gemm=gemm, column_sum=column_sum,
                reparam_kl_forward=reparam_kl_forward, reparam_kl_backward=reparam_kl_backward,
                bce_forward=bce_forward, bce_backward=bce_backward)


# --------------------------------------------------------------------------- launching


_streams: dict = {}
_configured = False


def _configure_real_gpu() -> None:
    global _configured
    if not _configured:
        from numba.cuda.core import config as cuda_config

        cuda_config.CUDA_ARRAY_INTERFACE_SYNC = False  # see the module docstring
        cuda_config.CUDA_LOW_OCCUPANCY_WARNINGS = False  # small grids are expected at small batches
        if not hasattr(np, "row_stack"):
            # numba-cuda 0.30 registers an overload for np.row_stack when it first compiles; NumPy 2.5
            # removed that alias of np.vstack. Restore it so that compilation works with both.
            np.row_stack = np.vstack
        _configured = True


def _stream(xp):
    """numba stream wrapping CuPy's current stream (None under the simulator or for NumPy arrays)."""
    if xp is np or simulated():
        return None
    _configure_real_gpu()
    ptr = xp.cuda.get_current_stream().ptr
    stream = _streams.get(ptr)
    if stream is None:
        stream = _streams[ptr] = cuda.external_stream(ptr) if ptr else cuda.default_stream()
    return stream


def _kernel(name: str, dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"GPU kernels support float32 and float64 arrays, got {dtype}")
    return _kernels(dtype.name, _tile(), _reduce_block())[name]


def _launch(xp, kernel, grid, block, *args) -> None:
    grid_size = grid if isinstance(grid, int) else grid[0] * grid[1]
    if grid_size == 0:
        return
    stream = _stream(xp)
    if stream is None:
        kernel[grid, block](*args)
    elif not (_FAST_LAUNCH and _fast_launch(kernel, grid, block, stream, args)):
        kernel[grid, block, stream](*args)


# Fast launch path. numba's dispatcher spends ~0.2 ms per launch on CuPy arguments (typing each argument
# from its __cuda_array_interface__, building a StridedMemoryView per array). Every argument here is either
# a C-contiguous CuPy array of the kernel dtype or a Python int, so the numba types are known without
# looking: the kernel is compiled once per argument types through the dispatcher, and later launches pass
# numba's flattened array arguments (meminfo, parent, size, itemsize, data, shape..., strides...) straight
# to cuda.core's launch, as numba's own _Kernel.launch does. Set MINIVAE_GPU_FAST_LAUNCH=0 to disable.
_FAST_LAUNCH = os.environ.get("MINIVAE_GPU_FAST_LAUNCH", "1") != "0"
_fast_cache: dict = {}


_type_cache: dict = {}


def _numba_type(a):
    if isinstance(a, (int, np.integer)):
        key = "int64"
    elif a.flags.c_contiguous:
        key = (a.dtype.char, a.ndim)
    else:
        return None
    t = _type_cache.get(key)
    if t is None:  # building numba types is slow (interning): once per dtype and rank
        from numba import types

        t = _type_cache[key] = types.int64 if key == "int64" else types.Array(
            types.float32 if a.dtype == np.float32 else types.float64, a.ndim, "C")
    return t


_config_cache: dict = {}


def _fast_launch(kernel, grid, block, stream, args) -> bool:
    """Launch ``kernel`` without numba's per-call argument handling; False if that path is unavailable."""
    argtypes = tuple(_numba_type(a) for a in args)
    if None in argtypes:
        return False
    key = (kernel, argtypes)
    fn = _fast_cache.get(key)
    if fn is None:
        try:
            from cuda.core import LaunchConfig, launch
            from numba.cuda.cudadrv import driver

            core_stream = driver._to_core_stream(stream)
            compiled = kernel.overloads.get(argtypes) or kernel.compile(argtypes)
            cufunc = compiled._codelibrary.get_cufunc().kernel
        except Exception:  # another numba-cuda version: use its dispatcher
            _fast_cache[key] = False
            return False
        fn = _fast_cache[key] = (launch, LaunchConfig, cufunc, core_stream, stream)
    elif fn is False:
        return False
    launch, config_cls, cufunc, core_stream, numba_stream = fn
    if numba_stream is not stream:  # CuPy's current stream changed since this kernel was cached
        from numba.cuda.cudadrv import driver

        core_stream = driver._to_core_stream(stream)
    kargs = []
    for a in args:
        if isinstance(a, (int, np.integer)):
            kargs.append(ctypes.c_int64(int(a)))
        else:
            kargs += [0, 0, a.size, a.itemsize, a.data.ptr, *a.shape, *a.strides]
    grid3 = (grid, 1, 1) if isinstance(grid, int) else (grid[0], grid[1], 1)
    block3 = (block, 1, 1) if isinstance(block, int) else (block[0], block[1], 1)
    config = _config_cache.get((grid3, block3))
    if config is None:
        config = _config_cache[(grid3, block3)] = config_cls(grid=grid3, block=block3, shmem_size=0)
    launch(core_stream, config, cufunc, *kargs)
    return True


def _launch_1d(xp, kernel, n: int, *args) -> None:
    block = max(1, min(_BLOCK, n))
    _launch(xp, kernel, (n + block - 1) // block, block, *args)


def _prepare(*arrays):
    """(xp, dtype, contiguous arrays of one floating dtype); None entries stay None."""
    present = [a for a in arrays if a is not None]
    xp = get_array_module(*present)
    dtype = np.result_type(*[a.dtype for a in present])
    out = [None if a is None else xp.ascontiguousarray(a, dtype=dtype) for a in arrays]
    return xp, dtype, out


_dummies: dict = {}


def _bias_arg(xp, dtype, bias):
    """(bias array, has_bias flag): a 1-element placeholder when bias is None (the kernel never reads it)."""
    if bias is not None:
        return bias, 1
    key = (xp.__name__, np.dtype(dtype).name, xp.cuda.Device().id if xp is not np else None)
    if key not in _dummies:
        _dummies[key] = xp.zeros(1, dtype=dtype)
    return _dummies[key], 0


# --------------------------------------------------------------------------- conv2d


def conv2d_forward(x, weight, bias, stride, padding):
    """``y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] * x_pad[n, c, i*sh + p, j*sw + q]``.

    Args: x ``(N, C_in, H, W)``, weight ``(C_out, C_in, kH, kW)``, bias ``(C_out,)`` or None, float32 or
        float64 (CuPy on a GPU, NumPy under the simulator); stride, padding ``(h, w)`` int pairs.
    Returns: ``(N, C_out, H_out, W_out)`` in the input dtype, ``H_out = (H + 2 ph - kH) // sh + 1``.
    Raises: TypeError for dtypes other than float32/float64.
    """
    xp, dtype, (x, weight, bias) = _prepare(x, weight, bias)
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    y = xp.empty((n, c_out, conv_output_size(h, kh, stride[0], padding[0]),
                  conv_output_size(w, kw, stride[1], padding[1])), dtype=dtype)
    b, has_bias = _bias_arg(xp, dtype, bias)
    _launch_1d(xp, _kernel("conv_forward", dtype), y.size, x, weight, b, has_bias,
               stride[0], stride[1], padding[0], padding[1], y)
    return y


def _gather(xp, dtype, gy, weight, bias, out_shape, stride, padding):
    out = xp.empty(out_shape, dtype=dtype)
    b, has_bias = _bias_arg(xp, dtype, bias)
    _launch_1d(xp, _kernel("conv_gather", dtype), out.size, gy, weight, b, has_bias,
               stride[0], stride[1], padding[0], padding[1], out)
    return out


def conv2d_backward_input(grad_output, weight, input_size, stride, padding):
    """Input gradient of conv2d (a transposed convolution of ``grad_output`` with the same weight).

    Args: grad_output ``(N, C_out, H_out, W_out)``, weight ``(C_out, C_in, kH, kW)``, input_size ``(H, W)``.
    Returns: ``(N, C_in, H, W)`` in the input dtype.
    """
    xp, dtype, (gy, weight) = _prepare(grad_output, weight)
    shape = (gy.shape[0], weight.shape[1], int(input_size[0]), int(input_size[1]))
    return _gather(xp, dtype, gy, weight, None, shape, stride, padding)


def _sum_splits(xp, dtype, part, shape):
    """Sum ``part`` over its first axis (the batch splits) into a new array of ``shape``."""
    if part.shape[0] == 1:
        return part.reshape(shape)
    out = xp.empty(shape, dtype=dtype)
    _launch_1d(xp, _kernel("column_sum", dtype), out.size, part.reshape(part.shape[0], -1), out.reshape(-1))
    return out


def conv2d_backward_weight(grad_output, x, kernel_size, stride, padding):
    """Weight gradient of conv2d: ``gw[o,c,p,q] = sum_{n,i,j} gy[n,o,i,j] * x_pad[n,c,i*sh+p,j*sw+q]``.

    Args: grad_output ``(N, C_out, H_out, W_out)``, x ``(N, C_in, H, W)``, kernel_size ``(kH, kW)``.
    Returns: ``(C_out, C_in, kH, kW)`` in the input dtype.
    """
    xp, dtype, (gy, x) = _prepare(grad_output, x)
    shape = (gy.shape[1], x.shape[1], int(kernel_size[0]), int(kernel_size[1]))
    if shape[2] * shape[3] > _KMAX:
        gw = xp.empty(shape, dtype=dtype)
        _launch(xp, _kernel("conv_weight_grad", dtype), gw.size, _reduce_block(), gy, x,
                stride[0], stride[1], padding[0], padding[1], gw)
        return gw
    blocks = shape[0] * shape[1]
    splits = _batch_splits(gy.shape[0], blocks)
    part = xp.empty((splits,) + shape, dtype=dtype)
    _launch(xp, _kernel("conv_weight_grad_taps", dtype), (blocks, splits), _reduce_block(), gy, x,
            stride[0], stride[1], padding[0], padding[1], part)
    return _sum_splits(xp, dtype, part, shape)


def conv2d_backward_bias(grad_output):
    """Bias gradient of conv2d and conv_transpose2d: ``(N, C, H, W)`` summed over N, H, W -> ``(C,)``."""
    xp, dtype, (gy,) = _prepare(grad_output)
    splits = _batch_splits(gy.shape[0], gy.shape[1])
    part = xp.empty((splits, gy.shape[1]), dtype=dtype)
    _launch(xp, _kernel("channel_sum", dtype), (gy.shape[1], splits), _reduce_block(), gy, part)
    return _sum_splits(xp, dtype, part, (gy.shape[1],))


# --------------------------------------------------------------------------- conv_transpose2d


def conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding):
    """Transposed convolution, the adjoint of conv2d with the same weight, bias fused.

    Args: x ``(N, C_in, H, W)``, weight ``(C_in, C_out, kH, kW)``, bias ``(C_out,)`` or None.
    Returns: ``(N, C_out, H_out, W_out)``, ``H_out = (H-1)*sh - 2*ph + kH + output_padding[0]``.
    """
    xp, dtype, (x, weight, bias) = _prepare(x, weight, bias)
    shape = (x.shape[0], weight.shape[1]) + conv_transpose_output_hw(x.shape, weight.shape[2:], stride, padding,
                                                                     output_padding)
    return _gather(xp, dtype, x, weight, bias, shape, stride, padding)


conv_transpose2d_backward_input, conv_transpose2d_backward_weight = conv_transpose2d_backward_kernels(
    conv2d_forward, conv2d_backward_weight)


# --------------------------------------------------------------------------- dense


def _gemm(xp, dtype, a, ta, b, tb, bias, shape):
    c = xp.empty(shape, dtype=dtype)
    tile = _tile()
    grid = ((shape[1] + tile - 1) // tile, (shape[0] + tile - 1) // tile)
    bias_arr, has_bias = _bias_arg(xp, dtype, bias)
    _launch(xp, _kernel("gemm", dtype), grid, (tile, tile), a, b, int(ta), int(tb), bias_arr, has_bias, c)
    return c


def dense_forward(x, weight, bias):
    """``y = x @ weight.T + bias`` by the tiled GEMM kernel with the bias fused.

    Args: x ``(N, in_features)``, weight ``(out_features, in_features)``, bias ``(out_features,)`` or None.
    Returns: ``(N, out_features)`` in the input dtype.
    """
    xp, dtype, (x, weight, bias) = _prepare(x, weight, bias)
    return _gemm(xp, dtype, x, False, weight, True, bias, (x.shape[0], weight.shape[0]))


def dense_backward(grad_output, x, weight):
    """Returns ``(gx, gw, gb) = (gy @ W, gy.T @ x, gy.sum(0))``, shapes of x, weight and ``(out_features,)``."""
    xp, dtype, (gy, x, weight) = _prepare(grad_output, x, weight)
    gx = _gemm(xp, dtype, gy, False, weight, False, None, x.shape)
    gw = _gemm(xp, dtype, gy, True, x, False, None, weight.shape)
    gb = xp.empty((gy.shape[1],), dtype=dtype)
    _launch_1d(xp, _kernel("column_sum", dtype), gb.size, gy, gb)
    return gx, gw, gb


# --------------------------------------------------------------------------- reparameterize + KL


def reparameterize_kl_forward(mu, logvar, eps):
    """Fused ``z = mu + exp(logvar/2) * eps`` and ``kl = 0.5 * sum_j (mu^2 + exp(logvar) - 1 - logvar)``.

    Args: mu, logvar, eps ``(N, D)``. Returns: z ``(N, D)``, kl ``(N,)`` in nats, in the input dtype.
    """
    xp, dtype, (mu, logvar, eps) = _prepare(mu, logvar, eps)
    z = xp.empty(mu.shape, dtype=dtype)
    kl = xp.empty((mu.shape[0],), dtype=dtype)
    _launch_1d(xp, _kernel("reparam_kl_forward", dtype), mu.shape[0], mu, logvar, eps, z, kl)
    return z, kl


def reparameterize_kl_backward(grad_z, grad_kl, mu, logvar, eps):
    """Returns ``(g_mu, g_logvar)``, each ``(N, D)``:
    ``g_mu = gz + gkl * mu``, ``g_logvar = gz * eps * exp(logvar/2) / 2 + gkl * (exp(logvar) - 1) / 2``.
    """
    xp, dtype, (gz, gkl, mu, logvar, eps) = _prepare(grad_z, grad_kl, mu, logvar, eps)
    gmu = xp.empty(mu.shape, dtype=dtype)
    glogvar = xp.empty(mu.shape, dtype=dtype)
    _launch_1d(xp, _kernel("reparam_kl_backward", dtype), mu.size, gz, gkl.reshape(-1), mu, logvar, eps,
               gmu, glogvar)
    return gmu, glogvar


# --------------------------------------------------------------------------- BCE with logits


def _flat_same_shape(xp, shape, *arrays):
    return [(a if a.shape == shape else xp.ascontiguousarray(xp.broadcast_to(a, shape))).reshape(-1)
            for a in arrays]


def bce_with_logits_forward(logits, target):
    """Elementwise ``max(x, 0) - x*t + log1p(exp(-|x|))`` (nats), the shape and dtype of ``logits``."""
    xp, dtype, (logits, target) = _prepare(logits, target)
    shape = np.broadcast_shapes(logits.shape, target.shape)
    x, t = _flat_same_shape(xp, shape, logits, target)
    out = xp.empty(x.shape, dtype=dtype)
    _launch_1d(xp, _kernel("bce_forward", dtype), out.size, x, t, out)
    return out.reshape(shape)


def bce_with_logits_backward(grad_output, logits, target):
    """Gradient w.r.t. the logits: ``gy * (sigmoid(x) - t)``, sigmoid as ``(1 + tanh(x/2)) / 2``."""
    xp, dtype, (gy, logits, target) = _prepare(grad_output, logits, target)
    shape = np.broadcast_shapes(gy.shape, logits.shape, target.shape)
    g, x, t = _flat_same_shape(xp, shape, gy, logits, target)
    out = xp.empty(x.shape, dtype=dtype)
    _launch_1d(xp, _kernel("bce_backward", dtype), out.size, g, x, t, out)
    return out.reshape(shape)
