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


class Conv2d(Function):
    """2-D cross-correlation (what deep learning calls convolution).

    ``y[n,o,i,j] = b[o] + sum_{c,p,q} W[o,c,p,q] x_pad[n,c,i*s_h+p,j*s_w+q]``.
    VJP: ``gx = conv_transpose2d(gy, W)`` (cropped/padded to x's size), ``gW[o,c,p,q] =
    sum_{n,i,j} gy[n,o,i,j] x_pad[n,c,i*s_h+p,j*s_w+q]``, ``gb[o] = sum_{n,i,j} gy[n,o,i,j]``.
    """

    def forward(self, x, weight, bias=None):
        _check_conv_inputs("conv2d", x, weight, bias, 1, 0)
        (kh, kw), (ph, pw) = weight.shape[2:], self.padding
        if kh > x.shape[2] + 2 * ph or kw > x.shape[3] + 2 * pw:
            raise ValueError(f"conv2d: kernel size ({kh}, {kw}) is larger than the padded input "
                             f"({x.shape[2] + 2 * ph}, {x.shape[3] + 2 * pw})")
        self.device = device_of(x)
        self.save_for_backward(x, weight)
        return kernels.get("conv2d_forward", self.device)(x, weight, bias, self.stride, self.padding)

    def backward(self, gy):
        x, weight = self.saved
        get = lambda name: kernels.get(name, self.device)  # noqa: E731
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = get("conv2d_backward_input")(gy, weight, x.shape[2:], self.stride, self.padding)
        if self.needs_input_grad[1]:
            gw = get("conv2d_backward_weight")(gy, x, weight.shape[2:], self.stride, self.padding)
        if len(self.needs_input_grad) == 3 and self.needs_input_grad[2]:
            gb = get("conv2d_backward_bias")(gy)
        return (gx, gw, gb)[: len(self.needs_input_grad)]


class ConvTranspose2d(Function):
    """2-D transposed convolution (the adjoint of :class:`Conv2d` with the same weight).

    ``y[n,o] = b[o] + sum_c sum_{i,j} x[n,c,i,j] W[c,o,p,q]`` scattered to ``(i*s_h - p_h + p, j*s_w - p_w + q)``.
    Output size ``(H-1)*s - 2*p + k + output_padding`` per axis.
    VJP: ``gx = conv2d(gy, W)``, ``gW = conv2d weight gradient with x and gy swapped``, ``gb = sum gy``.
    """

    def forward(self, x, weight, bias=None):
        _check_conv_inputs("conv_transpose2d", x, weight, bias, 0, 1)
        (sh, sw), (oph, opw) = self.stride, self.output_padding
        if oph >= sh or opw >= sw:
            raise ValueError(f"conv_transpose2d: output_padding {self.output_padding} must be smaller than "
                             f"stride {self.stride}")
        out = conv_transpose_output_hw(x.shape, weight.shape[2:], self.stride, self.padding, self.output_padding)
        if out[0] < 1 or out[1] < 1:
            raise ValueError(f"conv_transpose2d: padding {self.padding} leaves an empty output of size {out}")
        self.device = device_of(x)
        self.save_for_backward(x, weight)
        return kernels.get("conv_transpose2d_forward", self.device)(
            x, weight, bias, self.stride, self.padding, self.output_padding)

    def backward(self, gy):
        x, weight = self.saved
        get = lambda name: kernels.get(name, self.device)  # noqa: E731
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = get("conv_transpose2d_backward_input")(gy, weight, self.stride, self.padding)
        if self.needs_input_grad[1]:
            gw = get("conv_transpose2d_backward_weight")(gy, x, weight.shape[2:], self.stride, self.padding)
        if len(self.needs_input_grad) == 3 and self.needs_input_grad[2]:
            gb = get("conv2d_backward_bias")(gy)
        return (gx, gw, gb)[: len(self.needs_input_grad)]


def conv2d(x, weight, bias=None, stride=1, padding=0) -> Tensor:
    """2-D convolution over NCHW input, as ``torch.nn.functional.conv2d`` (no dilation or groups).

    Args:
        x: ``(N, C_in, H, W)``, floating point.
        weight: ``(C_out, C_in, kH, kW)``; bias: ``(C_out,)`` or None.
        stride: int or ``(s_h, s_w)``, >= 1. padding: int or ``(p_h, p_w)``, >= 0 (zero padding).
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
        x: ``(N, C_in, H, W)``; weight: ``(C_in, C_out, kH, kW)``; bias: ``(C_out,)`` or None.
        stride >= 1, padding >= 0, output_padding < stride: ints or pairs.
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


__all__ = ["conv2d", "conv_transpose2d", "Conv2d", "ConvTranspose2d", "conv_output_size",
           "conv_transpose_output_size"]
