"""The Numba CPU convolution kernels: what each computes (shapes, dtypes, output arrays), the chunks of the batch
and the workspaces; the jitted work they launch (per-chunk im2col + GEMM, col2im) is in
:mod:`minivae.kernels._cpu_conv_jit`.

Each kernel checks its dtypes, computes its output size once, builds the tap table of its geometry
(``_tap_index``), splits the batch into a few fixed chunks per thread
(:func:`minivae.kernels._cpu_threads.chunk_bounds`) and runs them with :func:`minivae.kernels._cpu_threads.run`:
one parallel jitted function per call, each chunk's GEMMs on a BLAS limited to one thread. The weight and bias
gradients come back as one partial sum per chunk, added here in chunk order, so the bits do not depend on the
thread timing.

Workspaces: the chunks' column buffers (im2col, the packed gradients of col2im, the weight gradient's partial
sums) come from one scratch array per thread and dtype (:func:`_workspace`), grown to the largest call and reused
by the next ones, so that a training step does not allocate, fault in and free them again at every call.

Conventions (as :mod:`minivae.kernels.reference`): NCHW; conv2d weight ``(C_out, C_in, kH, kW)``, conv_transpose2d
weight ``(C_in, C_out, kH, kW)``; ``stride``, ``padding``, ``output_padding``, ``kernel_size`` are ``(h, w)`` int
pairs. float32 and float64 (mixed operands are promoted as NumPy's matmul does; other dtypes: TypeError);
non-contiguous inputs are copied to C order.
"""
from __future__ import annotations

import threading

import numpy as np

from minivae.kernels import _out
from minivae.kernels._cpu_conv_jit import (
    _tap_index,
    channel_sum_chunk,
    conv_forward_chunk,
    forward_and_weight_grad_chunk,
    forward_words,
    gemm_col2im_chunk,
    weight_grad_chunk,
    weight_grad_words,
)
from minivae.kernels._cpu_threads import DTYPES, check_dtype, chunk_bounds, run
from minivae.kernels.conv_arith import conv_output_size, conv_transpose_output_hw

_scratch = threading.local()  # .arrays: {dtype: 1-D scratch array} of this thread

# --------------------------------------------------------------------------- the kernels


def _same_dtype(*arrays):
    """The arrays C-contiguous in their common dtype (``np.result_type``): the jitted GEMM reads raw memory."""
    dtype = np.dtype(np.result_type(*arrays).type)  # native byte order
    return tuple(np.ascontiguousarray(a, dtype=dtype) for a in arrays)


def _bias_args(bias, dtype):
    if bias is None:
        return np.zeros(1, dtype=dtype), False
    return np.ascontiguousarray(bias, dtype=dtype), True


def _workspace(bounds, words, dtype):
    """A ``(chunks, words)`` scratch array in ``dtype`` for one call (contents undefined): a view of this thread's
    scratch array for ``dtype``, grown when a call needs more and reused by the calls after it."""
    arrays = getattr(_scratch, "arrays", None)
    if arrays is None:
        arrays = _scratch.arrays = {}
    need = (bounds.size - 1) * max(1, words)
    flat = arrays.get(dtype)
    if flat is None or flat.size < need:
        flat = arrays[dtype] = np.empty(need, dtype=dtype)
    return flat[:need].reshape(bounds.size - 1, max(1, words))


def _blas_args(dtype, bounds, words):
    """(workspace, one, zero) for the chunks of a call in ``dtype`` (see :func:`_workspace`); TypeError for a dtype
    without a GEMM (integers: check_dtype lets non-floating arrays pass)."""
    dtype = np.dtype(dtype)
    if dtype not in DTYPES:
        raise TypeError(f"numba CPU convolution kernels take float32 and float64 arrays, got {dtype}: convert with "
                        f'.astype(np.float32), or run kernels.use("reference")')
    return _workspace(bounds, words, dtype), dtype.type(1), dtype.type(0)


def _most(bounds):
    """The most examples in one chunk of ``bounds`` (chunk sizes differ by at most one)."""
    k = bounds.size - 1
    return -(-int(bounds[-1]) // k)


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
    bounds = chunk_bounds(n)
    words = forward_words(_most(bounds), c_in * kh * kw, c_out, ho * wo, x.itemsize)
    run(conv_forward_chunk, bounds, x, weight.reshape(c_out, c_in * kh * kw), b, has_b, idx,
        out.reshape(n, c_out, ho * wo), *_blas_args(x.dtype, bounds, words), bool(relu))
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
    words = weight_grad_words(_most(bounds), c_in * kh * kw, c_out, ho * wo, x.itemsize)
    run(weight_grad_chunk, bounds, grad_output.reshape(n, c_out, ho * wo), x, idx, parts,
        *_blas_args(grad_output.dtype, bounds, words))
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
    run(channel_sum_chunk, bounds, g3, parts)
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
    bounds = chunk_bounds(n)
    words = forward_words(_most(bounds), c_out * kh * kw, c_in, h * w, x.itemsize)
    run(gemm_col2im_chunk, bounds, x.reshape(n, c_in, h * w), weight.reshape(c_in, c_out * kh * kw),
        b, has_b, idx, out, *_blas_args(x.dtype, bounds, words), bool(relu))
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
    words = weight_grad_words(_most(bounds), ckk, c_in, h * w, x.itemsize, c_w=c_in)
    run(forward_and_weight_grad_chunk, bounds, grad_output, weight.reshape(c_in, ckk),
        x.reshape(n, c_in, h * w), idx, gx.reshape(n, c_in, h * w), parts,
        *_blas_args(grad_output.dtype, bounds, words))
    return gx, _out.write(gw_out, _sum_parts(parts, (c_in, c_out, kh, kw)), "conv_transpose2d_backward")
