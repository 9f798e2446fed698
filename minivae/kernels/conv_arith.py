"""Convolution arithmetic shared by every kernel set (Dumoulin & Visin 2016, "A guide to convolution
arithmetic for deep learning"): output sizes, and the two backward kernels of a transposed convolution,
which are conv2d kernels with the roles of input and output swapped (section 4: a transposed convolution is
the adjoint of the convolution with the same weight).
"""
from __future__ import annotations


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis: ``floor((size + 2*padding - kernel) / stride) + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: int, output_padding: int) -> int:
    """Output length of a transposed convolution: ``(size - 1)*stride - 2*padding + kernel + output_padding``."""
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def conv_transpose_output_hw(x_shape, kernel_size, stride, padding, output_padding) -> tuple[int, int]:
    """``(H_out, W_out)`` of conv_transpose2d for an NCHW input shape and ``(h, w)`` pairs."""
    return tuple(conv_transpose_output_size(x_shape[2 + a], kernel_size[a], stride[a], padding[a], output_padding[a])
                 for a in (0, 1))


def conv_transpose2d_backward_kernels(conv2d_forward, conv2d_backward_weight):
    """conv_transpose2d's input- and weight-gradient kernels, built from a kernel set's conv2d kernels."""

    def conv_transpose2d_backward_input(grad_output, weight, stride, padding):
        """Input gradient of conv_transpose2d: a plain convolution of ``grad_output`` with the same weight.

        Args: grad_output ``(N, C_out, H_out, W_out)``, weight ``(C_in, C_out, kH, kW)``.
        Returns: ``(N, C_in, H, W)``.
        """
        return conv2d_forward(grad_output, weight, None, stride, padding)

    def conv_transpose2d_backward_weight(grad_output, x, kernel_size, stride, padding):
        """Weight gradient of conv_transpose2d: conv2d's weight gradient with the roles of x and gy swapped.

        Returns: ``(C_in, C_out, kH, kW)``.
        """
        return conv2d_backward_weight(x, grad_output, kernel_size, stride, padding)

    return conv_transpose2d_backward_input, conv_transpose2d_backward_weight
