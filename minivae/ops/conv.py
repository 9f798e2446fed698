"""Convolution ops, NCHW, with PyTorch's shapes and semantics:

* ``conv2d(x, weight, bias, stride, padding)``, weight ``(C_out, C_in, kH, kW)``;
* ``conv_transpose2d(x, weight, bias, stride, padding, output_padding)``, weight ``(C_in, C_out, kH, kW)``.

Each is the other's adjoint: the input gradient of conv2d is a transposed convolution of the output
gradient with the same weight, and the input gradient of conv_transpose2d is a convolution (Dumoulin &
Visin 2016, section 4). The arrays are computed by the selected kernels (``minivae.kernels``).
"""
from __future__ import annotations

from minivae import kernels
from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.backend import device_of
from minivae.kernels.conv_arith import conv_output_size, conv_transpose_output_hw, conv_transpose_output_size
from minivae.ops.broadcast import broadcast_to
from minivae.ops.shape import reshape
from minivae.ops.tangents import total
from minivae.ops.validate import check_floating, check_ndim, pair


def _check_conv_inputs(op, x, weight, bias, in_channels_axis, out_channels_axis):
    check_ndim(op, "input", x, 4, "(N, C, H, W)")
    check_ndim(op, "weight", weight, 4, "(C_out, C_in, kH, kW)" if op == "conv2d" else "(C_in, C_out, kH, kW)")
    check_floating(op, input=x, weight=weight, bias=bias)
    if x.shape[1] != weight.shape[in_channels_axis]:
        raise ValueError(f"{op}: input has {x.shape[1]} channels but weight {tuple(weight.shape)} expects "
                         f"in_channels={weight.shape[in_channels_axis]}")
    c_out = weight.shape[out_channels_axis]
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"{op}: bias must have shape ({c_out},), got {tuple(bias.shape)}")


def _fill_padding(in_hw, out_hw, kernel_size, stride, padding) -> tuple[int, int]:
    """The ``output_padding`` with which conv_transpose2d of an ``out_hw`` map gives back ``in_hw``: the rows and
    columns of a conv2d input that no window reached, ``(H + 2p - k) mod s`` per axis (always < s)."""
    return tuple((in_hw[a] + 2 * padding[a] - kernel_size[a]) % stride[a] for a in (0, 1))


def _bias_map(b, shape) -> Tensor:
    """A bias ``(C,)`` broadcast to an NCHW ``shape``."""
    return broadcast_to(reshape(b, (1, shape[1], 1, 1)), shape)


class Conv2d(Function):
    """2-D cross-correlation (what deep learning calls convolution).

    ``y[n,o,i,j] = b[o] + sum_{c,p,q} W[o,c,p,q] x_pad[n,c,i*s_h+p,j*s_w+q]``.
    VJP (Dumoulin & Visin 2016, section 4): ``gx = conv_transpose2d(gy, W)`` with the output padding that gives
    back x's size; ``gW = conv2d_weight_grad(gy, x)`` (:class:`Conv2dWeightGrad`); ``gb = sum_{n,i,j} gy``.
    JVP (bilinear): ``dy = conv2d(dx, W) + conv2d(x, dW) + db``.
    """

    def __init__(self, stride: tuple, padding: tuple):
        self.stride, self.padding = stride, padding

    def forward(self, x, weight, bias=None):
        _check_conv_inputs("conv2d", x, weight, bias, 1, 0)
        (kh, kw), (ph, pw) = weight.shape[2:], self.padding
        if kh > x.shape[2] + 2 * ph or kw > x.shape[3] + 2 * pw:
            raise ValueError(f"conv2d: kernel size ({kh}, {kw}) is larger than the padded input "
                             f"({x.shape[2] + 2 * ph}, {x.shape[3] + 2 * pw})")
        self.save_for_backward(x, weight)
        return kernels.get("conv2d_forward", device_of(x))(x, weight, bias, self.stride, self.padding)

    def backward(self, gy):
        x, weight = self.saved_tensors
        need, k = self.needs_input_grad, weight.shape[2:]
        gx = gw = gb = None
        if need[0]:
            op = _fill_padding(x.shape[2:], gy.shape[2:], k, self.stride, self.padding)
            gx = ConvTranspose2d.apply(gy, weight, stride=self.stride, padding=self.padding, output_padding=op)
        if need[1]:
            gw = Conv2dWeightGrad.apply(gy, x, kernel_size=k, stride=self.stride, padding=self.padding)
        if len(need) == 3 and need[2]:
            gb = ConvBiasGrad.apply(gy)
        return (gx, gw, gb)[: len(need)]

    def jvp(self, dx, dw, db=None):
        x, weight = self.saved_tensors
        s, p = self.stride, self.padding
        dy = total(None if dx is None else Conv2d.apply(dx, weight, stride=s, padding=p),
                   None if dw is None else Conv2d.apply(x, dw, stride=s, padding=p))
        if db is not None:
            bias_term = _bias_map(db, dy.shape if dy is not None else self.output_meta_shape())
            dy = total(dy, bias_term)
        return dy

    def output_meta_shape(self):
        """The output shape ``(N, C_out, H_out, W_out)`` from the saved input and weight."""
        x, weight = self.saved_tensors
        return (x.shape[0], weight.shape[0]) + tuple(
            conv_output_size(x.shape[2 + a], weight.shape[2 + a], self.stride[a], self.padding[a]) for a in (0, 1))


