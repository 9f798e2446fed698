"""Convolution output sizes, shared by the conv ops and every kernel set (Dumoulin & Visin 2016, "A guide to
convolution arithmetic for deep learning")."""
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
