"""The Numba CPU convolution kernels, top to bottom: the kernels (Python: shapes, dtypes, output arrays), the
parallel drivers and per-chunk work they launch, and the jitted passes those use.

A convolution is im2col + GEMM (Chellapilla et al. 2006); its input gradient, and the forward pass of a transposed
convolution, is GEMM + col2im, the adjoint of im2col (Dumoulin & Visin 2016, section 4):

* ``_im2col`` fills a contiguous ``(C*kH*kW, m*L)`` column buffer for a block of ``m`` examples by a gather
  through a table of source positions (``_tap_index``, one per call; padding reads a zero cell);
* the GEMMs are NumPy's OpenBLAS called from jitted code (:mod:`minivae.kernels._blas`): per example
  ``W @ cols`` written straight into NCHW, or, below :data:`_FOLD_BELOW_L` output pixels, one GEMM per block of
  examples and a copy back; ``W^T @ gy`` followed at once by ``_col2im`` of that block; the weight gradient
  folds a block of examples into one GEMM (``K = m*L``) where ``C*kH*kW >= 32``;
* ``_col2im`` scatters columns back to NCHW through the same table, the bias fused;
* the batch is split into a few fixed chunks per thread (:func:`minivae.kernels._cpu_threads.chunk_bounds`) and
  run by one parallel jitted function per call (a ``prange`` over chunks, started by
  :func:`minivae.kernels._cpu_threads.run`), each chunk's GEMMs on a BLAS limited to one thread for its thread;
  no two chunks write the same output element (the weight and bias gradients: one partial sum per chunk, added
  in chunk order), so the bits do not depend on the thread timing.

Conventions (as :mod:`minivae.kernels.reference`): NCHW; conv2d weight ``(C_out, C_in, kH, kW)``, conv_transpose2d
weight ``(C_in, C_out, kH, kW)``; ``stride``, ``padding``, ``output_padding``, ``kernel_size`` are ``(h, w)`` int
pairs. float32 and float64 (mixed operands are promoted as NumPy's matmul does; other dtypes: TypeError);
non-contiguous inputs are copied to C order. Each jitted function compiles once per dtype on first use and is
cached on disk (``cache=True``; Numba keys the cache on this file, so every jitted function a chunk calls lives
here).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from minivae.kernels import _blas, _cpu_epilogue, _out
from minivae.kernels._blas import NO_TRANS, ROW_MAJOR, TRANS
from minivae.kernels._cpu_threads import check_dtype, chunk_bounds, run
from minivae.kernels.conv_arith import conv_output_size, conv_transpose_output_hw

# --------------------------------------------------------------------------- the kernels


def _same_dtype(*arrays):
    """The arrays C-contiguous in their common dtype (``np.result_type``): the jitted GEMM reads raw memory."""
    dtype = np.dtype(np.result_type(*arrays).type)  # native byte order
    return tuple(np.ascontiguousarray(a, dtype=dtype) for a in arrays)


def _bias_args(bias, dtype):
    if bias is None:
        return np.zeros(1, dtype=dtype), False
    return np.ascontiguousarray(bias, dtype=dtype), True


def _blas_args(dtype):
    """(gemm, set_local, one, zero) for the chunks in ``dtype``; TypeError for a dtype without a GEMM."""
    dtype = np.dtype(dtype)
    if dtype not in _blas.GEMM:
        raise TypeError(f"numba CPU convolution kernels take float32 and float64 arrays, got {dtype}: convert with "
                        f'.astype(np.float32), or run kernels.use("reference")')
    return _blas.GEMM[dtype], _blas.SET_LOCAL_THREADS, dtype.type(1), dtype.type(0)


def _sum_parts(parts, shape):
    """The chunks' partial sums ``parts (k, ...)`` added in chunk order, reshaped to ``shape``."""
    total = parts[0]
    for p in parts[1:]:
        total += p
    return total.reshape(shape)


