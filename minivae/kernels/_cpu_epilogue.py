"""The ReLU epilogue of the Numba CPU forward kernels (``relu=True`` of ``conv2d_forward``,
``conv_transpose2d_forward`` and ``dense_forward``): ``max(y, 0)`` applied by the thread that produced a chunk of
the output, right after that chunk's GEMMs and while it is in cache, instead of a second pass over the whole
output (the compiled step's "bias and ReLU in the conv epilogue" fusion).

:func:`bias_relu_rows` is the epilogue loop: the bias (where the chunk has not added it) and the ReLU in one pass
over the chunk's examples, with the bits of the separate ops (``y += b``, then ``0 if y < 0 else y`` as
:func:`minivae.kernels._cpu_elementwise.relu_forward`: a NaN stays NaN, ``-0.0`` stays ``-0.0``). The convolutions'
chunks call it after their GEMMs when given ``relu`` (``conv_forward_chunk``, ``gemm_col2im_chunk`` in
:mod:`minivae.kernels._cpu_conv_jit`); dense calls it from :mod:`._cpu_elementwise`.
"""
from __future__ import annotations

from numba import njit


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
