"""The jitted half of the Numba CPU convolutions (:mod:`minivae.kernels._cpu_conv` holds the kernels that launch
it): the per-chunk work, and the im2col / col2im passes that work uses.

A convolution is im2col + GEMM (Chellapilla et al. 2006); its input gradient, and the forward pass of a transposed
convolution, is GEMM + col2im, the adjoint of im2col (Dumoulin & Visin 2016, section 4):

* ``_im2col`` fills a contiguous ``(C*kH*kW, m*L)`` column buffer for a block of ``m`` examples by a gather
  through a table of source positions (``_tap_index``, one per call; padding reads a zero cell);
* the GEMMs are OpenBLAS's, called from jitted code (:func:`minivae.kernels._blas.gemm`): per example
  ``W @ cols`` written straight into NCHW, or, below :data:`_FOLD_BELOW_L` output pixels, one GEMM per block of
  examples and a copy back; ``W^T @ gy`` followed at once by ``_col2im`` of that block; the weight gradient
  folds a block of examples into one GEMM (``K = m*L``) where ``C*kH*kW >= 32``;
* ``_col2im`` scatters columns back to NCHW through the same table, the bias fused.

Each ``*_chunk(i, bounds, ...)`` does chunk ``i`` of the batch (examples ``bounds[i]:bounds[i+1]``);
:func:`minivae.kernels._cpu_threads.run` runs every chunk of a call at once (a ``prange`` over the chunks on Numba's
thread pool, no Python between chunks) and holds the BLAS at one thread for the chunks marked ``calls_blas``. No
two chunks write the same output element (the weight and bias gradients: one partial sum per chunk, added in chunk
order by the caller), so the bits do not depend on the thread timing.

Workspaces: chunk ``i`` takes its column buffers from row ``i`` of a ``(chunks, words)`` scratch array ``ws`` that
the caller keeps between calls (:func:`minivae.kernels._cpu_conv._workspace`) instead of allocating them per block;
the ``*_words`` functions below give ``words`` for a call, from the same block sizes as the chunks.

Every jitted function is compiled once per dtype on first use and cached on disk (``cache=True``). Numba's cache
of a function is keyed on its own file only: the jitted code a chunk calls lives in this file so that an edit here
recompiles them all (an edit to :func:`minivae.kernels._blas.gemm` or to
:func:`minivae.kernels._cpu_epilogue.bias_relu_rows`, the ReLU epilogue, needs the cache cleared:
``__pycache__/*.nb[ic]``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from minivae.kernels._blas import NO_TRANS as _N
from minivae.kernels._blas import TRANS as _T
from minivae.kernels._blas import gemm
from minivae.kernels._cpu_epilogue import bias_relu_rows
from minivae.kernels._cpu_threads import calls_blas

_WGRAD_BLOCK_BYTES = 1 << 19  # the folded weight gradient's im2col block: half of a 1 MiB L2 cache
# Images of fewer output pixels than this fold a block of examples into each forward / col2im GEMM (per example
# such GEMMs are thin, N = L; measurements in benchmarks/results/cpu_kernels_history.md).
_FOLD_BELOW_L = 64
# the same blocks as the weight gradient's: forward_and_weight_grad_chunk then repeats conv_forward_chunk's GEMMs
_FOLD_BLOCK_BYTES = _WGRAD_BLOCK_BYTES

# --------------------------------------------------------------------------- workspace sizes (Python)


def _block(max_chunk, rows, L, itemsize, block_bytes):
    """The most examples a chunk of ``max_chunk`` examples puts in one block (as ``_fold_block`` and
    ``_weight_grad_blocks`` compute it)."""
    return max(1, min(max_chunk, block_bytes // max(1, rows * L * itemsize)))


def forward_words(max_chunk, ckk, c_w, L, itemsize):
    """Scratch elements per chunk of conv_forward_chunk and gemm_col2im_chunk: a block's columns ``(CkK, m*L)`` and,
    for small images, its ``(C_w, m*L)`` GEMM result (packed gradients for the col2im)."""
    m = _block(max_chunk, ckk, L, itemsize, _FOLD_BLOCK_BYTES) if L < _FOLD_BELOW_L else 1
    return (ckk + (c_w if L < _FOLD_BELOW_L else 0)) * m * L


def weight_grad_words(max_chunk, ckk, c_g, L, itemsize, c_w=0):
    """Scratch elements per chunk of weight_grad_chunk (``c_w = 0``) and forward_and_weight_grad_chunk (``c_w``:
    the forward's output channels): the partial sum ``(CkK, C_g)``, a block's columns and gradients and, for small
    images, the forward's ``(C_w, m*L)`` GEMM result."""
    m = _block(max_chunk, ckk, L, itemsize, _WGRAD_BLOCK_BYTES)
    return ckk * c_g + (ckk + c_g + (c_w if L < _FOLD_BELOW_L else 0)) * m * L


# --------------------------------------------------------------------------- chunks


@njit(cache=True, nogil=True)
def _fold_block(hi_minus_lo, rows, L, itemsize):
    """Examples per folded GEMM: as many as keep a (rows, block*L) column buffer within _FOLD_BLOCK_BYTES."""
    return max(1, min(hi_minus_lo, _FOLD_BLOCK_BYTES // max(1, rows * L * itemsize)))


@calls_blas
@njit(cache=True, nogil=True)
def conv_forward_chunk(i, bounds, x, w2, bias, has_bias, idx, y3, ws, one, zero, relu):
    """y3[n] = w2 (C_out, CkK) @ im2col(x[n]) (CkK, L) (+ bias) for the chunk's examples: one GEMM per example
    written straight into NCHW or, for small images (L < _FOLD_BELOW_L), one per block of examples
    (``w2 @ cols (CkK, m*L)``) and a copy back to NCHW. With ``relu``, the bias and the ReLU in one pass over the
    chunk's examples while they are in cache (the epilogue, :mod:`minivae.kernels._cpu_epilogue`)."""
    lo, hi = bounds[i], bounds[i + 1]
    c_out, ckk = w2.shape
    L = idx.shape[1]
    block = _fold_block(hi - lo, ckk, L, x.itemsize) if L < _FOLD_BELOW_L else 1
    w = ws[i]
    for start in range(lo, hi, block):
        m = min(block, hi - start)
        cols = w[:ckk * m * L].reshape(ckk, m, L)
        _im2col(x[start:start + m], idx, cols, True)
        _forward_from_cols(w2, cols, y3[start:start + m], w[ckk * block * L:], one, zero)
    if relu:
        bias_relu_rows(y3, lo, hi, bias, has_bias, True, zero)
    elif has_bias:
        _add_bias_ncl(y3[lo:hi], bias)



@calls_blas
@njit(cache=True, nogil=True)
def gemm_col2im_chunk(i, bounds, g3, w2, bias, has_bias, idx, out, ws, one, zero, relu):
    """out[n] = col2im(w2^T (CkK, C_out) @ g3[n] (C_out, L)) (+ bias) for the chunk's examples: one GEMM per
    example or, for small images (L < _FOLD_BELOW_L), one per block of examples (their gradients packed
    (C_out, m*L)), as in conv_forward_chunk. The bias is where col2im's sums start (the bits need it there); with
    ``relu``, the ReLU follows on the chunk's examples while they are in cache."""
    lo, hi = bounds[i], bounds[i + 1]
    c_out, ckk = w2.shape
    L = idx.shape[1]
    block = _fold_block(hi - lo, ckk, L, g3.itemsize) if L < _FOLD_BELOW_L else 1
    w = ws[i]
    for start in range(lo, hi, block):
        m = min(block, hi - start)
        cols = w[:ckk * m * L].reshape(ckk, m, L)
        if m == 1:
            g = g3[start:start + 1]  # (1, C_out, L): already (C_out, 1*L) in memory
        else:
            g = w[ckk * block * L:ckk * block * L + m * c_out * L].reshape(m, c_out, L)  # filled as (C_out, m, L)
            gt = g.reshape(c_out, m, L)
            for n in range(m):
                for o in range(c_out):
                    for q in range(L):
                        gt[o, n, q] = g3[start + n, o, q]
        gemm(_T, _N, ckk, m * L, c_out, one, w2.ctypes.data, ckk, g.ctypes.data, m * L, zero,
             cols.ctypes.data, m * L)
        _col2im(cols, idx, bias, has_bias, out[start:start + m], True)
    if relu:
        bias_relu_rows(out, lo, hi, bias, False, True, zero)



@njit(cache=True, nogil=True)
def _weight_grad_blocks(lo, hi, g3, x, idx, part_t, w, one, zero, w2=None, y3=None):
    """part_t (CkK, C_g) += sum over examples lo:hi of im2col(x[n]) (CkK, L) @ g3[n]^T (L, C_g), in blocks of
    examples whose columns (CkK x block*L) stay in cache, one GEMM per block, the blocks' buffers taken from the
    scratch ``w``; given ``w2`` and ``y3``, also y3[n] (C_w, L) = w2 (C_w, CkK) @ im2col(x[n]) from the same columns
    (:func:`_forward_from_cols`). (Without them Numba prunes the ``is not None`` branch at compile time: the weight
    gradient alone compiles smaller.)"""
    ckk, c_g = part_t.shape
    L = idx.shape[1]
    block = max(1, min(hi - lo, _WGRAD_BLOCK_BYTES // max(1, ckk * L * x.itemsize)))
    n_cols, n_g = ckk * block * L, c_g * block * L
    for start in range(lo, hi, block):
        m = min(block, hi - start)
        k = m * L
        cols = w[:ckk * k].reshape(ckk, m, L)  # the last, shorter block packed contiguously too
        g = w[n_cols:n_cols + c_g * k].reshape(c_g, m, L)
        _im2col(x[start:start + m], idx, cols, True)
        for n in range(m):
            for o in range(c_g):
                for q in range(L):
                    g[o, n, q] = g3[start + n, o, q]
        if w2 is not None:
            _forward_from_cols(w2, cols, y3[start:start + m], w[n_cols + n_g:], one, zero)
        gemm(_N, _T, ckk, c_g, k, one, cols.ctypes.data, k, g.ctypes.data, k, one, part_t.ctypes.data, c_g)


@njit(cache=True, nogil=True)
def _forward_from_cols(w2, cols, y3, scratch, one, zero):
    """y3[n] (C_w, L) = w2 (C_w, CkK) @ cols[:, n, :] for the m examples of contiguous columns (CkK, m, L): one
    GEMM per example reading the columns in place (``ldb = m*L``) or, below _FOLD_BELOW_L pixels, one GEMM for
    all m into ``scratch`` and a copy back to NCHW. (conv_forward_chunk runs its GEMMs through here too, so a
    transposed convolution's shared backward repeats them to the bit.)"""
    ckk, m, L = cols.shape
    c_w = w2.shape[0]
    if L < _FOLD_BELOW_L and m > 1:
        yb = scratch[:c_w * m * L].reshape(c_w, m, L)
        gemm(_N, _N, c_w, m * L, ckk, one, w2.ctypes.data, ckk, cols.ctypes.data, m * L, zero, yb.ctypes.data,
             m * L)
        for n in range(m):
            for o in range(c_w):
                for q in range(L):
                    y3[n, o, q] = yb[o, n, q]
    else:
        for n in range(m):
            b = cols.ctypes.data + np.uint64(n * L * cols.itemsize)  # example n's (CkK, L) columns, row stride m*L
            gemm(_N, _N, c_w, L, ckk, one, w2.ctypes.data, ckk, b, m * L, zero, y3[n].ctypes.data, L)


@calls_blas
@njit(cache=True, nogil=True)
def weight_grad_chunk(i, bounds, g3, x, idx, parts, ws, one, zero):
    """parts[i] (C_out, CkK) = sum over the chunk's examples of g3[n] (C_out, L) @ im2col(x[n])^T (L, CkK).

    With at least 32 columns (CkK) the batch is folded into the contraction: one GEMM, computed transposed,
    ``cols (CkK, m*L) @ g^T (m*L, C_out)``; with fewer (a 1-channel input), one GEMM per example accumulating into
    parts[i]."""
    lo, hi = bounds[i], bounds[i + 1]
    c_out, ckk = parts.shape[1], parts.shape[2]
    L = idx.shape[1]
    w = ws[i]
    if ckk < 32:
        cols = w[:ckk * L].reshape(1, ckk, L)
        parts[i] = zero  # (an empty chunk, batch 0, sums to zero)
        for n in range(lo, hi):
            _im2col(x[n:n + 1], idx, cols, False)
            gemm(_N, _T, c_out, ckk, L, one, g3[n].ctypes.data, L, cols.ctypes.data, L, one,
                 parts[i].ctypes.data, ckk)
        return
    part_t = w[:ckk * c_out].reshape(ckk, c_out)
    part_t[:] = zero
    _weight_grad_blocks(lo, hi, g3, x, idx, part_t, w[ckk * c_out:], one, zero)
    for o in range(c_out):
        for j in range(ckk):
            parts[i, o, j] = part_t[j, o]



@calls_blas
@njit(cache=True, nogil=True)
def forward_and_weight_grad_chunk(i, bounds, a, w2, g3, idx, y3, parts, ws, one, zero):
    """One im2col of a[n] for two GEMMs: y3[n] (C_w, L) = w2 (C_w, CkK) @ im2col(a[n]) (conv2d_forward of ``a``
    without bias) and parts[i] (C_g, CkK) = sum over the chunk of g3[n] (C_g, L) @ im2col(a[n])^T (conv2d's
    weight gradient for the gradient ``g3`` and the input ``a``). A transposed convolution's backward is exactly
    this pair (``a`` its output gradient, ``g3`` its input). Needs CkK >= 32 (the folded path)."""
    ckk, c_g = parts.shape[2], parts.shape[1]
    w = ws[i]
    part_t = w[:ckk * c_g].reshape(ckk, c_g)
    part_t[:] = zero
    _weight_grad_blocks(bounds[i], bounds[i + 1], g3, a, idx, part_t, w[ckk * c_g:], one, zero, w2, y3)
    for o in range(c_g):
        for j in range(ckk):
            parts[i, o, j] = part_t[j, o]



@njit(cache=True, nogil=True)
def channel_sum_chunk(i, bounds, g3, parts):
    """parts[i, c] = sum over the chunk's examples n and positions q of g3[n, c, q] (float64)."""
    _sum_n_l(g3[bounds[i]:bounds[i + 1]], parts[i])



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