class ConvTranspose2d(Function):
    """2-D transposed convolution (the adjoint of :class:`Conv2d` with the same weight).

    ``y[n,o] = b[o] + sum_c sum_{i,j} x[n,c,i,j] W[c,o,p,q]`` scattered to ``(i*s_h - p_h + p, j*s_w - p_w + q)``.
    Output size ``(H-1)*s - 2*p + k + output_padding`` per axis.
    VJP: ``gx = conv2d(gy, W)``; ``gW = conv2d_weight_grad(x, gy)`` (conv2d's weight gradient with the roles of
    input and output swapped); ``gb = sum gy``. When both gx and gW are needed they come from one op,
    :class:`ConvTranspose2dGrads` (one kernel call, in every grad mode); when one is, from its own op.
    JVP (bilinear): ``dy = convT(dx, W) + convT(x, dW) + db``.
    """

    def __init__(self, stride: tuple, padding: tuple, output_padding: tuple):
        self.stride, self.padding, self.output_padding = stride, padding, output_padding

    def forward(self, x, weight, bias=None):
        _check_conv_inputs("conv_transpose2d", x, weight, bias, 0, 1)
        (sh, sw), (oph, opw) = self.stride, self.output_padding
        if oph >= sh or opw >= sw:
            raise ValueError(f"conv_transpose2d: output_padding {self.output_padding} must be smaller than "
                             f"stride {self.stride}")
        out = conv_transpose_output_hw(x.shape, weight.shape[2:], self.stride, self.padding, self.output_padding)
        if out[0] < 1 or out[1] < 1:
            raise ValueError(f"conv_transpose2d: padding {self.padding} leaves an empty output of size {out}")
        self.save_for_backward(x, weight)
        return kernels.get("conv_transpose2d_forward", device_of(x))(
            x, weight, bias, self.stride, self.padding, self.output_padding)

    def backward(self, gy):
        x, weight = self.saved_tensors
        need, s, p = self.needs_input_grad, self.stride, self.padding
        gx = gw = gb = None
        if need[0] and need[1]:
            gx, gw = ConvTranspose2dGrads.apply(gy, x, weight, stride=s, padding=p)
        elif need[0]:
            gx = Conv2d.apply(gy, weight, stride=s, padding=p)
        elif need[1]:
            gw = Conv2dWeightGrad.apply(x, gy, kernel_size=weight.shape[2:], stride=s, padding=p)
        if len(need) == 3 and need[2]:
            gb = ConvBiasGrad.apply(gy)
        return (gx, gw, gb)[: len(need)]

    def jvp(self, dx, dw, db=None):
        x, weight = self.saved_tensors
        kw = dict(stride=self.stride, padding=self.padding, output_padding=self.output_padding)
        dy = total(None if dx is None else ConvTranspose2d.apply(dx, weight, **kw),
                   None if dw is None else ConvTranspose2d.apply(x, dw, **kw))
        if db is not None:
            shape = (x.shape[0], weight.shape[1]) + conv_transpose_output_hw(
                x.shape, weight.shape[2:], self.stride, self.padding, self.output_padding)
            dy = total(dy, _bias_map(db, shape))
        return dy


