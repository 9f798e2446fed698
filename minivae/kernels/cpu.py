"""Numba ``@njit`` CPU kernels: the same names, signatures and results as :mod:`minivae.kernels.reference`.

Design. A convolution is im2col + GEMM (Chellapilla et al. 2006, "High performance
convolutional neural networks for document processing"); its input gradient, and the forward pass of a
transposed convolution, is GEMM + col2im, the adjoint of im2col (Dumoulin & Visin 2016, section 4):

* ``_im2col`` fills a contiguous ``(C*kH*kW, H_out*W_out)`` buffer per example by a gather through a table of
  source positions (``_tap_index``, computed once per call; padding reads a zero cell);
* the GEMMs are NumPy's own OpenBLAS, called from the jitted code (:mod:`minivae.kernels._blas`), one per
  example, ``W @ cols`` written straight into NCHW (no layout pass) and ``W^T @ gy_n`` followed at once by
  ``col2im`` of that example, so the column buffer stays in cache; the weight gradient folds the chunk's
  examples into one GEMM (``K = n*H_out*W_out``) where ``C*kH*kW >= 32``. (Folding the batch into the forward
  GEMMs as well, with a transpose back to NCHW, was measured slower on the 2-core development machine.)
* ``_col2im`` scatters columns back to NCHW through the same table, the bias fused;
* the batch is split into a few fixed chunks per thread, run by one parallel jitted function per call (a
  ``prange`` over chunks, :mod:`minivae.kernels._cpu_passes` and :mod:`minivae.kernels._cpu_threads`), each
  chunk's GEMMs on a BLAS limited to one thread for its thread; no two chunks write the same output element.

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

import numpy as np

from minivae.kernels import _blas
from minivae.kernels import _cpu_passes as chunks
from minivae.kernels import _cpu_elementwise as elementwise
from minivae.kernels._cpu_elementwise import _add_bias_rows, _reparameterize_kl_bwd, _reparameterize_kl_fwd, _sum_rows
from minivae.kernels._cpu_passes import _tap_index
from minivae.kernels._cpu_threads import chunk_bounds, num_threads, one_blas_thread, run
from minivae.kernels._dtypes import check_dtypes
from minivae.kernels._malloc import keep_freed_memory
from minivae.kernels.conv_arith import conv_transpose2d_backward_kernels, conv_transpose_output_hw

keep_freed_memory()  # no page faults from re-allocating each step's large arrays (see _malloc.py)

# --------------------------------------------------------------------------- wrapper helpers

# elements per chunk at least (smaller arrays run as one chunk on the calling thread): ReLU is a copy-speed pass;
# BCE costs an exp and a log per element (~10x more), so it pays to split smaller arrays
_ELEMENTWISE_CHUNK = 1 << 14
_TRANSCENDENTAL_CHUNK = 1 << 12


def _c(a):
    return np.ascontiguousarray(a)


def _same_dtype(*arrays):
    """The arrays C-contiguous in their common dtype (``np.result_type``): the jitted GEMM reads raw memory,
    so mixed float32/float64 operands are converted here, as NumPy's matmul would promote them."""
    dtype = np.dtype(np.result_type(*arrays).type)  # native byte order
    return tuple(np.ascontiguousarray(a, dtype=dtype) for a in arrays)


def _bias_args(bias, dtype):
    if bias is None:
        return np.zeros(1, dtype=dtype), False
    return _c(bias).astype(dtype, copy=False), True


def _taps(h, w, kh, kw, stride, padding, ho, wo):
    return _tap_index(h, w, kh, kw, stride[0], stride[1], padding[0], padding[1], ho, wo)


