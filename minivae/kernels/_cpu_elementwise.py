"""The jitted elementwise loops of the Numba CPU kernels (:mod:`minivae.kernels.cpu` wraps them): the dense
layer's bias pass and sum, reparameterize + KL forward and backward in one pass each, BCE with logits and ReLU
(serial, ``nogil``), and the chunks and parallel drivers of the large ones (ReLU, BCE; run by
:func:`minivae.kernels._cpu_threads.run`, as the convolutions' in :mod:`minivae.kernels._cpu_passes`).
Each compiles once per dtype on first use and is cached on disk (``cache=True``).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


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


# --------------------------------------------------------------------------- chunks and their parallel drivers

@njit(cache=True, nogil=True)
def relu_forward_chunk(i, bounds, x, zero, out):
    lo, hi = bounds[i], bounds[i + 1]
    _relu_fwd(x[lo:hi], zero, out[lo:hi])


@njit(cache=True, nogil=True, parallel=True)
def relu_forward_par(bounds, x, zero, out):
    for i in prange(bounds.size - 1):
        relu_forward_chunk(np.int64(i), bounds, x, zero, out)


@njit(cache=True, nogil=True)
def relu_backward_chunk(i, bounds, gy, y, zero, out):
    lo, hi = bounds[i], bounds[i + 1]
    _relu_bwd(gy[lo:hi], y[lo:hi], zero, out[lo:hi])


@njit(cache=True, nogil=True, parallel=True)
def relu_backward_par(bounds, gy, y, zero, out):
    for i in prange(bounds.size - 1):
        relu_backward_chunk(np.int64(i), bounds, gy, y, zero, out)


@njit(cache=True, nogil=True)
def bce_forward_chunk(i, bounds, x, t, zero, one, out):
    lo, hi = bounds[i], bounds[i + 1]
    _bce_fwd(x[lo:hi], t[lo:hi], zero, one, out[lo:hi])


@njit(cache=True, nogil=True, parallel=True)
def bce_forward_par(bounds, x, t, zero, one, out):
    for i in prange(bounds.size - 1):
        bce_forward_chunk(np.int64(i), bounds, x, t, zero, one, out)


@njit(cache=True, nogil=True)
def bce_backward_chunk(i, bounds, gy, x, t, zero, one, out):
    lo, hi = bounds[i], bounds[i + 1]
    _bce_bwd(gy[lo:hi], x[lo:hi], t[lo:hi], zero, one, out[lo:hi])


@njit(cache=True, nogil=True, parallel=True)
def bce_backward_par(bounds, gy, x, t, zero, one, out):
    for i in prange(bounds.size - 1):
        bce_backward_chunk(np.int64(i), bounds, gy, x, t, zero, one, out)
