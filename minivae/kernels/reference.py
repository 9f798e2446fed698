"""Plain NumPy (or CuPy) kernels: the ground truth every faster kernel is tested against.

Pure array functions, no autodiff. Convolutions go through im2col: a strided window view of the padded
input (``sliding_window_view``) contracted with the weight by ``tensordot`` (one matmul). Its adjoint,
col2im, scatters columns back with one strided add per kernel tap; it is the input gradient of a
convolution and, the same maths, the forward pass of a transposed convolution (Dumoulin & Visin 2016,
"A guide to convolution arithmetic for deep learning", section 4).

Conventions (as PyTorch): NCHW images; conv2d weight ``(C_out, C_in, kH, kW)``; conv_transpose2d weight
``(C_in, C_out, kH, kW)``; dense weight ``(out_features, in_features)``. ``stride``, ``padding`` and
``output_padding`` are ``(h, w)`` pairs of ints. Outputs have the dtype of the inputs. Works on NumPy and
CuPy arrays alike (the array module is taken from the arguments). The kernels returning one array take ``out=``
(write the result there and return it, same bits; :mod:`minivae.kernels._out`); the forward convolutions and
dense take ``relu=True`` (``max(y, 0)`` after the bias: the bits of ``relu_forward`` of the result).
"""
from __future__ import annotations

from minivae.backend import get_array_module
from minivae.kernels import _out
from minivae.kernels.conv_arith import conv_output_size, conv_transpose_output_hw, conv_transpose_output_size  # noqa: F401  (re-exported: tests and users read the sizes here)

# --------------------------------------------------------------------------- convolution helpers


def _sliding_window_view(xp, x, window, axis):
    return xp.lib.stride_tricks.sliding_window_view(x, window, axis=axis)


def im2col(x, kernel_size, stride, padding):
    """Strided view of the receptive fields of ``x``.

    Args:
        x: ``(N, C, H, W)``.
    Returns:
        A view ``(N, C, H_out, W_out, kH, kW)``; nothing is copied until it is contracted.
    """
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    if ph or pw:
        x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = _sliding_window_view(xp, x, (kh, kw), axis=(2, 3))
    return windows[:, :, ::sh, ::sw]


def col2im(cols, input_size, stride, padding):
    """Adjoint of :func:`im2col`: sum the columns ``(N, C, H_out, W_out, kH, kW)`` back into ``(N, C, H, W)``."""
    xp = get_array_module(cols)
    n, c, h_out, w_out, kh, kw = cols.shape
    (h, w), (sh, sw), (ph, pw) = input_size, stride, padding
    padded = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i:i + sh * h_out:sh, j:j + sw * w_out:sw] += cols[:, :, :, :, i, j]
    return padded[:, :, ph:ph + h, pw:pw + w]


# --------------------------------------------------------------------------- conv2d


def conv2d_forward(x, weight, bias, stride, padding, *, out=None, relu=False):
    """``y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] * x_pad[n, c, i*sh + p, j*sw + q]`` (then ``max(y, 0)``
    where ``relu``).

    Args: x ``(N, C_in, H, W)``, weight ``(C_out, C_in, kH, kW)``, bias ``(C_out,)`` or None; ``out``: the result
        array (C-contiguous, the result's shape and dtype, else ValueError).
    Returns: ``(N, C_out, H_out, W_out)`` (``out`` when given).
    """
    xp = get_array_module(x, weight)
    cols = im2col(x, weight.shape[2:], stride, padding)
    y = xp.tensordot(cols, weight, axes=((1, 4, 5), (1, 2, 3)))  # (N, H_out, W_out, C_out)
    return _epilogue(xp, y.transpose(0, 3, 1, 2), bias, relu, out, "conv2d_forward")


def _epilogue(xp, y, bias, relu, out, kernel):
    """The forward kernels' ending: ``y (N, C, ...)`` plus ``bias`` per channel (if not None), C-contiguous, in
    ``out`` (checked by :func:`minivae.kernels._out.check`) or a new array, then ``max(y, 0)`` in place where
    ``relu`` (NaN stays NaN, as :func:`relu_forward`). The bits of the unfused ops."""
    if out is None:
        y = xp.ascontiguousarray(y) if bias is None else y + bias.reshape((1, -1) + (1,) * (y.ndim - 2))
    else:
        dtype = y.dtype if bias is None else xp.result_type(y, bias)
        _out.check(out, y.shape, dtype, kernel, xp)
        if bias is None:
            out[...] = y
        else:
            xp.add(y, bias.reshape((1, -1) + (1,) * (y.ndim - 2)), out=out)
        y = out
    if relu:
        xp.maximum(y, 0, out=y)
    return y


