"""The ReLU epilogue of the Numba CPU forward kernels (``relu=True`` of ``conv2d_forward``,
``conv_transpose2d_forward`` and ``dense_forward``): ``max(y, 0)`` applied by the thread that produced a chunk of
the output, right after that chunk's GEMMs and while it is in cache, instead of a second pass over the whole
output (the compiled step's "bias and ReLU in the conv epilogue" fusion).

* :func:`bias_relu_rows` is the epilogue loop: the bias (where the chunk has not added it) and the ReLU in one
  pass over the chunk's examples, with the bits of the separate ops (``y += b``, then ``0 if y < 0 else y`` as
  :func:`minivae.kernels._cpu_elementwise.relu_forward`: a NaN stays NaN, ``-0.0`` stays ``-0.0``).
* :func:`relu_drivers` wraps a chunk function of :mod:`minivae.kernels._cpu_conv_jit` (``conv_forward_chunk``,
  ``gemm_col2im_chunk``) into a chunk that runs it and then the epilogue on the same examples, and its parallel
  driver (a ``prange`` over the chunks, as the unfused driver).

Why the wrappers are built here and not cached on disk: Numba keys its disk cache on the source file of the cached
function only, and a wrapper compiles the wrapped chunk into itself; a cached wrapper would keep running an old
chunk after ``_cpu_conv_jit.py`` changed. So the wrappers are compiled once per process and dtype on first use
(the chunks themselves load from their own cache); :func:`bias_relu_rows` is called only from here.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from minivae.kernels._cpu_threads import calls_blas


@njit(cache=True, nogil=True)
def bias_relu_rows(y, lo, hi, bias, has_bias, relu, zero):
    """Examples ``lo:hi`` of the C-contiguous ``y (N, C, ...)``: ``y[n, c] += bias[c]`` where ``has_bias``, then
    ``y = 0 if y < 0 else y`` where ``relu``, one pass. ``zero`` has the dtype of ``y``."""
    n_, c_ = y.shape[0], y.shape[1]
    L = y.size // (n_ * c_) if n_ * c_ > 0 else 0
    flat = y.reshape(-1)
    for n in range(lo, hi):
        for c in range(c_):
            base = (n * c_ + c) * L
            if has_bias:
                b = bias[c]
                if relu:
                    for q in range(base, base + L):
                        flat[q] += b
                        v = flat[q]  # (stored first: the sum rounded to y's dtype, as the separate ops)
                        flat[q] = zero if v < zero else v
                else:
                    for q in range(base, base + L):
                        flat[q] += b
            elif relu:
                for q in range(base, base + L):
                    v = flat[q]
                    flat[q] = zero if v < zero else v


@functools.lru_cache(maxsize=None)
def relu_drivers(chunk, bias_in_chunk: bool):
    """``(parallel driver, chunk)`` running ``chunk(i, bounds, a, w2, bias, has_bias, idx, y, gemm, set_local,
    one, zero)`` (a chunk of :mod:`minivae.kernels._cpu_conv_jit` writing examples ``bounds[i]:bounds[i+1]`` of
    ``y (N, C, ...)``) and then the ReLU on those examples. ``bias_in_chunk``: the chunk adds the bias itself
    (``gemm_col2im_chunk`` starts its sums from it, so the bits need it there); otherwise the chunk runs without
    the bias and the epilogue adds it in the ReLU's pass (``conv_forward_chunk`` adds it in a pass of its own).
    Same signature as the wrapped chunk and its driver, so :func:`minivae.kernels._cpu_threads.run` takes them."""
    if bias_in_chunk:
        @njit(nogil=True)
        def relu_chunk(i, bounds, a, w2, bias, has_bias, idx, y, ws, one, zero):
            chunk(i, bounds, a, w2, bias, has_bias, idx, y, ws, one, zero)
            bias_relu_rows(y, bounds[i], bounds[i + 1], bias, False, True, zero)
    else:
        @njit(nogil=True)
        def relu_chunk(i, bounds, a, w2, bias, has_bias, idx, y, ws, one, zero):
            chunk(i, bounds, a, w2, bias, False, idx, y, ws, one, zero)
            bias_relu_rows(y, bounds[i], bounds[i + 1], bias, has_bias, True, zero)

    @calls_blas
    @njit(nogil=True, parallel=True)
    def relu_par(bounds, a, w2, bias, has_bias, idx, y, ws, one, zero):
        for i in prange(bounds.size - 1):
            relu_chunk(np.int64(i), bounds, a, w2, bias, has_bias, idx, y, ws, one, zero)

    return relu_par, relu_chunk


def drivers(relu: bool, par, chunk, bias_in_chunk: bool):
    """``(par, chunk)`` as given, or with ``relu`` their ReLU-epilogue twins from :func:`relu_drivers`."""
    return relu_drivers(chunk, bias_in_chunk) if relu else (par, chunk)
