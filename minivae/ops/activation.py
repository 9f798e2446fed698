"""Activations: relu (on the ``relu_*`` kernels), leaky_relu, gelu, sigmoid, tanh, softplus (elementwise, any
shape, dtype preserved), with PyTorch's formulas and defaults.

Each VJP multiplies the output gradient by the derivative, written with differentiable ops on the saved
input or output; each JVP multiplies the tangent by the same derivative.
"""
from __future__ import annotations

import math

import numpy as np

from minivae import kernels
from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.backend import device_of, get_array_module


def _sigmoid(xp, x):
    """``1 / (1 + exp(-x))``, as PyTorch computes it: full relative accuracy for very negative x (where
    ``exp(-x)`` overflows to inf the result is 0, as in PyTorch), 1 for large x."""
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + xp.exp(-x))).astype(x.dtype, copy=False)


class ReLU(Function):
    """``y = max(x, 0)`` (the ``relu_forward`` kernel; NaN stays NaN); VJP ``gx = gy * [not y <= 0]`` (the
    subgradient 0 at x = 0, and the gradient passed at a NaN, as PyTorch's ``threshold_backward``), the op
    :class:`ReLUBackward`; the mask is a constant, so the second derivative is 0. JVP ``dy = dx * [not y <= 0]``,
    the same op."""

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
    """ReLU's backward kernel as an op: ``gx = 0`` where the ReLU's output ``y <= 0``, else ``gy``; linear in ``gy``
    and piecewise constant in ``y``. VJP for a cotangent ``u``: ``g_gy = u * [not y <= 0]`` (the same op),
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
    """``y = log(1 + exp(beta x)) / beta``, and ``y = x`` where ``beta x > threshold`` (PyTorch's formula and
    defaults ``beta=1, threshold=20``). VJP ``gx = gy * sigmoid(beta x)`` (``gy`` where ``beta x > threshold``);
    JVP the same factor times ``dx``."""

    def __init__(self, beta: float, threshold: float):
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        xp = get_array_module(x)
        self.save_for_backward(x)
        bx = x * self.beta
        with np.errstate(over="ignore"):
            soft = (xp.log1p(xp.exp(bx)) / self.beta).astype(x.dtype, copy=False)
        return xp.where(bx > self.threshold, x, soft)

    def backward(self, gy):
        from minivae.ops.where import where

        (x,) = self.saved_tensors
        return where(x.data * self.beta > self.threshold, gy, gy * sigmoid(x * self.beta))

    jvp = backward


class LeakyReLU(Function):
    """``y = x`` for ``x > 0``, ``negative_slope * x`` otherwise; VJP ``gx = gy`` or ``negative_slope * gy`` (the
    slope at 0, as PyTorch); JVP the same factor times ``dx``. The factor is constant: second derivative 0."""

    def __init__(self, negative_slope: float):
        self.negative_slope = negative_slope

    def forward(self, x):
        xp = get_array_module(x)
        self.factor = Tensor._make(xp.where(x > 0, 1.0, self.negative_slope).astype(x.dtype))
        return xp.where(x > 0, x, x * self.negative_slope).astype(x.dtype, copy=False)

    def backward(self, gy):
        return gy * self.factor

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


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta x)) / beta`` elementwise, ``x`` itself where ``beta x > threshold``
    (``torch.nn.functional.softplus``)."""
    return Softplus.apply(x, beta=float(beta), threshold=float(threshold))


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """``x`` where positive, ``negative_slope * x`` elsewhere (``torch.nn.functional.leaky_relu``)."""
    return LeakyReLU.apply(x, negative_slope=float(negative_slope))


def gelu(x, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit ``x * Phi(x) = x/2 (1 + erf(x / sqrt 2))`` (Hendrycks & Gimpel 2016, eq. 1);
    ``approximate="tanh"``: ``x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``. Written with differentiable ops
    (erf, tanh), so every derivative order follows. Raises ValueError for another ``approximate``."""
    from minivae.autograd.tensor import as_tensor
    from minivae.ops.unary import erf

    x = as_tensor(x)
    if approximate == "none":
        return x * 0.5 * (erf(x * (1.0 / math.sqrt(2.0))) + 1.0)
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (tanh(inner) + 1.0)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