def _blas_args(dtype):
    """(gemm, set_local, one, zero) for the chunks of :mod:`minivae.kernels._cpu_passes` in ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype not in _blas.GEMM:
        raise TypeError(f"numba CPU convolution kernels take float32 and float64 arrays, got {dtype}: convert with "
                        f'.astype(np.float32), or run kernels.use("reference")')
    return _blas.GEMM[dtype], _blas.SET_LOCAL_THREADS, dtype.type(1), dtype.type(0)


def _gemm_col2im(grad_output, weight, bias, out_size, stride, padding):
    """``col2im(W^T @ gy)`` with the bias fused: conv2d's input gradient, conv_transpose2d's forward."""
    grad_output, weight = _same_dtype(grad_output, weight)
    n, c_out, ho, wo = grad_output.shape
    c_in, kh, kw = weight.shape[1:]
    w2 = weight.reshape(c_out, c_in * kh * kw)
    out = np.empty((n, c_in) + tuple(out_size), dtype=grad_output.dtype)
    b, has_b = _bias_args(bias, grad_output.dtype)
    idx = _taps(out_size[0], out_size[1], kh, kw, stride, padding, ho, wo)
    run(chunks.gemm_col2im_par, chunks.gemm_col2im_chunk, chunk_bounds(n),
        grad_output.reshape(n, c_out, ho * wo), w2, b, has_b, idx, out, *_blas_args(out.dtype))
    return out


# --------------------------------------------------------------------------- conv2d


def conv2d_forward(x, weight, bias, stride, padding):
    """``y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] * x_pad[n, c, i*sh + p, j*sw + q]`` (im2col + GEMM).

    Args: x ``(N, C_in, H, W)``, weight ``(C_out, C_in, kH, kW)``, bias ``(C_out,)`` or None; float32 or
        float64, one dtype. stride, padding: ``(h, w)`` int pairs.
    Returns: ``(N, C_out, H_out, W_out)``, ``H_out = (H + 2*ph - kH) // sh + 1``, in the input dtype (mixed
        float32/float64 inputs: float64, as NumPy promotes).
    """
    x, weight = _same_dtype(x, weight)
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ho = (h + 2 * padding[0] - kh) // stride[0] + 1
    wo = (w + 2 * padding[1] - kw) // stride[1] + 1
    out = np.empty((n, c_out, ho, wo), dtype=x.dtype)
    b, has_b = _bias_args(bias, x.dtype)
    idx = _taps(h, w, kh, kw, stride, padding, ho, wo)
    run(chunks.conv_forward_par, chunks.conv_forward_chunk, chunk_bounds(n),
        x, weight.reshape(c_out, c_in * kh * kw), b, has_b, idx, out.reshape(n, c_out, ho * wo), *_blas_args(x.dtype))
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
    columns, one per example), the chunks' partial sums added in chunk order.

    Returns: ``(C_out, C_in, kH, kW)``.
    """
    grad_output, x = _same_dtype(grad_output, x)
    n, c_out, ho, wo = grad_output.shape
    c_in = x.shape[1]
    kh, kw = kernel_size
    idx = _taps(x.shape[2], x.shape[3], kh, kw, stride, padding, ho, wo)
    bounds = chunk_bounds(n)
    parts = np.empty((bounds.size - 1, c_out, c_in * kh * kw), dtype=grad_output.dtype)
    run(chunks.weight_grad_par, chunks.weight_grad_chunk, bounds,
        grad_output.reshape(n, c_out, ho * wo), x, idx, parts, *_blas_args(grad_output.dtype))
    gw = parts[0]
    for p in parts[1:]:
        gw += p
    return gw.reshape(c_out, c_in, kh, kw)


