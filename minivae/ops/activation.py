"""Activations: relu (on the ``relu_*`` kernels), sigmoid, tanh, softplus (elementwise, any shape, dtype preserved).

Each VJP multiplies the output gradient by the derivative, written with differentiable ops on the saved
input or output; each JVP multiplies the tangent by the same derivative.
"""
from __future__ import annotations

from minivae import kernels
from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.backend import device_of, get_array_module


def _sigmoid(xp, x):
    """``1 / (1 + exp(-x))`` written as ``(1 + tanh(x/2)) / 2``: no overflow for large |x|."""
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


class ReLU(Function):
    """``y = max(x, 0)`` (the ``relu_forward`` kernel); VJP ``gx = gy * [y > 0]`` (the subgradient 0 at x = 0,
    as PyTorch), the op :class:`ReLUBackward`; the mask is a constant, so the second derivative is 0.
    JVP ``dy = dx * [y > 0]``, the same op."""

    def forward(self, x):
        y = kernels.get("relu_forward", device_of(x))(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return ReLUBackward.apply(gy, y)

    def jvp(self, dx):
        (y,) = self.saved_tensors
        return ReLUBackward.apply(dx, y)


class ReLUBackward(Function):
    """ReLU's backward kernel as an op: ``gx = gy`` where the ReLU's output ``y > 0``, else 0; linear in ``gy``
    and piecewise constant in ``y``. VJP for a cotangent ``u``: ``g_gy = u * [y > 0]`` (the same op),
    ``g_y = 0`` (returned as None: no gradient flows into the mask). JVP: the op on ``d_gy``."""

    def forward(self, gy, y):
        self.save_for_backward(y)
        return kernels.get("relu_backward", device_of(y))(gy, y)

    def backward(self, u):
        (y,) = self.saved_tensors
        return (ReLUBackward.apply(u, y) if self.needs_input_grad[0] else None), None

    def jvp(self, d_gy, dy):
        (y,) = self.saved_tensors
        return None if d_gy is None else ReLUBackward.apply(d_gy, y)


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
