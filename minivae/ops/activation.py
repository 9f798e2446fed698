"""Activations: relu, sigmoid, tanh, softplus (elementwise, any shape, dtype preserved).

Each VJP multiplies the output gradient by the derivative, written with differentiable ops on the saved
input or output; each JVP multiplies the tangent by the same derivative.
"""
from __future__ import annotations

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.backend import get_array_module


def _sigmoid(xp, x):
    """``1 / (1 + exp(-x))`` written as ``(1 + tanh(x/2)) / 2``: no overflow for large |x|."""
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


class ReLU(Function):
    """``y = max(x, 0)``; ``gx = gy * [x > 0]`` (the subgradient 0 is used at x = 0, as PyTorch); the mask is
    a constant, so the second derivative is 0. JVP ``dy = dx * [x > 0]``."""

    def forward(self, x):
        y = get_array_module(x).maximum(x, 0)
        self.save_for_backward(y)
        return y

    def _mask(self):
        (y,) = self.saved_tensors
        return Tensor._make(y.data > 0)  # bool: float * bool keeps the float dtype

    def backward(self, gy):
        return gy * self._mask()

    def jvp(self, dx):
        return dx * self._mask()


class Sigmoid(Function):
    """``y = 1 / (1 + exp(-x))``; ``gx = gy * y * (1 - y)``; JVP ``dy = dx * y * (1 - y)``."""

    def forward(self, x):
        y = _sigmoid(get_array_module(x), x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy * y * (1 - y)

    jvp = backward


class Tanh(Function):
    """``y = tanh(x)``; ``gx = gy * (1 - y**2)``; JVP ``dy = dx * (1 - y**2)``."""

    def forward(self, x):
        y = get_array_module(x).tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy * (1 - y * y)

    jvp = backward


class Softplus(Function):
    """``y = log(1 + exp(x))`` computed as ``max(x, 0) + log1p(exp(-|x|))``; ``gx = gy * sigmoid(x)``;
    JVP ``dy = dx * sigmoid(x)``."""

    def forward(self, x):
        xp = get_array_module(x)
        self.save_for_backward(x)
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * sigmoid(x)

    jvp = backward


def relu(x) -> Tensor:
    """``max(x, 0)`` elementwise."""
    return ReLU.apply(x)


def sigmoid(x) -> Tensor:
    """``1 / (1 + exp(-x))`` elementwise, without overflow."""
    return Sigmoid.apply(x)


def tanh(x) -> Tensor:
    """Hyperbolic tangent, elementwise."""
    return Tanh.apply(x)


def softplus(x) -> Tensor:
    """``log(1 + exp(x))`` elementwise, stable for large ``|x|``."""
    return Softplus.apply(x)