def conv2d_backward_bias(grad_output):
    """Bias gradient of conv2d and conv_transpose2d: ``grad_output (N, C, H, W)`` summed over N, H, W
    (accumulated in float64) -> ``(C,)`` in its dtype."""
    g = _c(grad_output)
    n, c = g.shape[:2]
    g3 = g.reshape(n, c, int(np.prod(g.shape[2:])))
    bounds = chunk_bounds(n, min_chunk=max(1, (1 << 16) // max(1, g3.shape[1] * g3.shape[2])))  # small: 1 chunk
    parts = np.empty((bounds.size - 1, c), dtype=np.float64)
    run(chunks.channel_sum_par, chunks.channel_sum_chunk, bounds, g3, parts)
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


def conv_transpose2d_backward(grad_output, x, weight, stride, padding):
    """Both gradients of conv_transpose2d at once (an optional kernel, see :data:`minivae.kernels.OPTIONAL_KERNELS`):
    ``(conv_transpose2d_backward_input(gy, W), conv_transpose2d_backward_weight(gy, x))``, the same bits (the
    same GEMMs on the same columns). Both read im2col(gy) (a plain convolution of gy with W, and conv2d's weight
    gradient with x as the gradient): here each block of examples is im2col'ed once for both instead of once per
    kernel. (Inputs with fewer than 32 columns, ``C_out*kH*kW < 32``, call the two kernels.)

    Args: grad_output ``(N, C_out, H_out, W_out)``, x ``(N, C_in, H, W)``, weight ``(C_in, C_out, kH, kW)``;
        float32 or float64. stride, padding: ``(h, w)`` int pairs.
    Returns: ``(gx (N, C_in, H, W), gw (C_in, C_out, kH, kW))`` in the dtype of grad_output.
    """
    grad_output, x, weight = _same_dtype(grad_output, x, weight)
    n, c_out, ho, wo = grad_output.shape
    c_in, _, kh, kw = weight.shape
    h, w = x.shape[2:]
    ckk = c_out * kh * kw
    if ckk < 32 or n == 0:  # no folded weight-gradient path to share: the two kernels
        return (conv_transpose2d_backward_input(grad_output, weight, stride, padding),
                conv_transpose2d_backward_weight(grad_output, x, (kh, kw), stride, padding))
    idx = _taps(ho, wo, kh, kw, stride, padding, h, w)
    bounds = chunk_bounds(n)
    gx = np.empty((n, c_in, h, w), dtype=grad_output.dtype)
    parts = np.empty((bounds.size - 1, c_in, ckk), dtype=grad_output.dtype)
    run(chunks.forward_and_weight_grad_par, chunks.forward_and_weight_grad_chunk, bounds, grad_output,
        weight.reshape(c_in, ckk), x.reshape(n, c_in, h * w), idx, gx.reshape(n, c_in, h * w), parts,
        *_blas_args(grad_output.dtype))
    gw = parts[0]
    for p in parts[1:]:
        gw += p
    return gx, gw.reshape(c_in, c_out, kh, kw)


# --------------------------------------------------------------------------- dense


def dense_forward(x, weight, bias):
    """``y = x @ weight.T + bias``; x ``(N, in_features)``, weight ``(out_features, in_features)``,
    bias ``(out_features,)`` or None. Returns ``(N, out_features)`` in the input dtype."""
    with one_blas_thread():  # see below
        y = np.dot(x, weight.T)
    if bias is not None:
        _add_bias_rows(y, _c(bias))
    # The dense GEMMs are small (at most 128 x 2304 x 4 in the conv VAE); on NumPy's threaded OpenBLAS they
    # woke its worker threads, whose spinning then slowed the next conv kernel's chunk threads (measured: a
    # 0.1 ms dense_backward took 5-26 ms at batch 128 on the loaded 2-core machine).
    return y


def dense_backward(grad_output, x, weight):
    """Returns ``(gx, gw, gb) = (gy @ W, gy.T @ x, gy.sum(0))``, shapes ``(N, in)``, ``(out, in)``, ``(out,)``."""
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
    run(elementwise.bce_forward_par, elementwise.bce_forward_chunk, chunk_bounds(x.size, _TRANSCENDENTAL_CHUNK),
        x, t, zero, one, out)
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
    run(elementwise.bce_backward_par, elementwise.bce_backward_chunk, chunk_bounds(x.size, _TRANSCENDENTAL_CHUNK),
        gy, x, t, zero, one, out)
    return out.reshape(shape)


# --------------------------------------------------------------------------- ReLU

def relu_forward(x):
    """``y = max(x, 0)``, elementwise, one pass split over the threads; the shape and dtype of ``x``.

    (NumPy's ``maximum`` runs on one thread and, for a fresh output, page-faults it in: measured 4x slower on
    the conv VAE's largest activation, 128x32x28x28 float32.)"""
    x = _c(x)
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    run(elementwise.relu_forward_par, elementwise.relu_forward_chunk, chunk_bounds(flat.size, _ELEMENTWISE_CHUNK),
        flat, flat.dtype.type(0), out)
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
    run(elementwise.relu_backward_par, elementwise.relu_backward_chunk, chunk_bounds(g.size, _ELEMENTWISE_CHUNK),
        g, yf, g.dtype.type(0), out)
    return out.reshape(gy.shape)


def threads() -> int:
    """Threads a kernel call splits its batch over (``NUMBA_NUM_THREADS``; 1 if BLAS threads can't be
    limited per thread, see :mod:`minivae.kernels._cpu_threads`)."""
    return num_threads()



# float16 and other dtypes the jitted functions are not compiled for: a clear TypeError at the door
check_dtypes(globals(), ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_backward_bias",
                         "conv_transpose2d_forward", "conv_transpose2d_backward_input",
                         "conv_transpose2d_backward_weight", "conv_transpose2d_backward", "dense_forward",
                         "dense_backward",
                         "reparameterize_kl_forward", "reparameterize_kl_backward", "bce_with_logits_forward",
                         "bce_with_logits_backward", "relu_forward", "relu_backward"))
