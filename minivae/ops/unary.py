"""Elementwise maths functions: abs, sqrt, rsqrt, reciprocal, log1p, expm1, sin, cos, erf (exp and log live
in :mod:`minivae.ops.elementwise`).

Each VJP multiplies the output gradient by the derivative, written with differentiable ops on the saved input
or output (so it can be differentiated again), as PyTorch's ``derivatives.yaml`` writes it; each JVP multiplies
the tangent by the same derivative. Domain errors give NaN or inf without a warning, as in PyTorch.
"""
from __future__ import annotations

import math

import numpy as np

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.backend import get_array_module
from minivae.ops.piecewise import piecewise


def _quiet(f, *args):
    """``f(*args)`` without NumPy's divide / overflow / invalid warnings (PyTorch gives inf and NaN silently)."""
    with np.errstate(all="ignore"):
        return f(*args)


class Abs(Function):
    """``y = |x|``; VJP ``gx = gy * sign(x)`` (0 at x = 0, as PyTorch); JVP ``dy = dx * sign(x)``."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).abs(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * piecewise(get_array_module(x.data).sign, x, name="sign")

    jvp = backward


class Sqrt(Function):
    """``y = sqrt(x)``; VJP ``gx = gy / (2 y)``; JVP ``dy = dx / (2 y)``."""

    def forward(self, x):
        y = _quiet(get_array_module(x).sqrt, x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy / (y * 2.0)

    jvp = backward


class Rsqrt(Function):
    """``y = 1 / sqrt(x)``; VJP ``gx = -gy y^3 / 2``; JVP ``dy = -dx y^3 / 2``."""

    def forward(self, x):
        xp = get_array_module(x)
        y = _quiet(lambda a: 1.0 / xp.sqrt(a), x).astype(x.dtype, copy=False)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy * (y * y * y) * -0.5

    jvp = backward


class Reciprocal(Function):
    """``y = 1 / x``; VJP ``gx = -gy y^2``; JVP ``dy = -dx y^2``."""

    def forward(self, x):
        y = _quiet(get_array_module(x).reciprocal, x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return -(gy * (y * y))

    jvp = backward


class Log1p(Function):
    """``y = log(1 + x)`` (accurate for small x); VJP ``gx = gy / (1 + x)``; JVP ``dy = dx / (1 + x)``."""

    def forward(self, x):
        self.save_for_backward(x)
        return _quiet(get_array_module(x).log1p, x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy / (x + 1.0)

    jvp = backward


class Expm1(Function):
    """``y = exp(x) - 1`` (accurate for small x); VJP ``gx = gy (y + 1)``; JVP ``dy = dx (y + 1)``."""

    def forward(self, x):
        y = _quiet(get_array_module(x).expm1, x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy * (y + 1.0)

    jvp = backward


class Sin(Function):
    """``y = sin(x)``; VJP ``gx = gy cos(x)``; JVP ``dy = dx cos(x)``."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).sin(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * cos(x)

    jvp = backward


class Cos(Function):
    """``y = cos(x)``; VJP ``gx = -gy sin(x)``; JVP ``dy = -dx sin(x)``."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).cos(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return -(gy * sin(x))

    jvp = backward


class Erf(Function):
    """The error function ``y = erf(x)`` (SciPy's on the CPU, CuPy's on the GPU); VJP
    ``gx = gy 2/sqrt(pi) exp(-x^2)``; JVP ``dy = dx 2/sqrt(pi) exp(-x^2)``."""

    def forward(self, x):
        self.save_for_backward(x)
        if get_array_module(x) is np:
            from scipy.special import erf as erf_
        else:  # pragma: no cover - GPU
            from cupyx.scipy.special import erf as erf_
        return erf_(x).astype(x.dtype, copy=False)

    def backward(self, gy):
        from minivae.ops.elementwise import exp

        (x,) = self.saved_tensors
        return gy * exp(-(x * x)) * (2.0 / math.sqrt(math.pi))

    jvp = backward


def abs(x) -> Tensor:  # noqa: A001 - torch's name
    """``|x|`` elementwise (``torch.abs``)."""
    return Abs.apply(x)


def sqrt(x) -> Tensor:
    """Square root elementwise (NaN below 0), ``torch.sqrt``."""
    return Sqrt.apply(x)


def rsqrt(x) -> Tensor:
    """``1 / sqrt(x)`` elementwise, ``torch.rsqrt``."""
    return Rsqrt.apply(x)


def reciprocal(x) -> Tensor:
    """``1 / x`` elementwise (inf at 0), ``torch.reciprocal``."""
    return Reciprocal.apply(x)


def log1p(x) -> Tensor:
    """``log(1 + x)`` elementwise, accurate near 0, ``torch.log1p``."""
    return Log1p.apply(x)


def expm1(x) -> Tensor:
    """``exp(x) - 1`` elementwise, accurate near 0, ``torch.expm1``."""
    return Expm1.apply(x)


def sin(x) -> Tensor:
    """Sine elementwise (radians), ``torch.sin``."""
    return Sin.apply(x)


def cos(x) -> Tensor:
    """Cosine elementwise (radians), ``torch.cos``."""
    return Cos.apply(x)


def erf(x) -> Tensor:
    """The error function ``2/sqrt(pi) int_0^x exp(-t^2) dt`` elementwise, ``torch.erf``."""
    return Erf.apply(x)


__all__ = ["abs", "sqrt", "rsqrt", "reciprocal", "log1p", "expm1", "sin", "cos", "erf"]