class ConvTranspose2dGrads(Function):
    """Both gradients of conv_transpose2d as one op (the kernel ``conv_transpose2d_backward``), from its output
    gradient ``gy (N, C_out, H_out, W_out)``, input ``x (N, C_in, H, W)`` and weight ``W (C_in, C_out, kH, kW)``:

    ``gx = conv2d(gy, W)`` ``(N, C_in, H, W)`` and ``gW = conv2d_weight_grad(x, gy)`` ``(C_in, C_out, kH, kW)``.

    Bilinear in ``(gy, W)`` and in ``(x, gy)``: VJP for cotangents ``(a, b)`` of ``(gx, gW)``:
    ``g_gy = conv_transpose2d(a, W) + conv_transpose2d(x, b)`` (cropped to gy's size by the output padding),
    ``g_x = conv2d(gy, b)``, ``g_W = conv2d_weight_grad(a, gy)``. JVP:
    ``d_gx = conv2d(d_gy, W) + conv2d(gy, dW)``, ``d_gW = conv2d_weight_grad(x, d_gy) + conv2d_weight_grad(dx, gy)``.
    """

    def __init__(self, stride: tuple, padding: tuple):
        self.stride, self.padding = stride, padding

    def forward(self, gy, x, weight):
        self.save_for_backward(gy, x, weight)
        return kernels.get("conv_transpose2d_backward", device_of(gy))(gy, x, weight, self.stride, self.padding)

    def backward(self, a, b):
        gy, x, weight = self.saved_tensors
        need, s, p, k = self.needs_input_grad, self.stride, self.padding, weight.shape[2:]
        g_gy = g_x = g_w = None
        if need[0]:
            op = _fill_padding(gy.shape[2:], x.shape[2:], k, s, p)
            g_gy = total(ConvTranspose2d.apply(a, weight, stride=s, padding=p, output_padding=op),
                         ConvTranspose2d.apply(x, b, stride=s, padding=p, output_padding=op))
        if need[1]:
            g_x = Conv2d.apply(gy, b, stride=s, padding=p)
        if need[2]:
            g_w = Conv2dWeightGrad.apply(a, gy, kernel_size=k, stride=s, padding=p)
        return g_gy, g_x, g_w

    def jvp(self, d_gy, dx, dw):
        gy, x, weight = self.saved_tensors
        s, p, k = self.stride, self.padding, weight.shape[2:]
        d_gx = total(None if d_gy is None else Conv2d.apply(d_gy, weight, stride=s, padding=p),
                     None if dw is None else Conv2d.apply(gy, dw, stride=s, padding=p))
        d_gw = total(None if d_gy is None else Conv2dWeightGrad.apply(x, d_gy, kernel_size=k, stride=s, padding=p),
                     None if dx is None else Conv2dWeightGrad.apply(dx, gy, kernel_size=k, stride=s, padding=p))
        return d_gx, d_gw