def _gemm_col2im(grad_output, weight, input_size, stride, padding):
    """``col2im(W^T @ gy)``: conv2d's input gradient, conv_transpose2d's forward (without bias).

    Args: grad_output ``(N, C_out, H_out, W_out)``, weight ``(C_out, C_in, kH, kW)``, input_size ``(H, W)``.
    Returns: ``(N, C_in, H, W)``.
    """
    xp = get_array_module(grad_output, weight)
    cols = xp.tensordot(grad_output, weight, axes=((1,), (0,)))  # (N, H_out, W_out, C_in, kH, kW)
    return xp.ascontiguousarray(col2im(cols.transpose(0, 3, 1, 2, 4, 5), input_size, stride, padding))


def conv2d_backward_weight(grad_output, x, kernel_size, stride, padding, *, out=None):
    """Weight gradient of conv2d: ``gw[o,c,p,q] = sum_{n,i,j} gy[n,o,i,j] * x_pad[n,c,i*sh+p,j*sw+q]``.

    Returns: ``(C_out, C_in, kH, kW)`` (copied into ``out`` when given; ValueError for a wrong ``out``).
    """
    xp = get_array_module(grad_output, x)
    cols = im2col(x, kernel_size, stride, padding)
    gw = xp.ascontiguousarray(xp.tensordot(grad_output, cols, axes=((0, 2, 3), (0, 2, 3))))
    return _out.write(out, gw, "conv2d_backward_weight")


def conv2d_backward_bias(grad_output, *, out=None):
    """Bias gradient of conv2d and conv_transpose2d: ``grad_output`` summed over N, H, W -> ``(C_out,)`` (copied
    into ``out`` when given; ValueError for a wrong ``out``)."""
    return _out.write(out, grad_output.sum(axis=(0, 2, 3)), "conv2d_backward_bias")


# --------------------------------------------------------------------------- conv_transpose2d


def conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding, *, out=None, relu=False):
    """Transposed convolution, the adjoint of conv2d with the same weight (then ``max(y, 0)`` where ``relu``).

    Args: x ``(N, C_in, H, W)``, weight ``(C_in, C_out, kH, kW)``, bias ``(C_out,)`` or None; ``out``: the result
        array (C-contiguous, the result's shape and dtype, else ValueError).
    Returns: ``(N, C_out, H_out, W_out)`` with ``H_out = (H-1)*sh - 2*ph + kH + output_padding[0]`` (``out`` when
        given).
    """
    size = conv_transpose_output_hw(x.shape, weight.shape[2:], stride, padding, output_padding)
    y = _gemm_col2im(x, weight, size, stride, padding)
    return _epilogue(get_array_module(y), y, bias, relu, out, "conv_transpose2d_forward")


def conv_transpose2d_backward(grad_output, x, weight, stride, padding, *, out=None, relu_output=None):
    """Both gradients of conv_transpose2d: ``gx = conv2d(gy, W)`` (a plain convolution of the output gradient with
    the same weight) and ``gW = conv2d_backward_weight(x, gy)`` (conv2d's weight gradient with the roles of input
    and output swapped).

    Args: grad_output ``(N, C_out, H_out, W_out)``, x ``(N, C_in, H, W)``, weight ``(C_in, C_out, kH, kW)``;
        ``out``: None or ``(gx_out, gW_out)``, either None (see :func:`conv2d_forward`); ``relu_output``: the
        output ``y`` of a ReLU that followed this convolution, whose mask (:func:`relu_backward`) is applied to
        ``grad_output`` first (same bits as calling ``relu_backward`` before).
    Returns: ``(gx (N, C_in, H, W), gW (C_in, C_out, kH, kW))``.
    """
    gx_out, gw_out = _out.pair(out, "conv_transpose2d_backward")
    if relu_output is not None:
        grad_output = relu_backward(grad_output, relu_output)
    return (conv2d_forward(grad_output, weight, None, stride, padding, out=gx_out),
            conv2d_backward_weight(x, grad_output, weight.shape[2:], stride, padding, out=gw_out))


# --------------------------------------------------------------------------- dense


