"""Numba ``@njit`` CPU kernels: the same names, signatures and results as :mod:`minivae.kernels.reference`.

Design. A convolution is im2col + GEMM (Chellapilla et al. 2006, "High performance
convolutional neural networks for document processing"); its input gradient, and the forward pass of a
transposed convolution, is GEMM + col2im, the adjoint of im2col (Dumoulin & Visin 2016, section 4):

* ``_im2col`` fills a contiguous ``(n, C*kH*kW, H_out*W_out)`` buffer by a gather through a table of
  source positions (``_tap_index``, computed once per call; padding reads a zero cell);
* the GEMMs are NumPy's, on its BLAS: one per example (``np.matmul`` on stacked matrices), written
  straight into NCHW, so no layout pass is needed; the weight gradient folds the batch into one GEMM per
  chunk instead (``K = n*H_out*W_out``) where ``C*kH*kW >= 32``. Numba can call BLAS from ``@njit`` code
  only through SciPy's ``cython_blas``; SciPy is not a dependency of minivae, so the GEMMs stay in the thin
  Python wrappers. (Folding the batch into the forward GEMMs as well, with a transpose back to NCHW, was
  measured slower on the 2-core development machine, even for 6x6 outputs.)
* ``_col2im`` scatters columns back to NCHW through the same table, the bias fused;
* the batch is split into a few fixed chunks per thread (``_cpu_threads.map_chunks``), taken by the
  threads as they become free: each chunk's jitted passes (``nogil``) and GEMMs (OpenBLAS limited to one
  thread for that thread) run concurrently, and no two chunks write the same output element. Large temporaries live in per-thread scratch buffers.

The elementwise kernels are fused loops, split over the threads where the arrays are large (ReLU, BCE): reparameterize + KL forward gives ``z`` and the per-example KL in
one pass and its backward ``g_mu`` and ``g_logvar`` in one pass (Kingma & Welling 2014, eq. 10 and
appendix B); binary cross-entropy with logits uses the stable ``max(x,0) - x t + log1p(exp(-|x|))`` and
its gradient ``sigmoid(x) - t`` with the sigmoid computed from ``exp(-|x|)``, so nothing overflows.

Conventions (as PyTorch, as the reference): NCHW images; conv2d weight ``(C_out, C_in, kH, kW)``;
conv_transpose2d weight ``(C_in, C_out, kH, kW)``; dense weight ``(out_features, in_features)``;
``stride``, ``padding``, ``output_padding``, ``kernel_size``, ``input_size`` are ``(h, w)`` int pairs,
unpacked to plain ints before reaching a jitted function. float32 and float64; outputs have the dtype of
the inputs (each jitted function compiles once per dtype, on first use, and is cached on disk with
``cache=True``; the jitted passes live in :mod:`minivae.kernels._cpu_passes`, these wrappers call them). Non-contiguous inputs are copied to C order first.
"""
from __future__ import annotations

import threading

import numpy as np

from minivae.kernels._cpu_passes import (_add_bias_ncl, _add_bias_rows, _bce_bwd, _bce_fwd, _col2im, _im2col,
                                         _relu_bwd, _relu_fwd, _reparameterize_kl_bwd, _reparameterize_kl_fwd, _sum_n_l,
                                         _sum_rows, _tap_index)
from minivae.kernels._cpu_threads import map_chunks, num_threads
from minivae.kernels._malloc import keep_freed_memory
from minivae.kernels._dtypes import check_dtypes
from minivae.kernels.conv_arith import conv_transpose2d_backward_kernels, conv_transpose_output_hw

keep_freed_memory()  # no page faults from re-allocating each step's large arrays (see _malloc.py)

# --------------------------------------------------------------------------- wrapper helpers


def _c(a):
    return np.ascontiguousarray(a)


def _bias_args(bias, dtype):
    if bias is None:
        return np.zeros(1, dtype=dtype), False
    return _c(bias).astype(dtype, copy=False), True


def _taps(h, w, kh, kw, stride, padding, ho, wo):
    return _tap_index(h, w, kh, kw, stride[0], stride[1], padding[0], padding[1], ho, wo)


_local = threading.local()


def _scratch(shape, dtype):
    """A C-contiguous array of ``shape`` in this thread's reusable scratch buffer (grown as needed): large
    temporaries allocated afresh in worker threads are mmap-ed and page-faulted in on every call. One
    scratch array is live per thread at a time; kernels never return it."""
    size = int(np.prod(shape))
    dtype = np.dtype(dtype)
    buf = getattr(_local, "buf", None)
    if buf is None or buf.nbytes < size * dtype.itemsize:
        buf = _local.buf = np.empty(max(size * dtype.itemsize, 1 << 16), dtype=np.uint8)
    return buf[:size * dtype.itemsize].view(dtype).reshape(shape)


