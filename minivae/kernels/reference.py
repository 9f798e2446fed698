"""Plain NumPy (or CuPy) kernels: the ground truth every faster kernel is tested against.

Pure array functions, no autodiff. Convolutions go through im2col: a strided window view of the padded
input (``sliding_window_view``) contracted with the weight by ``tensordot`` (one matmul). Its adjoint,
col2im, scatters columns back with one strided add per kernel tap; it is the input gradient of a
convolution and, the same maths, the forward pass of a transposed convolution (Dumoulin & Visin 2016,
"A guide to convolution arithmetic for deep learning", section 4).

Conventions (as PyTorch): NCHW images; conv2d weight ``(C_out, C_in, kH, kW)``; conv_transpose2d weight
``(C_in, C_out, kH, kW)``; dense weight ``(out_features, in_features)``. ``stride``, ``padding`` and
``output_padding`` are ``(h, w)`` pairs of ints. Outputs have the dtype of the inputs. Works on NumPy and
CuPy arrays alike (the array module is taken from the arguments).
"""
from __future__ import annotations

from minivae.backend import get_array_module
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


def conv2d_forward(x, weight, bias, stride, padding):
    """``y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] * x_pad[n, c, i*sh + p, j*sw + q]``.

    Args: x ``(N, C_in, H, W)``, weight ``(C_out, C_in, kH, kW)``, bias ``(C_out,)`` or None.
    Returns: ``(N, C_out, H_out, W_out)``.
    """
    xp = get_array_module(x, weight)
    cols = im2col(x, weight.shape[2:], stride, padding)
    y = xp.tensordot(cols, weight, axes=((1, 4, 5), (1, 2, 3)))  # (N, H_out, W_out, C_out)
    y = y.transpose(0, 3, 1, 2)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return xp.ascontiguousarray(y)


def _gemm_col2im(grad_output, weight, input_size, stride, padding):
    """``col2im(W^T @ gy)``: conv2d's input gradient, conv_transpose2d's forward (without bias).

    Args: grad_output ``(N, C_out, H_out, W_out)``, weight ``(C_out, C_in, kH, kW)``, input_size ``(H, W)``.
    Returns: ``(N, C_in, H, W)``.
    """
    xp = get_array_module(grad_output, weight)
    cols = xp.tensordot(grad_output, weight, axes=((1,), (0,)))  # (N, H_out, W_out, C_in, kH, kW)
    return xp.ascontiguousarray(col2im(cols.transpose(0, 3, 1, 2, 4, 5), input_size, stride, padding))


def conv2d_backward_weight(grad_output, x, kernel_size, stride, padding):
    """Weight gradient of conv2d: ``gw[o,c,p,q] = sum_{n,i,j} gy[n,o,i,j] * x_pad[n,c,i*sh+p,j*sw+q]``.

    Returns: ``(C_out, C_in, kH, kW)``.
    """
    xp = get_array_module(grad_output, x)
    cols = im2col(x, kernel_size, stride, padding)
    return xp.ascontiguousarray(xp.tensordot(grad_output, cols, axes=((0, 2, 3), (0, 2, 3))))


def conv2d_backward_bias(grad_output):
    """Bias gradient of conv2d and conv_transpose2d: ``grad_output`` summed over N, H, W -> ``(C_out,)``."""
    return grad_output.sum(axis=(0, 2, 3))


# --------------------------------------------------------------------------- conv_transpose2d


def conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding):
    """Transposed convolution, the adjoint of conv2d with the same weight.

    Args: x ``(N, C_in, H, W)``, weight ``(C_in, C_out, kH, kW)``, bias ``(C_out,)`` or None.
    Returns: ``(N, C_out, H_out, W_out)`` with ``H_out = (H-1)*sh - 2*ph + kH + output_padding[0]``.
    """
    size = conv_transpose_output_hw(x.shape, weight.shape[2:], stride, padding, output_padding)
    y = _gemm_col2im(x, weight, size, stride, padding)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y


def conv_transpose2d_backward(grad_output, x, weight, stride, padding):
    """Both gradients of conv_transpose2d: ``gx = conv2d(gy, W)`` (a plain convolution of the output gradient with
    the same weight) and ``gW = conv2d_backward_weight(x, gy)`` (conv2d's weight gradient with the roles of input
    and output swapped).

    Args: grad_output ``(N, C_out, H_out, W_out)``, x ``(N, C_in, H, W)``, weight ``(C_in, C_out, kH, kW)``.
    Returns: ``(gx (N, C_in, H, W), gW (C_in, C_out, kH, kW))``.
    """
    return (conv2d_forward(grad_output, weight, None, stride, padding),
            conv2d_backward_weight(x, grad_output, weight.shape[2:], stride, padding))


# --------------------------------------------------------------------------- dense


def dense_forward(x, weight, bias):
    """``y = x @ weight.T + bias``; x ``(N, in_features)``, weight ``(out_features, in_features)``."""
    y = x @ weight.T
    if bias is not None:
        y += bias
    return y


def dense_backward(grad_output, x, weight):
    """Returns ``(gx, gw, gb) = (gy @ W, gy.T @ x, gy.sum(0))``."""
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


def relu_forward(x):
    """``y = max(x, 0)``, elementwise; same shape and dtype as ``x``."""
    return get_array_module(x).maximum(x, 0)


def relu_backward(grad_output, output):
    """Gradient w.r.t. the input of ReLU from its *output* ``y``: ``gx = 0`` where ``y <= 0``, else ``gy`` (as
    PyTorch's ``threshold_backward``: the subgradient 0 at 0, a NaN ``gy`` where ``y <= 0`` gives 0, a NaN ``y``
    passes ``gy``). ``grad_output`` and ``output`` have one shape; the result has it and the dtype of
    ``grad_output``."""
    xp = get_array_module(grad_output, output)
    return xp.where(output <= 0, xp.zeros((), dtype=grad_output.dtype), grad_output)