def conv2d_forward(x, weight, bias, stride, padding, *, out=None, relu=False):
    """``y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] * x_pad[n, c, i*sh + p, j*sw + q]`` (im2col + GEMM).

    Args: x ``(N, C_in, H, W)``, weight ``(C_out, C_in, kH, kW)``, bias ``(C_out,)`` or None; stride, padding;
        ``out``: the result array (:mod:`minivae.kernels._out`); ``relu``: the epilogue of :mod:`._cpu_epilogue`.
    Returns: ``(N, C_out, H_out, W_out)``, ``H_out = (H + 2*ph - kH) // sh + 1``, in the inputs' dtype.
    Raises: TypeError for dtypes other than float32 and float64; ValueError for a wrong ``out``.
    """
    check_dtype("conv2d_forward", x, weight, bias)
    x, weight = _same_dtype(x, weight)
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ho, wo = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    out = _out.output(out, (n, c_out, ho, wo), x.dtype, "conv2d_forward")
    b, has_b = _bias_args(bias, x.dtype)
    idx = _tap_index(h, w, kh, kw, stride[0], stride[1], padding[0], padding[1], ho, wo)
    run(*_cpu_epilogue.drivers(relu, conv_forward_par, conv_forward_chunk), chunk_bounds(n), x,
        weight.reshape(c_out, c_in * kh * kw), b, has_b, idx, out.reshape(n, c_out, ho * wo), *_blas_args(x.dtype))
    return out


def conv2d_backward_weight(grad_output, x, kernel_size, stride, padding, *, out=None):
    """Weight gradient of conv2d: ``gw[o,c,p,q] = sum_{n,i,j} gy[n,o,i,j] * x_pad[n,c,i*sh+p,j*sw+q]``.

    Args: grad_output ``(N, C_out, H_out, W_out)``, x ``(N, C_in, H, W)``, kernel_size ``(kH, kW)``.
    Returns: ``(C_out, C_in, kH, kW)`` in the inputs' dtype (copied into ``out`` when given: ``_out.write``).
    """
    check_dtype("conv2d_backward_weight", grad_output, x)
    grad_output, x = _same_dtype(grad_output, x)
    n, c_out, ho, wo = grad_output.shape
    c_in, h, w = x.shape[1:]
    kh, kw = kernel_size
    idx = _tap_index(h, w, kh, kw, stride[0], stride[1], padding[0], padding[1], ho, wo)
    bounds = chunk_bounds(n)
    parts = np.empty((bounds.size - 1, c_out, c_in * kh * kw), dtype=grad_output.dtype)
    run(weight_grad_par, weight_grad_chunk, bounds, grad_output.reshape(n, c_out, ho * wo), x, idx, parts,
        *_blas_args(grad_output.dtype))
    return _out.write(out, _sum_parts(parts, (c_out, c_in, kh, kw)), "conv2d_backward_weight")