def dense_forward(x, weight, bias, *, out=None, relu=False):
    """``y = x @ weight.T + bias`` (then ``max(y, 0)`` where ``relu``); x ``(N, in_features)``, weight
    ``(out_features, in_features)``, bias ``(out_features,)`` or None. Returns ``(N, out_features)`` in the dtype
    of ``x @ weight.T`` (the product copied into ``out`` when given; ValueError for a wrong ``out``)."""
    y = _out.write(out, x @ weight.T, "dense_forward")
    if bias is not None:
        y += bias
    if relu:
        get_array_module(y).maximum(y, 0, out=y)
    return y


def dense_backward(grad_output, x, weight, *, relu_output=None):
    """Returns ``(gx, gw, gb) = (gy @ W, gy.T @ x, gy.sum(0))``; with ``relu_output`` (the output of a ReLU that
    followed this layer) ``gy`` is first masked by :func:`relu_backward` (same bits as calling it before)."""
    if relu_output is not None:
        grad_output = relu_backward(grad_output, relu_output)
    return grad_output @ weight, grad_output.T @ x, grad_output.sum(axis=0)


# --------------------------------------------------------------------------- reparameterize + KL


def reparameterize_kl_forward(mu, logvar, eps):
    """Fused reparameterization and KL to N(0, I) (Kingma & Welling 2014, eq. 10 and appendix B).

    ``z = mu + exp(logvar / 2) * eps`` and, per example,
    ``kl = 0.5 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)`` in nats.
    Args: mu, logvar, eps ``(N, D)``. Returns: z ``(N, D)``, kl ``(N,)``.
    """
    xp = get_array_module(mu, logvar, eps)
    var = xp.exp(logvar)
    z = mu + xp.sqrt(var) * eps
    kl = 0.5 * (mu * mu + var - 1.0 - logvar).sum(axis=1)
    return z, kl


def reparameterize_kl_backward(grad_z, grad_kl, mu, logvar, eps):
    """Returns ``(g_mu, g_logvar)``:
    ``g_mu = gz + gkl * mu``, ``g_logvar = gz * eps * exp(logvar/2) / 2 + gkl * (exp(logvar) - 1) / 2``.
    """
    xp = get_array_module(mu, logvar, eps)
    std = xp.exp(0.5 * logvar)
    gkl = grad_kl[:, None]
    g_mu = grad_z + gkl * mu
    g_logvar = 0.5 * grad_z * eps * std + 0.5 * gkl * (std * std - 1.0)
    return g_mu, g_logvar


# --------------------------------------------------------------------------- BCE with logits


def bce_with_logits_forward(logits, target):
    """Elementwise ``-[t log sigmoid(x) + (1-t) log(1 - sigmoid(x))]`` in the stable form
    ``max(x, 0) - x*t + log1p(exp(-|x|))`` (nats)."""
    xp = get_array_module(logits, target)
    return xp.maximum(logits, 0) - logits * target + xp.log1p(xp.exp(-xp.abs(logits)))


def bce_with_logits_backward(grad_output, logits, target):
    """Gradient w.r.t. the logits: ``gy * (sigmoid(x) - t)``, sigmoid as ``(1 + tanh(x/2)) / 2`` (no overflow)."""
    xp = get_array_module(logits, target)
    return grad_output * (0.5 * (1.0 + xp.tanh(0.5 * logits)) - target)


# --------------------------------------------------------------------------- ReLU


def relu_forward(x, *, out=None):
    """``y = max(x, 0)``, elementwise (NaN stays NaN); same shape and dtype as ``x`` (written into ``out`` when
    given, which may be ``x``; ValueError for a wrong ``out``)."""
    xp = get_array_module(x)
    if out is None:
        return xp.maximum(x, 0)
    _out.check(out, x.shape, x.dtype, "relu_forward", xp)
    return xp.maximum(x, 0, out=out)


def relu_backward(grad_output, output, *, out=None):
    """Gradient w.r.t. the input of ReLU from its *output* ``y``: ``gx = 0`` where ``y <= 0``, else ``gy`` (as
    PyTorch's ``threshold_backward``: the subgradient 0 at 0, a NaN ``gy`` where ``y <= 0`` gives 0, a NaN ``y``
    passes ``gy``). ``grad_output`` and ``output`` have one shape; the result has it and the dtype of
    ``grad_output`` (copied into ``out`` when given, which may be ``grad_output``; ValueError for a wrong ``out``)."""
    xp = get_array_module(grad_output, output)
    return _out.write(out, xp.where(output <= 0, xp.zeros((), dtype=grad_output.dtype), grad_output), "relu_backward")
