"""Reductions: sum and mean over axes, with ``keepdims`` as in NumPy/PyTorch."""
from __future__ import annotations

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.ops.broadcast import broadcast_to
from minivae.ops.shape import reshape


def _normalize_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % max(ndim, 1))
    if ndim == 0:  # a 0-d tensor accepts axis 0 / -1, as PyTorch, and has nothing to reduce
        return ()
    return tuple(sorted(set(out)))


class Sum(Function):
    """``y = x.sum(axis)``; VJP ``gx = broadcast_to(gy)`` back to ``x.shape`` (through the keepdims shape);
    JVP ``dy = dx.sum(axis)`` (linear)."""

    def forward(self, x):
        self.in_shape = x.shape
        self.axes = _normalize_axis(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        if not self.keepdims and self.axes != tuple(range(len(self.axes))):  # leading axes broadcast back as is
            kept = tuple(1 if i in self.axes else n for i, n in enumerate(self.in_shape))
            gy = reshape(gy, kept)
        return broadcast_to(gy, self.in_shape)

    def jvp(self, dx):
        return sum(dx, axis=self.axes, keepdims=self.keepdims)


def sum(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 - NumPy's name
    """Sum over ``axis`` (int, tuple or None for all)."""
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``: the sum divided by the number of elements reduced."""
    x_shape = x.shape
    axes = _normalize_axis(axis, len(x_shape))
    count = 1
    for a in axes:
        count *= x_shape[a]
    return sum(x, axis=axis, keepdims=keepdims) * (1.0 / max(count, 1))