def conv2d_backward_bias(grad_output, *, out=None):
    """Bias gradient of conv2d and conv_transpose2d: ``grad_output (N, C, H, W)`` summed over N, H, W
    (accumulated in float64) -> ``(C,)`` in its dtype (copied into ``out`` when given: ``_out.write``)."""
    check_dtype("conv2d_backward_bias", grad_output)
    g = np.ascontiguousarray(grad_output)
    n, c = g.shape[:2]
    g3 = g.reshape(n, c, int(np.prod(g.shape[2:])))
    bounds = chunk_bounds(n, min_chunk=max(1, (1 << 16) // max(1, g3.shape[1] * g3.shape[2])))  # small: 1 chunk
    parts = np.empty((bounds.size - 1, c), dtype=np.float64)
    run(channel_sum_par, channel_sum_chunk, bounds, g3, parts)
    return _out.write(out, np.sum(parts, axis=0).astype(g.dtype), "conv2d_backward_bias")


def conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding, *, out=None, relu=False):
    """Transposed convolution, the adjoint of conv2d with the same weight: ``col2im(W^T @ x) + b``.

    Args: x ``(N, C_in, H, W)``, weight ``(C_in, C_out, kH, kW)``, bias ``(C_out,)`` or None; out, relu: as above.
    Returns: ``(N, C_out, H_out, W_out)``, ``H_out = (H-1)*sh - 2*ph + kH + output_padding[0]``.
    """
    check_dtype("conv_transpose2d_forward", x, weight, bias)
    x, weight = _same_dtype(x, weight)
    n, c_in, h, w = x.shape
    c_out, kh, kw = weight.shape[1:]
    ho, wo = conv_transpose_output_hw(x.shape, (kh, kw), stride, padding, output_padding)
    out = _out.output(out, (n, c_out, ho, wo), x.dtype, "conv_transpose2d_forward")
    b, has_b = _bias_args(bias, x.dtype)
    idx = _tap_index(ho, wo, kh, kw, stride[0], stride[1], padding[0], padding[1], h, w)
    run(*_cpu_epilogue.drivers(relu, gemm_col2im_par, gemm_col2im_chunk), chunk_bounds(n),
        x.reshape(n, c_in, h * w), weight.reshape(c_in, c_out * kh * kw), b, has_b, idx, out, *_blas_args(x.dtype))
    return out


def conv_transpose2d_backward(grad_output, x, weight, stride, padding, *, out=None):
    """Both gradients of conv_transpose2d: ``gx = conv2d_forward(gy, W)`` and ``gW = conv2d_backward_weight(x, gy)``
    (conv2d's weight gradient with the roles of input and output swapped). Both read im2col(gy): each block of
    examples is im2col'ed once for the two GEMMs, with the bits of the two kernels (the same GEMMs on the same
    columns). With fewer than 32 columns (``C_out*kH*kW < 32``) it calls the two kernels.

    Args: grad_output ``(N, C_out, H_out, W_out)``, x ``(N, C_in, H, W)``, weight ``(C_in, C_out, kH, kW)``.
    Returns: ``(gx (N, C_in, H, W), gW (C_in, C_out, kH, kW))`` in the inputs' dtype (``out``: a pair of them or None).
    """
    check_dtype("conv_transpose2d_backward", grad_output, x, weight)
    gx_out, gw_out = _out.pair(out, "conv_transpose2d_backward")
    grad_output, x, weight = _same_dtype(grad_output, x, weight)
    n, c_out, ho, wo = grad_output.shape
    c_in, _, kh, kw = weight.shape
    h, w = x.shape[2:]
    ckk = c_out * kh * kw
    if ckk < 32 or n == 0:  # no folded weight-gradient path to share
        return (conv2d_forward(grad_output, weight, None, stride, padding, out=gx_out),
                conv2d_backward_weight(x, grad_output, (kh, kw), stride, padding, out=gw_out))
    idx = _tap_index(ho, wo, kh, kw, stride[0], stride[1], padding[0], padding[1], h, w)
    bounds = chunk_bounds(n)
    gx = _out.output(gx_out, (n, c_in, h, w), grad_output.dtype, "conv_transpose2d_backward")
    parts = np.empty((bounds.size - 1, c_in, ckk), dtype=grad_output.dtype)
    run(forward_and_weight_grad_par, forward_and_weight_grad_chunk, bounds, grad_output, weight.reshape(c_in, ckk),
        x.reshape(n, c_in, h * w), idx, gx.reshape(n, c_in, h * w), parts, *_blas_args(grad_output.dtype))
    return gx, _out.write(gw_out, _sum_parts(parts, (c_in, c_out, kh, kw)), "conv_transpose2d_backward")


# --------------------------------------------------------------------------- parallel drivers and chunks
# Each ``*_chunk(i, bounds, ...)`` does chunk ``i`` of the batch (examples ``bounds[i]:bounds[i+1]``) with its BLAS
# limited to one thread for the thread running it; each ``*_par(bounds, ...)`` runs every chunk at once, a
# ``prange`` over chunks on Numba's thread pool (no Python between chunks).

_ROW, _N, _T = np.int32(ROW_MAJOR), np.int32(NO_TRANS), np.int32(TRANS)
_ONE_THREAD = np.int32(1)
_WGRAD_BLOCK_BYTES = 1 << 19  # the folded weight gradient's im2col block: half of a 1 MiB L2 cache
# Images of fewer output pixels than this fold a block of examples into each forward / col2im GEMM (per example
# such GEMMs are thin, N = L; measurements in benchmarks/results/cpu_kernels_history.md).
_FOLD_BELOW_L = 64
# the same blocks as the weight gradient's: forward_and_weight_grad_chunk then repeats conv_forward_chunk's GEMMs
_FOLD_BLOCK_BYTES = _WGRAD_BLOCK_BYTES


@njit(cache=True, nogil=True)
def _fold_block(hi_minus_lo, rows, L, itemsize):
    """Examples per folded GEMM: as many as keep a (rows, block*L) column buffer within _FOLD_BLOCK_BYTES."""
    return max(1, min(hi_minus_lo, _FOLD_BLOCK_BYTES // max(1, rows * L * itemsize)))


@njit(cache=True, nogil=True)
def conv_forward_chunk(i, bounds, x, w2, bias, has_bias, idx, y3, gemm, set_local, one, zero):
    """y3[n] = w2 (C_out, CkK) @ im2col(x[n]) (CkK, L) (+ bias) for the chunk's examples: one GEMM per example
    written straight into NCHW or, for small images (L < _FOLD_BELOW_L), one per block of examples
    (``w2 @ cols (CkK, m*L)``) and a copy back to NCHW."""
    set_local(_ONE_THREAD)
    lo, hi = bounds[i], bounds[i + 1]
    c_out, ckk = w2.shape
    L = idx.shape[1]
    block = _fold_block(hi - lo, ckk, L, x.itemsize) if L < _FOLD_BELOW_L else 1
    for start in range(lo, hi, block):
        m = min(block, hi - start)
        cols = np.empty((ckk, m, L), dtype=x.dtype)
        _im2col(x[start:start + m], idx, cols, True)
        _forward_from_cols(w2, cols, y3[start:start + m], gemm, one, zero)
    if has_bias:
        _add_bias_ncl(y3[lo:hi], bias)


@njit(cache=True, nogil=True, parallel=True)
def conv_forward_par(bounds, x, w2, bias, has_bias, idx, y3, gemm, set_local, one, zero):
    for i in prange(bounds.size - 1):
        conv_forward_chunk(np.int64(i), bounds, x, w2, bias, has_bias, idx, y3, gemm, set_local, one, zero)


@njit(cache=True, nogil=True)
def gemm_col2im_chunk(i, bounds, g3, w2, bias, has_bias, idx, out, gemm, set_local, one, zero):
    """out[n] = col2im(w2^T (CkK, C_out) @ g3[n] (C_out, L)) (+ bias) for the chunk's examples: one GEMM per
    example or, for small images (L < _FOLD_BELOW_L), one per block of examples (their gradients packed
    (C_out, m*L)), as in conv_forward_chunk."""
    set_local(_ONE_THREAD)
    lo, hi = bounds[i], bounds[i + 1]
    c_out, ckk = w2.shape
    L = idx.shape[1]
    block = _fold_block(hi - lo, ckk, L, g3.itemsize) if L < _FOLD_BELOW_L else 1
    for start in range(lo, hi, block):
        m = min(block, hi - start)
        if m == 1:
            g = g3[start:start + 1]  # (1, C_out, L): already (C_out, 1*L) in memory
        else:
            g = np.empty((m, c_out, L), dtype=g3.dtype)  # filled as (C_out, m, L): examples side by side
            gt = g.reshape(c_out, m, L)
            for n in range(m):
                for o in range(c_out):
                    for q in range(L):
                        gt[o, n, q] = g3[start + n, o, q]
        cols = np.empty((ckk, m, L), dtype=g3.dtype)
        gemm(_ROW, _T, _N, ckk, m * L, c_out, one, w2.ctypes.data, ckk, g.ctypes.data, m * L, zero,
             cols.ctypes.data, m * L)
        _col2im(cols, idx, bias, has_bias, out[start:start + m], True)


@njit(cache=True, nogil=True, parallel=True)
def gemm_col2im_par(bounds, g3, w2, bias, has_bias, idx, out, gemm, set_local, one, zero):
    for i in prange(bounds.size - 1):
        gemm_col2im_chunk(np.int64(i), bounds, g3, w2, bias, has_bias, idx, out, gemm, set_local, one, zero)


@njit(cache=True, nogil=True)
def _weight_grad_blocks(lo, hi, g3, x, idx, part_t, gemm, one, zero, w2=None, y3=None):
    """part_t (CkK, C_g) += sum over examples lo:hi of im2col(x[n]) (CkK, L) @ g3[n]^T (L, C_g), in blocks of
    examples whose columns (CkK x block*L) stay in cache, one GEMM per block; given ``w2`` and ``y3``, also
    y3[n] (C_w, L) = w2 (C_w, CkK) @ im2col(x[n]) from the same columns (:func:`_forward_from_cols`). (Without
    them Numba prunes the ``is not None`` branch at compile time: the weight gradient alone compiles smaller.)"""
    ckk, c_g = part_t.shape
    L = idx.shape[1]
    block = max(1, min(hi - lo, _WGRAD_BLOCK_BYTES // max(1, ckk * L * x.itemsize)))
    cols = np.empty((ckk, block, L), dtype=x.dtype)
    g = np.empty((c_g, block, L), dtype=g3.dtype)
    for start in range(lo, hi, block):
        m = min(block, hi - start)
        k = m * L
        _im2col(x[start:start + m], idx, cols, True)
        for n in range(m):
            for o in range(c_g):
                for q in range(L):
                    g[o, n, q] = g3[start + n, o, q]
        if m < block:  # the last, shorter block: its columns and gradients packed contiguously
            cm = np.ascontiguousarray(cols[:, :m])
            gm = np.ascontiguousarray(g[:, :m])
        else:
            cm, gm = cols.reshape(ckk, block, L), g.reshape(c_g, block, L)
        if w2 is not None:
            _forward_from_cols(w2, cm, y3[start:start + m], gemm, one, zero)
        gemm(_ROW, _N, _T, ckk, c_g, k, one, cm.ctypes.data, k, gm.ctypes.data, k, one, part_t.ctypes.data, c_g)


@njit(cache=True, nogil=True)
def _forward_from_cols(w2, cols, y3, gemm, one, zero):
    """y3[n] (C_w, L) = w2 (C_w, CkK) @ cols[:, n, :] for the m examples of contiguous columns (CkK, m, L): one
    GEMM per example reading the columns in place (``ldb = m*L``) or, below _FOLD_BELOW_L pixels, one GEMM for
    all m and a copy back to NCHW. (conv_forward_chunk runs its GEMMs through here too, so a transposed
    convolution's shared backward repeats them to the bit.)"""
    ckk, m, L = cols.shape
    c_w = w2.shape[0]
    if L < _FOLD_BELOW_L and m > 1:
        yb = np.empty((c_w, m, L), dtype=y3.dtype)
        gemm(_ROW, _N, _N, c_w, m * L, ckk, one, w2.ctypes.data, ckk, cols.ctypes.data, m * L, zero, yb.ctypes.data,
             m * L)
        for n in range(m):
            for o in range(c_w):
                for q in range(L):
                    y3[n, o, q] = yb[o, n, q]
    else:
        for n in range(m):
            b = cols.ctypes.data + np.uint64(n * L * cols.itemsize)  # example n's (CkK, L) columns, row stride m*L
            gemm(_ROW, _N, _N, c_w, L, ckk, one, w2.ctypes.data, ckk, b, m * L, zero, y3[n].ctypes.data, L)


@njit(cache=True, nogil=True)
def weight_grad_chunk(i, bounds, g3, x, idx, parts, gemm, set_local, one, zero):
    """parts[i] (C_out, CkK) = sum over the chunk's examples of g3[n] (C_out, L) @ im2col(x[n])^T (L, CkK).

    With at least 32 columns (CkK) the batch is folded into the contraction: one GEMM, computed transposed,
    ``cols (CkK, m*L) @ g^T (m*L, C_out)``; with fewer (a 1-channel input), one GEMM per example accumulating into
    parts[i]."""
    set_local(_ONE_THREAD)
    lo, hi = bounds[i], bounds[i + 1]
    c_out, ckk = parts.shape[1], parts.shape[2]
    L = idx.shape[1]
    if ckk < 32:
        cols = np.empty((1, ckk, L), dtype=x.dtype)
        parts[i] = zero  # (an empty chunk, batch 0, sums to zero)
        for n in range(lo, hi):
            _im2col(x[n:n + 1], idx, cols, False)
            gemm(_ROW, _N, _T, c_out, ckk, L, one, g3[n].ctypes.data, L, cols.ctypes.data, L, one,
                 parts[i].ctypes.data, ckk)
        return
    part_t = np.zeros((ckk, c_out), dtype=parts.dtype)
    _weight_grad_blocks(lo, hi, g3, x, idx, part_t, gemm, one, zero)
    for o in range(c_out):
        for j in range(ckk):
            parts[i, o, j] = part_t[j, o]


@njit(cache=True, nogil=True, parallel=True)
def weight_grad_par(bounds, g3, x, idx, parts, gemm, set_local, one, zero):
    for i in prange(bounds.size - 1):
        weight_grad_chunk(np.int64(i), bounds, g3, x, idx, parts, gemm, set_local, one, zero)


@njit(cache=True, nogil=True)
def forward_and_weight_grad_chunk(i, bounds, a, w2, g3, idx, y3, parts, gemm, set_local, one, zero):
    """One im2col of a[n] for two GEMMs: y3[n] (C_w, L) = w2 (C_w, CkK) @ im2col(a[n]) (conv2d_forward of ``a``
    without bias) and parts[i] (C_g, CkK) = sum over the chunk of g3[n] (C_g, L) @ im2col(a[n])^T (conv2d's
    weight gradient for the gradient ``g3`` and the input ``a``). A transposed convolution's backward is exactly
    this pair (``a`` its output gradient, ``g3`` its input). Needs CkK >= 32 (the folded path)."""
    set_local(_ONE_THREAD)
    ckk = parts.shape[2]
    part_t = np.zeros((ckk, parts.shape[1]), dtype=parts.dtype)
    _weight_grad_blocks(bounds[i], bounds[i + 1], g3, a, idx, part_t, gemm, one, zero, w2, y3)
    for o in range(parts.shape[1]):
        for j in range(ckk):
            parts[i, o, j] = part_t[j, o]


@njit(cache=True, nogil=True, parallel=True)
def forward_and_weight_grad_par(bounds, a, w2, g3, idx, y3, parts, gemm, set_local, one, zero):
    for i in prange(bounds.size - 1):
        forward_and_weight_grad_chunk(np.int64(i), bounds, a, w2, g3, idx, y3, parts, gemm, set_local, one, zero)


@njit(cache=True, nogil=True)
def channel_sum_chunk(i, bounds, g3, parts):
    """parts[i, c] = sum over the chunk's examples n and positions q of g3[n, c, q] (float64)."""
    _sum_n_l(g3[bounds[i]:bounds[i + 1]], parts[i])


@njit(cache=True, nogil=True, parallel=True)
def channel_sum_par(bounds, g3, parts):
    for i in prange(bounds.size - 1):
        channel_sum_chunk(np.int64(i), bounds, g3, parts)


# --------------------------------------------------------------------------- jitted passes


@njit(cache=True, nogil=True)
def _tap_index(h, w, kh, kw, sh, sw, ph, pw, ho, wo):
    """idx[(i*kw + j), oh*wo + ow] = flat position in an (h, w) image of the input pixel that tap (i, j) of
    output (oh, ow) reads, or ``h*w`` (one zero cell after the image) where it falls in the padding."""
    idx = np.empty((kh * kw, ho * wo), dtype=np.int32)
    for i in range(kh):
        for j in range(kw):
            r = i * kw + j
            for oh in range(ho):
                ih = oh * sh - ph + i
                for ow in range(wo):
                    iw = ow * sw - pw + j
                    inside = ih >= 0 and ih < h and iw >= 0 and iw < w
                    idx[r, oh * wo + ow] = ih * w + iw if inside else h * w
    return idx


@njit(cache=True, nogil=True)
def _im2col(x, idx, cols, channel_major=False):
    """cols[n, c*kK + r, q] (``channel_major``: cols[c*kK + r, n, q]) = x_pad[n, c] at tap r of output pixel
    q, a gather through ``_tap_index``."""
    n_, c_, h, w = x.shape
    kk, L = idx.shape
    hw = h * w
    img = np.zeros(hw + 1, dtype=x.dtype)  # the image, then the zero cell the padding reads
    for n in range(n_):
        for c in range(c_):
            src = x[n, c].reshape(hw)
            for k in range(hw):
                img[k] = src[k]
            for r in range(kk):
                dst = cols[c * kk + r, n] if channel_major else cols[n, c * kk + r]
                ix = idx[r]
                for q in range(L):
                    dst[q] = img[ix[q]]


@njit(cache=True, nogil=True)
def _col2im(cols, idx, bias, has_bias, out, channel_major=False):
    """out[n, c] = bias[c] + the sum over taps r and output pixels q of cols[n, c*kK + r, q] (``channel_major``:
    cols[c*kK + r, n, q]) at the input pixel ``idx[r, q]`` (the adjoint of :func:`_im2col`; padding taps land
    on a discarded cell)."""
    n_, c_, h, w = out.shape
    kk, L = idx.shape
    hw = h * w
    img = np.empty(hw + 1, dtype=out.dtype)
    for n in range(n_):
        for c in range(c_):
            b = bias[c] if has_bias else 0
            for k in range(hw + 1):
                img[k] = b
            for r in range(kk):
                src = cols[c * kk + r, n] if channel_major else cols[n, c * kk + r]
                ix = idx[r]
                for q in range(L):
                    img[ix[q]] += src[q]
            dst = out[n, c].reshape(hw)
            for k in range(hw):
                dst[k] = img[k]


@njit(cache=True, nogil=True)
def _add_bias_ncl(y, bias):
    """y[n, c, q] += bias[c]."""
    n_, c_, L = y.shape
    for n in range(n_):
        for c in range(c_):
            b = bias[c]
            for q in range(L):
                y[n, c, q] += b


@njit(cache=True, nogil=True, fastmath=True)  # fastmath: lets LLVM vectorise the reductions
def _sum_n_l(g, out):
    """out[c] = sum_{n, q} g[n, c, q], accumulated in float64."""
    n_, c_, L = g.shape
    for c in range(c_):
        out[c] = 0.0
    for n in range(n_):
        for c in range(c_):
            s = 0.0
            for q in range(L):
                s += g[n, c, q]
            out[c] += s