def _im2col_chunk(x, idx):
    cols = _scratch((x.shape[0], x.shape[1] * idx.shape[0], idx.shape[1]), x.dtype)
    _im2col(x, idx, cols)
    return cols


def _gemm_col2im(grad_output, weight, bias, out_size, stride, padding):
    """``col2im(W^T @ gy)`` with the bias fused: conv2d's input gradient, conv_transpose2d's forward."""
    grad_output, weight = _c(grad_output), _c(weight)
    n, c_out, ho, wo = grad_output.shape
    c_in, kh, kw = weight.shape[1:]
    w_t = weight.reshape(c_out, c_in * kh * kw).T
    g3 = grad_output.reshape(n, c_out, ho * wo)
    out = np.empty((n, c_in) + tuple(out_size), dtype=grad_output.dtype)
    b, has_b = _bias_args(bias, grad_output.dtype)
    idx = _taps(out_size[0], out_size[1], kh, kw, stride, padding, ho, wo)

    def chunk(lo, hi):
        cols = np.matmul(w_t, g3[lo:hi], out=_scratch((hi - lo, c_in * kh * kw, ho * wo), g3.dtype))
        _col2im(cols, idx, b, has_b, out[lo:hi])

    map_chunks(chunk, n)
    return out


# --------------------------------------------------------------------------- conv2d


def conv2d_forward(x, weight, bias, stride, padding):
    """``y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] * x_pad[n, c, i*sh + p, j*sw + q]`` (im2col + GEMM).

    Args: x ``(N, C_in, H, W)``, weight ``(C_out, C_in, kH, kW)``, bias ``(C_out,)`` or None; float32 or
        float64, one dtype. stride, padding: ``(h, w)`` int pairs.
    Returns: ``(N, C_out, H_out, W_out)``, ``H_out = (H + 2*ph - kH) // sh + 1``, in the input dtype.
    """
    x, weight = _c(x), _c(weight)
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ho = (h + 2 * padding[0] - kh) // stride[0] + 1
    wo = (w + 2 * padding[1] - kw) // stride[1] + 1
    w2 = weight.reshape(c_out, c_in * kh * kw)
    out = np.empty((n, c_out, ho, wo), dtype=x.dtype)
    y3 = out.reshape(n, c_out, ho * wo)
    idx = _taps(h, w, kh, kw, stride, padding, ho, wo)

    def chunk(lo, hi):
        cols = _im2col_chunk(x[lo:hi], idx)
        np.matmul(w2, cols, out=y3[lo:hi])  # one GEMM per example, straight into NCHW
        if bias is not None:
            _add_bias_ncl(y3[lo:hi], _c(bias))

    map_chunks(chunk, n)
    return out


def conv2d_backward_input(grad_output, weight, input_size, stride, padding):
    """Input gradient of conv2d: ``col2im(W^T @ gy)``.

    Args: grad_output ``(N, C_out, H_out, W_out)``, weight ``(C_out, C_in, kH, kW)``, input_size ``(H, W)``.
    Returns: ``(N, C_in, H, W)`` in the dtype of grad_output.
    """
    return _gemm_col2im(grad_output, weight, None, input_size, stride, padding)


def conv2d_backward_weight(grad_output, x, kernel_size, stride, padding):
    """Weight gradient of conv2d: ``gw[o,c,p,q] = sum_{n,i,j} gy[n,o,i,j] * x_pad[n,c,i*sh+p,j*sw+q]``,
    per batch chunk one GEMM ``gy (C_out, n*L) @ cols(x)^T (n*L, C_in*kH*kW)`` (or, for fewer than 32
    columns, one per example), the chunks summed.

    Returns: ``(C_out, C_in, kH, kW)``.
    """
    grad_output, x = _c(grad_output), _c(x)
    n, c_out, ho, wo = grad_output.shape
    c_in = x.shape[1]
    kh, kw = kernel_size
    g3 = grad_output.reshape(n, c_out, ho * wo)
    idx = _taps(x.shape[2], x.shape[3], kh, kw, stride, padding, ho, wo)

    ckk, L = c_in * kh * kw, ho * wo

    def chunk(lo, hi):
        m = hi - lo
        if ckk < 32:
            # Few output columns (a 1-channel input): one GEMM per example, g_n (C_out, L) @ cols_n^T,
            # summed; a single GEMM with only C_in*kH*kW columns runs slowly on OpenBLAS.
            cols = _im2col_chunk(x[lo:hi], idx)
            return np.matmul(g3[lo:hi], cols.transpose(0, 2, 1)).sum(axis=0)
        # One GEMM over the chunk with the batch folded into the contraction (K = n*L, efficient even
        # where one example's L is small), computed transposed: gw_part^T = cols (C_in*kH*kW, n*L) @ g^T
        # (n*L, C_out), which OpenBLAS runs 1.3-1.8x faster than g @ cols^T at the conv VAE's shapes.
        cols = _scratch((ckk, m * L), x.dtype)
        _im2col(x[lo:hi], idx, cols.reshape(ckk, m, L).transpose(1, 0, 2))  # written as (n, CkK, L)
        g = np.ascontiguousarray(g3[lo:hi].transpose(1, 0, 2)).reshape(c_out, m * L)
        return np.dot(cols, g.T).T

    parts = map_chunks(chunk, n)
    gw = parts[0]
    for p in parts[1:]:
        gw += p
    return np.ascontiguousarray(gw).reshape(c_out, c_in, kh, kw)


