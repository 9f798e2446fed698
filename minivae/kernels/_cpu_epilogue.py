"""The ReLU epilogue of the Numba CPU forward kernels (``relu=True`` of ``conv2d_forward``,
``conv_transpose2d_forward`` and ``dense_forward``): ``max(y, 0)`` applied by the thread that produced a chunk of
the output, right after that chunk's GEMMs and while it is in cache, instead of a second pass over the whole
output (the compiled step's "bias and ReLU in the conv epilogue" fusion).

* :func:`bias_relu_rows` is the epilogue loop: the bias (where the chunk has not added it) and the ReLU in one
  pass over the chunk's examples, with the bits of the separate ops (``y += b``, then ``0 if y < 0 else y`` as
  :func:`minivae.kernels._cpu_elementwise.relu_forward`: a NaN stays NaN, ``-0.0`` stays ``-0.0``).
* :func:`drivers` picks, for ``relu=True``, the ReLU twin of a forward chunk and its parallel driver: a chunk that
  runs ``conv_forward_chunk`` or ``gemm_col2im_chunk`` and then the epilogue on the same examples.

The twins live beside the chunks in :mod:`minivae.kernels._cpu_conv_jit` and are cached on disk (``cache=True``)
like them: Numba keys its disk cache on the source file of the cached function only, and a twin compiles the
chunk into itself, so a twin in another file would keep running an old chunk after ``_cpu_conv_jit.py`` changed.
(Built here per process, as they first were, they compiled for 9-11 s at every start of a training process.)
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


def drivers(relu: bool, par, chunk, bias_in_chunk: bool):
    """``(par, chunk)`` as given, or with ``relu`` their ReLU-epilogue twins (``chunk`` then ``max(y, 0)`` on
    the chunk's examples; the bias added by the chunk where ``bias_in_chunk``, else in the ReLU's pass), which
    live beside the chunks in :mod:`minivae.kernels._cpu_conv_jit` and are cached on disk with them."""
    if not relu:
        return par, chunk
    from minivae.kernels._cpu_conv_jit import RELU_TWINS  # (here: that module imports bias_relu_rows from this one)

    twin_par, twin_chunk = RELU_TWINS[chunk]
    return twin_par, twin_chunk