class Conv2dWeightGrad(Function):
    """conv2d's weight gradient as an op: ``gW[o,c,p,q] = sum_{n,i,j} gy[n,o,i,j] x_pad[n,c,i*s+p,j*s+q]``,
    ``(C_out, C_in, kH, kW)`` from ``gy (N, C_out, H_out, W_out)`` and ``x (N, C_in, H, W)``.

    It is bilinear in ``(gy, x)``. VJP for a cotangent ``u`` of gW: ``g_gy = conv2d(x, u)`` and
    ``g_x = conv_transpose2d(gy, u)`` (cropped to x's size by the output padding). JVP:
    ``conv2d_weight_grad(dgy, x) + conv2d_weight_grad(gy, dx)``.
    """

    def __init__(self, kernel_size: tuple, stride: tuple, padding: tuple):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, gy, x):
        self.save_for_backward(gy, x)
        return kernels.get("conv2d_backward_weight", device_of(gy))(gy, x, self.kernel_size, self.stride,
                                                                    self.padding)

    def backward(self, u):
        gy, x = self.saved_tensors
        s, p = self.stride, self.padding
        g_gy = Conv2d.apply(x, u, stride=s, padding=p) if self.needs_input_grad[0] else None
        g_x = None
        if self.needs_input_grad[1]:
            op = _fill_padding(x.shape[2:], gy.shape[2:], self.kernel_size, s, p)
            g_x = ConvTranspose2d.apply(gy, u, stride=s, padding=p, output_padding=op)
        return g_gy, g_x

    def jvp(self, d_gy, dx):
        gy, x = self.saved_tensors
        kw = dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)
        return total(None if d_gy is None else Conv2dWeightGrad.apply(d_gy, x, **kw),
                     None if dx is None else Conv2dWeightGrad.apply(gy, dx, **kw))


class ConvBiasGrad(Function):
    """The bias gradient of both convolutions as an op: ``gb[c] = sum_{n,h,w} gy[n,c,h,w]``. VJP: ``u``
    broadcast back over N, H, W; JVP: the op on the tangent (linear)."""

    def forward(self, gy):
        self.in_shape = gy.shape
        return kernels.get("conv2d_backward_bias", device_of(gy))(gy)

    def backward(self, u):
        return _bias_map(u, self.in_shape)

    def jvp(self, d_gy):
        return ConvBiasGrad.apply(d_gy)


def conv2d(x, weight, bias=None, stride=1, padding=0) -> Tensor:
    """2-D convolution over NCHW input, as ``torch.nn.functional.conv2d`` (no dilation or groups).

    Args:
        x: ``(N, C_in, H, W)``, floating point.
        weight: ``(C_out, C_in, kH, kW)``, the input's dtype.
        bias: ``(C_out,)`` or None (default).
        stride: int or ``(s_h, s_w)``, at least 1 (default 1).
        padding: int or ``(p_h, p_w)``, at least 0: zeros added on each side (default 0).
    Returns:
        ``(N, C_out, H_out, W_out)``, ``H_out = floor((H + 2 p_h - kH) / s_h) + 1``, in the input dtype.
    Raises:
        ValueError: wrong number of dimensions, channel mismatch, kernel larger than the padded input.
        TypeError: integer or mixed dtypes, stride/padding not ints.
    """
    stride, padding = pair(stride, "stride", "conv2d", 1), pair(padding, "padding", "conv2d", 0)
    args = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d.apply(*args, stride=stride, padding=padding)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0) -> Tensor:
    """2-D transposed convolution over NCHW input, as ``torch.nn.functional.conv_transpose2d``.

    Args:
        x: ``(N, C_in, H, W)``, floating point.
        weight: ``(C_in, C_out, kH, kW)``, the input's dtype.
        bias: ``(C_out,)`` or None (default).
        stride: int or pair, at least 1 (default 1).
        padding: int or pair, at least 0 (default 0): rows and columns cropped from each side of the full output.
        output_padding: int or pair, smaller than stride (default 0): rows and columns added at the bottom/right.
    Returns:
        ``(N, C_out, H_out, W_out)``, ``H_out = (H - 1) s_h - 2 p_h + kH + output_padding_h``.
    Raises:
        ValueError: wrong dimensions, channel mismatch, ``output_padding >= stride``, empty output.
        TypeError: integer or mixed dtypes.
    """
    op = "conv_transpose2d"
    stride, padding = pair(stride, "stride", op, 1), pair(padding, "padding", op, 0)
    output_padding = pair(output_padding, "output_padding", op, 0)
    args = (x, weight) if bias is None else (x, weight, bias)
    return ConvTranspose2d.apply(*args, stride=stride, padding=padding, output_padding=output_padding)


__all__ = ["conv2d", "conv_transpose2d", "Conv2d", "ConvTranspose2d", "ConvTranspose2dGrads", "Conv2dWeightGrad",
           "ConvBiasGrad",
           "conv_output_size",
           "conv_transpose_output_size"]
