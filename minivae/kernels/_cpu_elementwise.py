"""The Numba CPU elementwise and dense kernels, top to bottom: the kernels (Python: shapes, dtypes, outputs), then
the jitted loops they run and, for the large ones (ReLU, BCE), the chunk functions that
:func:`minivae.kernels._cpu_threads.run` splits them into over the threads.

Reparameterize + KL forward gives ``z`` and the per-example KL in one pass and its backward ``g_mu`` and
``g_logvar`` in one pass (Kingma & Welling 2014, eq. 10 and appendix B); binary cross-entropy with logits uses the
stable ``max(x,0) - x t + log1p(exp(-|x|))`` and its gradient ``sigmoid(x) - t`` with the sigmoid computed from
``exp(-|x|)``, so nothing overflows. The dense layer's GEMMs are NumPy's, with the BLAS held at one thread during
the call (threadpoolctl). float32 and float64 (other floating dtypes: TypeError); outputs have the inputs' shape
and dtype (0-d included); non-contiguous inputs are copied to C order. Each jitted function compiles once per dtype
on first use and is cached on disk (``cache=True``). ``out=`` (dense and ReLU forward, ReLU backward) writes the
result into a given array (:mod:`minivae.kernels._out`); ``dense_forward(..., relu=True)`` adds the bias and the
ReLU in one pass (:func:`minivae.kernels._cpu_epilogue.bias_relu_rows`).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from minivae.kernels import _out, _pool
from minivae.kernels._cpu_epilogue import bias_relu_rows
from minivae.kernels._cpu_threads import check_dtype, chunk_bounds, one_blas_thread, run

# elements per chunk at least (smaller arrays run as one chunk on the calling thread): ReLU is a copy-speed pass;
# BCE costs an exp and a log per element (~10x more), so it pays to split smaller arrays
_ELEMENTWISE_CHUNK = 1 << 14
_TRANSCENDENTAL_CHUNK = 1 << 12


def _c(a):
    """``a`` C-contiguous, keeping its shape (``np.ascontiguousarray`` would make a 0-d array 1-d)."""
    return np.asarray(a, order="C")


# --------------------------------------------------------------------------- dense


def dense_forward(x, weight, bias, *, out=None, relu=False):
    """``y = x @ weight.T + bias`` (then ``max(y, 0)`` where ``relu``, in the bias's pass); x ``(N, in_features)``,
    weight ``(out_features, in_features)``, bias ``(out_features,)`` or None. Returns ``(N, out_features)`` in the
    input dtype, in ``out`` when given (NumPy's GEMM writes there). Raises ValueError for a wrong ``out``."""
    check_dtype("dense_forward", x, weight, bias)
    y = _out.output(out, (x.shape[0], weight.shape[0]), np.result_type(x, weight), "dense_forward")
    with one_blas_thread():  # small GEMMs: waking BLAS worker threads would slow the next conv kernel's chunks
        np.dot(x, weight.T, out=y)
    if relu:
        b = _c(bias) if bias is not None else np.zeros(1, dtype=y.dtype)
        bias_relu_rows(y.reshape(y.shape[0], y.shape[1], 1), 0, y.shape[0], b, bias is not None, True, y.dtype.type(0))
    elif bias is not None:
        _add_bias_rows(y, _c(bias))
    return y


def dense_backward(grad_output, x, weight):
    """Returns ``(gx, gw, gb) = (gy @ W, gy.T @ x, gy.sum(0))``, shapes ``(N, in)``, ``(out, in)``, ``(out,)``."""
    check_dtype("dense_backward", grad_output, x, weight)
    gy = _c(grad_output)
    gb = np.empty(gy.shape[1], dtype=gy.dtype)
    _sum_rows(gy, gb)
    with one_blas_thread():
        return np.dot(gy, weight), np.dot(gy.T, x), gb


# --------------------------------------------------------------------------- reparameterize + KL


def reparameterize_kl_forward(mu, logvar, eps):
    """Fused ``z = mu + exp(logvar/2) * eps`` and ``kl = 0.5 * sum_j (mu^2 + exp(logvar) - 1 - logvar)``
    in nats (Kingma & Welling 2014, eq. 10 and appendix B), one pass.

    Args: mu, logvar, eps ``(N, D)``. Returns: z ``(N, D)``, kl ``(N,)``, in the input dtype.
    """
    check_dtype("reparameterize_kl_forward", mu, logvar, eps)
    mu, logvar, eps = _c(mu), _c(logvar), _c(eps)
    z = np.empty_like(mu)
    kl = np.empty(mu.shape[0], dtype=mu.dtype)
    _reparameterize_kl_fwd(mu, logvar, eps, z, kl)
    return z, kl


def reparameterize_kl_backward(grad_z, grad_kl, mu, logvar, eps):
    """Returns ``(g_mu, g_logvar)`` ``(N, D)`` in one pass:
    ``g_mu = gz + gkl * mu``, ``g_logvar = gz * eps * exp(logvar/2) / 2 + gkl * (exp(logvar) - 1) / 2``.
    """
    check_dtype("reparameterize_kl_backward", grad_z, grad_kl, mu, logvar, eps)
    mu, logvar, eps = _c(mu), _c(logvar), _c(eps)
    g_mu = np.empty_like(mu)
    g_logvar = np.empty_like(mu)
    _reparameterize_kl_bwd(_c(grad_z), _c(grad_kl), mu, logvar, eps, g_mu, g_logvar)
    return g_mu, g_logvar


# --------------------------------------------------------------------------- BCE with logits


def bce_with_logits_forward(logits, target):
    """Elementwise ``max(x, 0) - x*t + log1p(exp(-|x|))`` (nats), the stable
    ``-[t log sigmoid(x) + (1-t) log(1 - sigmoid(x))]``. Same shape and dtype as ``logits``."""
    check_dtype("bce_with_logits_forward", logits, target)
    x = _c(logits).reshape(-1)
    t = _c(target).reshape(-1)
    out = _pool.empty(x.shape, x.dtype)
    zero, one = x.dtype.type(0), x.dtype.type(1)
    run(bce_forward_chunk, chunk_bounds(x.size, _TRANSCENDENTAL_CHUNK),
        x, t, zero, one, out)
    return out.reshape(np.shape(logits))


def bce_with_logits_backward(grad_output, logits, target):
    """Gradient w.r.t. the logits: ``gy * (sigmoid(x) - t)``, sigmoid from ``exp(-|x|)`` (no overflow).
    ``grad_output`` broadcasts to the shape of ``logits``; the result has that shape and dtype."""
    check_dtype("bce_with_logits_backward", grad_output, logits, target)
    shape = np.shape(logits)
    x = _c(logits).reshape(-1)
    t = _c(target).reshape(-1)
    gy = _c(np.broadcast_to(grad_output, shape)).reshape(-1)
    out = _pool.empty(x.shape, x.dtype)
    zero, one = x.dtype.type(0), x.dtype.type(1)
    run(bce_backward_chunk, chunk_bounds(x.size, _TRANSCENDENTAL_CHUNK),
        gy, x, t, zero, one, out)
    return out.reshape(shape)


# --------------------------------------------------------------------------- ReLU

def relu_forward(x, *, out=None):
    """``y = max(x, 0)`` (a NaN stays NaN), elementwise, one pass split over the threads; the shape (0-d
    included) and dtype of ``x``, written into ``out`` when given (``x`` itself included). Raises ValueError for
    a wrong ``out``."""
    check_dtype("relu_forward", x)
    x = _c(x)
    flat = x.reshape(-1)
    out = _out.output(out, x.shape, x.dtype, "relu_forward")
    run(relu_forward_chunk, chunk_bounds(flat.size, _ELEMENTWISE_CHUNK),
        flat, flat.dtype.type(0), out.reshape(-1))
    return out


def relu_backward(grad_output, output, *, out=None):
    """``gx = 0`` where the ReLU's output ``y <= 0``, else ``gy`` (as PyTorch's ``threshold_backward``: a NaN
    ``y`` passes ``gy``), one pass. ``grad_output`` and ``output`` have one shape; the result has it and the
    dtype of ``grad_output``, written into ``out`` when given (``grad_output`` itself included: in place).
    Raises ValueError for different shapes or a wrong ``out``."""
    check_dtype("relu_backward", grad_output, output)
    gy, y = _c(grad_output), _c(output)
    if gy.shape != y.shape:
        raise ValueError(f"relu_backward: gradient shape {gy.shape} != output shape {y.shape}")
    g, yf = gy.reshape(-1), y.reshape(-1)
    out = _out.output(out, gy.shape, gy.dtype, "relu_backward")
    run(relu_backward_chunk, chunk_bounds(g.size, _ELEMENTWISE_CHUNK),
        g, yf, g.dtype.type(0), out.reshape(-1))
    return out


# --------------------------------------------------------------------------- jitted loops

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
    """out = 0 where y <= 0, else gy (a NaN y passes gy, as PyTorch's threshold_backward), on flat arrays;
    ``zero`` has the dtype of ``gy``."""
    for k in range(y.size):
        out[k] = zero if y[k] <= zero else gy[k]


# --------------------------------------------------------------------------- chunks (run by _cpu_threads.run)

@njit(cache=True, nogil=True)
def relu_forward_chunk(i, bounds, x, zero, out):
    lo, hi = bounds[i], bounds[i + 1]
    _relu_fwd(x[lo:hi], zero, out[lo:hi])



@njit(cache=True, nogil=True)
def relu_backward_chunk(i, bounds, gy, y, zero, out):
    lo, hi = bounds[i], bounds[i + 1]
    _relu_bwd(gy[lo:hi], y[lo:hi], zero, out[lo:hi])



@njit(cache=True, nogil=True)
def bce_forward_chunk(i, bounds, x, t, zero, one, out):
    lo, hi = bounds[i], bounds[i + 1]
    _bce_fwd(x[lo:hi], t[lo:hi], zero, one, out[lo:hi])



@njit(cache=True, nogil=True)
def bce_backward_chunk(i, bounds, gy, x, t, zero, one, out):
    lo, hi = bounds[i], bounds[i + 1]
    _bce_bwd(gy[lo:hi], x[lo:hi], t[lo:hi], zero, one, out[lo:hi])

