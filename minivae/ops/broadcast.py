"""Broadcasting and its adjoint: ``broadcast_to`` and ``sum_to``, each the other's VJP.

``sum_to`` is the single place where broadcasting is undone in backward (HIPS autograd's ``unbroadcast``):
if ``x`` of ``shape`` was broadcast to ``g.shape`` in the forward pass, the VJP is ``sum_to(g, shape)``.
Both are linear, so each one's JVP is itself applied to the tangent.
"""
from __future__ import annotations

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.backend import get_array_module


def sum_to_array(grad, shape: tuple):
    """Sum the array ``grad`` over the axes that broadcasting added or stretched, giving an array of ``shape``."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    grad = grad.sum(axis=axes, keepdims=True) if axes else grad
    return grad.reshape(shape)


class SumTo(Function):
    """``y = sum_to(x, shape)``: sum over broadcast axes. VJP ``gx = broadcast_to(gy, x.shape)``; JVP
    ``dy = sum_to(dx, shape)``."""

    def __init__(self, shape: tuple):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        return sum_to_array(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.in_shape)

    def jvp(self, dx):
        return sum_to(dx, self.shape)


class BroadcastTo(Function):
    """``y = broadcast_to(x, shape)`` (a copy); VJP ``gx = sum_to(gy, x.shape)``; JVP ``dy = broadcast_to(dx)``."""

    def __init__(self, shape: tuple):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape).copy()

    def backward(self, gy):
        return sum_to(gy, self.in_shape)

    def jvp(self, dx):
        return broadcast_to(dx, self.shape)


def sum_to(x: Tensor, shape) -> Tensor:
    """``x`` summed over the axes broadcasting to ``x.shape`` would add or stretch from ``shape``; ``x`` itself
    when the shapes already match (no node is recorded)."""
    shape = tuple(shape)
    return x if x.shape == shape else SumTo.apply(x, shape=shape)


def broadcast_to(x, shape) -> Tensor:
    """``x`` broadcast (NumPy rules) to ``shape``, as ``torch.broadcast_to``; a Tensor that owns its data.

    Raises RuntimeError when the shapes do not broadcast."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    shape = tuple(int(n) for n in shape)
    try:
        get_array_module(x.data).broadcast_shapes(x.shape, shape)
    except ValueError:
        raise RuntimeError(f"broadcast_to: shape {x.shape} can't be broadcast to {shape}") from None
    return BroadcastTo.apply(x, shape=shape)
