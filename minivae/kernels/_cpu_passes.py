"""The jitted passes of the Numba CPU kernels (:mod:`minivae.kernels.cpu` wraps them): im2col/col2im gathers and
scatters through a table of source positions, bias passes and sums, and the fused elementwise loops of
reparameterize + KL and of BCE with logits. Serial and ``nogil``: the batch is split across threads by
``map_chunks`` (see ``_cpu_threads.py``). Each function compiles once per dtype on first use and is cached on
disk (``cache=True``; Numba keys the cache on this file).
"""
from __future__ import annotations

import numpy as np
from numba import njit

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
def _im2col(x, idx, cols):
    """cols[n, c*kK + r, l] = x_pad[n, c] at tap r of output pixel l, a gather through ``_tap_index``."""
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
                dst = cols[n, c * kk + r]
                ix = idx[r]
                for l in range(L):
                    dst[l] = img[ix[l]]


@njit(cache=True, nogil=True)
def _col2im(cols, idx, bias, has_bias, out):
    """out[n, c] = bias[c] + the sum over taps r and output pixels l of cols[n, c*kK + r, l] at the input
    pixel ``idx[r, l]`` (the adjoint of :func:`_im2col`; padding taps land on a discarded cell)."""
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
                src = cols[n, c * kk + r]
                ix = idx[r]
                for l in range(L):
                    img[ix[l]] += src[l]
            dst = out[n, c].reshape(hw)
            for k in range(hw):
                dst[k] = img[k]


@njit(cache=True, nogil=True)
def _add_bias_ncl(y, bias):
    """y[n, c, l] += bias[c]."""
    n_, c_, L = y.shape
    for n in range(n_):
        for c in range(c_):
            b = bias[c]
            for l in range(L):
                y[n, c, l] += b


@njit(cache=True, nogil=True, fastmath=True)  # fastmath: lets LLVM vectorise the reductions
def _sum_n_l(g, out):
    """out[c] = sum_{n, l} g[n, c, l], accumulated in float64."""
    n_, c_, L = g.shape
    for c in range(c_):
        out[c] = 0.0
    for n in range(n_):
        for c in range(c_):
            s = 0.0
            for l in range(L):
                s += g[n, c, l]
            out[c] += s


@njit(cache=True, nogil=True, fastmath=True)
def _sum_rows(g, out):
    """out[j] = sum_n g[n, j], accumulated in float64."""
    n_, d = g.shape
    acc = np.zeros(d, dtype=np.float64)
    for n in range(n_):
        for j in range(d):
            acc[j] += g[n, j]
    for j in range(d):
        out[j] = acc[j]


@njit(cache=True, nogil=True)
def _add_bias_rows(y, bias):
    n_, d = y.shape
    for n in range(n_):
        for j in range(d):
            y[n, j] += bias[j]


@njit(cache=True, nogil=True)
def _reparameterize_kl_fwd(mu, logvar, eps, z, kl):
    n_, d = mu.shape
    for n in range(n_):
        s = 0.0
        for j in range(d):
            lv = logvar[n, j]
            std = np.exp(0.5 * lv)
            m = mu[n, j]
            z[n, j] = m + std * eps[n, j]
            s += m * m + std * std - 1.0 - lv
        kl[n] = 0.5 * s


@njit(cache=True, nogil=True)
def _reparameterize_kl_bwd(gz, gkl, mu, logvar, eps, g_mu, g_logvar):
    n_, d = mu.shape
    for n in range(n_):
        gk = gkl[n]
        for j in range(d):
            std = np.exp(0.5 * logvar[n, j])
            g = gz[n, j]
            g_mu[n, j] = g + gk * mu[n, j]
            g_logvar[n, j] = 0.5 * g * eps[n, j] * std + 0.5 * gk * (std * std - 1.0)


@njit(cache=True, nogil=True)
def _bce_fwd(x, t, zero, one, out):
    # ``zero``/``one`` have the dtype of x, so float32 stays float32 (a Python literal would promote to
    # float64). log1p(y) as log(1+y) * y / ((1+y) - 1) (Goldberg 1991, "What every computer scientist
    # should know about floating-point arithmetic", Theorem 4): Numba's scalar log1p is ~8x slower than log.
    for k in range(x.size):
        v = x[k]
        y = np.exp(-abs(v))
        u = one + y
        softplus = y if u == one else np.log(u) * (y / (u - one))
        out[k] = (v if v > zero else zero) - v * t[k] + softplus


@njit(cache=True, nogil=True)
def _bce_bwd(gy, x, t, zero, one, out):
    # sigmoid(v) = 1 / (1 + exp(-v)) for v >= 0, exp(v) / (1 + exp(v)) below: exp never overflows
    for k in range(x.size):
        v = x[k]
        y = np.exp(-abs(v))
        r = one / (one + y)
        out[k] = gy[k] * ((r if v >= zero else y * r) - t[k])




@njit(cache=True, nogil=True)
def _relu_fwd(x, zero, out):
    """out = max(x, 0) on flat arrays (a NaN stays NaN, as np.maximum); ``zero`` has the arrays' dtype."""
    for k in range(x.size):
        v = x[k]
        out[k] = zero if v < zero else v


@njit(cache=True, nogil=True)
def _relu_bwd(gy, y, zero, out):
    """out = gy where y > 0, else 0, on flat arrays; ``zero`` has the dtype of ``gy``."""
    for k in range(y.size):
        out[k] = gy[k] if y[k] > zero else zero
