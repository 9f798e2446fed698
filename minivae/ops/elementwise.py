"""Elementwise arithmetic with broadcasting: + - * / ** neg exp log, and dtype casts.

Each VJP is one line; broadcasting is undone by :func:`sum_to`.
"""
from __future__ import annotations

import numbers

import numpy as np

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.backend import get_array_module
from minivae.ops.broadcast import sum_to


def _scalar_dtype(scalar, dtype):
    """The dtype a Python scalar takes next to a tensor of ``dtype``: the tensor's own (no promotion), except
    that a non-integral scalar next to an integer or bool tensor becomes float32 rather than being truncated
    to the integer dtype (``int_tensor * 2.5`` must not multiply by 2); NumPy's promotion then gives a
    floating result (float64 for int32/int64 tensors)."""
    if dtype.kind in "iub" and not isinstance(scalar, numbers.Integral):
        return np.float32
    return dtype


def _operands(a, b):
    """Tensors for a binary op; a Python scalar takes the dtype of the tensor operand (no promotion)."""
    if isinstance(a, numbers.Number) and isinstance(b, Tensor):
        a = as_tensor(get_array_module(b.data).asarray(a, dtype=_scalar_dtype(a, b.dtype)))
    if isinstance(b, numbers.Number) and isinstance(a, Tensor):
        b = as_tensor(get_array_module(a.data).asarray(b, dtype=_scalar_dtype(b, a.dtype)))
    return a, b


class Add(Function):
    """``y = a + b``; ``ga = sum_to(gy)``, ``gb = sum_to(gy)``."""

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a + b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(gy, self.shapes[1])


class Sub(Function):
    """``y = a - b``; ``ga = gy``, ``gb = -gy`` (each summed to its input's shape)."""

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a - b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(-gy, self.shapes[1])


class Mul(Function):
    """``y = a * b``; ``ga = gy * b``, ``gb = gy * a``."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, gy):
        a, b = self.saved
        ga = sum_to(gy * b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """``y = a / b``; ``ga = gy / b``, ``gb = -gy * a / b**2``."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a / b

    def backward(self, gy):
        a, b = self.saved
        ga = sum_to(gy / b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-gy * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    """``y = a ** b``; ``ga = gy * b * a**(b-1)``, ``gb = gy * y * log(a)`` (needs a > 0)."""

    def forward(self, a, b):
        y = a ** b
        self.save_for_backward(a, b, y)
        return y

    def backward(self, gy):
        a, b, y = self.saved
        xp = get_array_module(a)
        ga = sum_to(gy * b * a ** (b - 1), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy * y * xp.log(a), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """``y = -x``; ``gx = -gy``."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Exp(Function):
    """``y = exp(x)``; ``gx = gy * y``."""

    def forward(self, x):
        y = get_array_module(x).exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved
        return gy * y


class Log(Function):
    """``y = log(x)`` (natural); ``gx = gy / x``."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log(x)

    def backward(self, gy):
        (x,) = self.saved
        return gy / x


class Cast(Function):
    """``y = x.astype(dtype)``; ``gx = gy.astype(x.dtype)``."""

    def forward(self, x):
        self.in_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.in_dtype)


def add(a, b) -> Tensor:
    return Add.apply(*_operands(a, b))


def sub(a, b) -> Tensor:
    return Sub.apply(*_operands(a, b))


def mul(a, b) -> Tensor:
    return Mul.apply(*_operands(a, b))


def div(a, b) -> Tensor:
    return Div.apply(*_operands(a, b))


def pow(a, b) -> Tensor:  # noqa: A001 - the operator's name
    return Pow.apply(*_operands(a, b))


def neg(x) -> Tensor:
    return Neg.apply(x)


def exp(x) -> Tensor:
    return Exp.apply(x)


def log(x) -> Tensor:
    return Log.apply(x)


def cast(x, dtype) -> Tensor:
    return Cast.apply(x, dtype=dtype)
