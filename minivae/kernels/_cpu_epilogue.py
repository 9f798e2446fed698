"""The ReLU epilogue of the Numba CPU forward kernels (``relu=True`` of ``conv2d_forward``,
``conv_transpose2d_forward`` and ``dense_forward``): ``max(y, 0)`` applied by the thread that produced a chunk of
the output, right after that chunk's GEMMs and while it is in cache, instead of a second pass over the whole
output (the compiled step's "bias and ReLU in the conv epilogue" fusion).

* :func:`bias_relu_rows` is the epilogue loop: the bias (where the chunk has not added it) and the ReLU in one
  pass over the chunk's examples, with the bits of the separate ops (``y += b``, then ``0 if y < 0 else y`` as
  :func:`minivae.kernels._cpu_elementwise.relu_forward`: a NaN stays NaN, ``-0.0`` stays ``-0.0``).
* ``conv_forward_relu_chunk`` / ``gemm_col2im_relu_chunk`` run a chunk of :mod:`minivae.kernels._cpu_conv`
  (``conv_forward_chunk``, ``gemm_col2im_chunk``) and then the epilogue on the same examples; their ``*_par``
  drivers run every chunk at once (a ``prange``, as the unfused drivers). :func:`drivers` picks them.

Disk cache: Numba keys a cached function on the source of its own file only, and these wrappers compile the
wrapped chunks into themselves, so their cache is keyed also on the content of every ``_cpu_*.py`` kernel module
(:func:`_cache_keyed_on_kernel_sources`): a change to a chunk recompiles them instead of running an old copy.
"""
from __future__ import annotations

import hashlib
import pathlib

import numpy as np
from numba import njit, prange

from minivae.kernels import _cpu_conv  # (a cycle: _cpu_conv imports this module; only attributes at call time)


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


def _cache_keyed_on_kernel_sources(dispatcher):
    """Enable ``dispatcher``'s disk cache keyed on its own file and on the bytes of every ``_cpu_*.py`` module next
    to this one (the chunks it compiles in). Where this Numba's cache internals differ: no disk cache (compiled once
    per process) rather than a stale one."""
    try:
        digest = hashlib.sha256()
        for path in sorted(pathlib.Path(__file__).parent.glob("_cpu_*.py")):
            digest.update(path.name.encode() + path.read_bytes())
        dispatcher.enable_caching()
        cache_file = dispatcher._cache._cache_file  # (Numba's cache, private API; as cpu.cache_is_cold reads it)
        cache_file._source_stamp = (cache_file._source_stamp, digest.hexdigest())
    except (AttributeError, OSError):
        from numba.core.caching import NullCache

        dispatcher._cache = NullCache()
    return dispatcher


@njit(nogil=True)
def conv_forward_relu_chunk(i, bounds, x, w2, bias, has_bias, idx, y3, gemm, set_local, one, zero):
    """``conv_forward_chunk`` without its bias pass, then the bias and the ReLU in one pass over its examples."""
    _cpu_conv.conv_forward_chunk(i, bounds, x, w2, bias, False, idx, y3, gemm, set_local, one, zero)
    bias_relu_rows(y3, bounds[i], bounds[i + 1], bias, has_bias, True, zero)


@njit(nogil=True, parallel=True)
def conv_forward_relu_par(bounds, x, w2, bias, has_bias, idx, y3, gemm, set_local, one, zero):
    for i in prange(bounds.size - 1):
        conv_forward_relu_chunk(np.int64(i), bounds, x, w2, bias, has_bias, idx, y3, gemm, set_local, one, zero)


@njit(nogil=True)
def gemm_col2im_relu_chunk(i, bounds, g3, w2, bias, has_bias, idx, out, gemm, set_local, one, zero):
    """``gemm_col2im_chunk`` (its sums start from the bias, so the bias stays there), then the ReLU on its
    examples."""
    _cpu_conv.gemm_col2im_chunk(i, bounds, g3, w2, bias, has_bias, idx, out, gemm, set_local, one, zero)
    bias_relu_rows(out, bounds[i], bounds[i + 1], bias, False, True, zero)


@njit(nogil=True, parallel=True)
def gemm_col2im_relu_par(bounds, g3, w2, bias, has_bias, idx, out, gemm, set_local, one, zero):
    for i in prange(bounds.size - 1):
        gemm_col2im_relu_chunk(np.int64(i), bounds, g3, w2, bias, has_bias, idx, out, gemm, set_local, one, zero)


for _d in (conv_forward_relu_chunk, conv_forward_relu_par, gemm_col2im_relu_chunk, gemm_col2im_relu_par):
    _cache_keyed_on_kernel_sources(_d)

_RELU_TWINS = {"conv_forward_chunk": (conv_forward_relu_par, conv_forward_relu_chunk),
               "gemm_col2im_chunk": (gemm_col2im_relu_par, gemm_col2im_relu_chunk)}


def drivers(relu: bool, par, chunk):
    """``(par, chunk)`` as given (a driver and chunk of :mod:`minivae.kernels._cpu_conv`) or, with ``relu``, their
    twins with the ReLU epilogue (same arguments)."""
    return _RELU_TWINS[chunk.__name__] if relu else (par, chunk)