def conv2d_backward_bias(grad_output):
    """Bias gradient of conv2d and conv_transpose2d: ``grad_output (N, C, H, W)`` summed over N, H, W
    (accumulated in float64) -> ``(C,)`` in its dtype."""
    g = _c(grad_output)
    n, c = g.shape[:2]
    g3 = g.reshape(n, c, -1)

    def chunk(lo, hi):
        part = np.empty(c, dtype=np.float64)
        _sum_n_l(g3[lo:hi], part)
        return part

    per_example = max(1, g3.shape[1] * g3.shape[2])
    parts = map_chunks(chunk, n, min_chunk=max(1, (1 << 16) // per_example))  # small sums: one thread
    return np.sum(parts, axis=0).astype(g.dtype)


# --------------------------------------------------------------------------- conv_transpose2d


def conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding):
    """Transposed convolution, the adjoint of conv2d with the same weight: ``col2im(W^T @ x) + b``.

    Args: x ``(N, C_in, H, W)``, weight ``(C_in, C_out, kH, kW)``, bias ``(C_out,)`` or None.
    Returns: ``(N, C_out, H_out, W_out)`` with ``H_out = (H-1)*sh - 2*ph + kH + output_padding[0]``.
    """
    size = conv_transpose_output_hw(x.shape, weight.shape[2:], stride, padding, output_padding)
    return _gemm_col2im(x, weight, bias, size, stride, padding)


conv_transpose2d_backward_input, conv_transpose2d_backward_weight = conv_transpose2d_backward_kernels(
    conv2d_forward, conv2d_backward_weight)


# --------------------------------------------------------------------------- dense


def dense_forward(x, weight, bias):
    """``y = x @ weight.T + bias``; x ``(N, in_features)``, weight ``(out_features, in_features)``,
    bias ``(out_features,)`` or None. Returns ``(N, out_features)`` in the input dtype."""
    def run(lo, hi):  # one chunk: map_chunks only limits this thread's BLAS to one thread (see below)
        y = np.dot(x, weight.T)
        if bias is not None:
            _add_bias_rows(y, _c(bias))
        return y

    # The dense GEMMs are small (at most 128 x 2304 x 4 in the conv VAE); on NumPy's threaded OpenBLAS they
    # woke its worker threads, whose spinning then slowed the next conv kernel's chunk threads (measured: a
    # 0.1 ms dense_backward took 5-26 ms at batch 128 on the loaded 2-core machine).
    return map_chunks(run, 1)[0]


def dense_backward(grad_output, x, weight):
    """Returns ``(gx, gw, gb) = (gy @ W, gy.T @ x, gy.sum(0))``, shapes ``(N, in)``, ``(out, in)``, ``(out,)``."""
    gy = _c(grad_output)
    gb = np.empty(gy.shape[1], dtype=gy.dtype)
    _sum_rows(gy, gb)
    return map_chunks(lambda lo, hi: (np.dot(gy, weight), np.dot(gy.T, x), gb), 1)[0]  # one BLAS thread


# --------------------------------------------------------------------------- reparameterize + KL


def reparameterize_kl_forward(mu, logvar, eps):
    """Fused ``z = mu + exp(logvar/2) * eps`` and ``kl = 0.5 * sum_j (mu^2 + exp(logvar) - 1 - logvar)``
    in nats (Kingma & Welling 2014, eq. 10 and appendix B), one pass.

    Args: mu, logvar, eps ``(N, D)``. Returns: z ``(N, D)``, kl ``(N,)``, in the input dtype.
    """
    mu, logvar, eps = _c(mu), _c(logvar), _c(eps)
    z = np.empty_like(mu)
    kl = np.empty(mu.shape[0], dtype=mu.dtype)
    _reparameterize_kl_fwd(mu, logvar, eps, z, kl)
    return z, kl


def reparameterize_kl_backward(grad_z, grad_kl, mu, logvar, eps):
    """Returns ``(g_mu, g_logvar)`` ``(N, D)`` in one pass:
    ``g_mu = gz + gkl * mu``, ``g_logvar = gz * eps * exp(logvar/2) / 2 + gkl * (exp(logvar) - 1) / 2``.
    """
    mu, logvar, eps = _c(mu), _c(logvar), _c(eps)
    g_mu = np.empty_like(mu)
    g_logvar = np.empty_like(mu)
    _reparameterize_kl_bwd(_c(grad_z), _c(grad_kl), mu, logvar, eps, g_mu, g_logvar)
    return g_mu, g_logvar


# --------------------------------------------------------------------------- BCE with logits


def bce_with_logits_forward(logits, target):
    """Elementwise ``max(x, 0) - x*t + log1p(exp(-|x|))`` (nats), the stable
    ``-[t log sigmoid(x) + (1-t) log(1 - sigmoid(x))]``. Same shape and dtype as ``logits``."""
    x = _c(logits).reshape(-1)
    t = _c(target).reshape(-1)
    out = np.empty_like(x)
    zero, one = x.dtype.type(0), x.dtype.type(1)
    map_chunks(lambda lo, hi: _bce_fwd(x[lo:hi], t[lo:hi], zero, one, out[lo:hi]), x.size, min_chunk=4096)
    return out.reshape(np.shape(logits))


def bce_with_logits_backward(grad_output, logits, target):
    """Gradient w.r.t. the logits: ``gy * (sigmoid(x) - t)``, sigmoid from ``exp(-|x|)`` (no overflow).
    ``grad_output`` broadcasts to the shape of ``logits``; the result has that shape and dtype."""
    shape = np.shape(logits)
    x = _c(logits).reshape(-1)
    t = _c(target).reshape(-1)
    gy = _c(np.broadcast_to(grad_output, shape)).reshape(-1)
    out = np.empty_like(x)
    zero, one = x.dtype.type(0), x.dtype.type(1)
    map_chunks(lambda lo, hi: _bce_bwd(gy[lo:hi], x[lo:hi], t[lo:hi], zero, one, out[lo:hi]), x.size,
               min_chunk=4096)
    return out.reshape(shape)


# --------------------------------------------------------------------------- ReLU

_ELEMENTWISE_CHUNK = 1 << 14  # elements: smaller arrays run in one call on the calling thread


def relu_forward(x):
    """``y = max(x, 0)``, elementwise, one pass split over the threads; the shape and dtype of ``x``.

    (NumPy's ``maximum`` runs on one thread and, for a fresh output, page-faults it in: measured 4x slower on
    the conv VAE's largest activation, 128x32x28x28 float32.)"""
    x = _c(x)
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    zero = flat.dtype.type(0)
    map_chunks(lambda lo, hi: _relu_fwd(flat[lo:hi], zero, out[lo:hi]), flat.size, min_chunk=_ELEMENTWISE_CHUNK)
    return out.reshape(x.shape)


def relu_backward(grad_output, output):
    """``gx = gy`` where the ReLU's output ``y > 0``, else 0 (as PyTorch's ``threshold_backward``), one pass.
    ``grad_output`` and ``output`` have one shape; the result has it and the dtype of ``grad_output``.
    Raises ValueError for different shapes."""
    gy, y = _c(grad_output), _c(output)
    if gy.shape != y.shape:
        raise ValueError(f"relu_backward: gradient shape {gy.shape} != output shape {y.shape}")
    g, yf = gy.reshape(-1), y.reshape(-1)
    out = np.empty_like(g)
    zero = g.dtype.type(0)
    map_chunks(lambda lo, hi: _relu_bwd(g[lo:hi], yf[lo:hi], zero, out[lo:hi]), g.size, min_chunk=_ELEMENTWISE_CHUNK)
    return out.reshape(gy.shape)


def threads() -> int:
    """Threads a kernel call splits its batch over (``NUMBA_NUM_THREADS``; 1 if BLAS threads can't be
    limited per thread, see :mod:`minivae.kernels._cpu_threads`)."""
    return num_threads()



# float16 and other dtypes the jitted functions are not compiled for: a clear TypeError at the door
check_dtypes(globals(), ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_backward_bias",
                         "conv_transpose2d_forward", "conv_transpose2d_backward_input",
                         "conv_transpose2d_backward_weight", "dense_forward", "dense_backward",
                         "reparameterize_kl_forward", "reparameterize_kl_backward", "bce_with_logits_forward",
                         "bce_with_logits_backward", "relu_forward", "relu_backward"))
