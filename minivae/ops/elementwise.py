"""Elementwise arithmetic with broadcasting: + - * / ** neg exp log, and dtype casts.

Each VJP is one line written with these same ops (so it can be differentiated again); broadcasting is
undone by :func:`sum_to`. Each JVP is the product rule on the tangents (None = zero tangent).
"""
from __future__ import annotations

import numbers

import numpy as np

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.backend import get_array_module
from minivae.ops.broadcast import broadcast_to, sum_to
from minivae.ops.tangents import total
from minivae.ops.where import where


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
        a = Tensor._make(get_array_module(b.data).asarray(a, dtype=_scalar_dtype(a, b.dtype)))
    if isinstance(b, numbers.Number) and isinstance(a, Tensor):
        b = Tensor._make(get_array_module(a.data).asarray(b, dtype=_scalar_dtype(b, a.dtype)))
    return a, b


def _full(t, shape):
    """A tangent of an operand, broadcast to the output's shape (None stays None)."""
    return t if t is None or t.shape == shape else broadcast_to(t, shape)


class Add(Function):
    """``y = a + b``; VJP ``ga = sum_to(gy)``, ``gb = sum_to(gy)``; JVP ``dy = da + db``."""

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a + b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(gy, self.shapes[1])

    def jvp(self, da, db):
        return _full(total(da, db), self.out_shape())

    def out_shape(self):
        return np.broadcast_shapes(*self.shapes)


class Sub(Function):
    """``y = a - b``; VJP ``ga = gy``, ``gb = -gy`` (each summed to its input's shape); JVP ``dy = da - db``."""

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a - b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(-gy, self.shapes[1])

    def jvp(self, da, db):
        shape = np.broadcast_shapes(*self.shapes)
        return _full(total(da, None if db is None else -db), shape)


class Mul(Function):
    """``y = a * b``; VJP ``ga = gy * b``, ``gb = gy * a``; JVP ``dy = da * b + a * db``."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, gy):
        a, b = self.saved_tensors
        ga = sum_to(gy * b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb

    def jvp(self, da, db):
        a, b = self.saved_tensors
        shape = np.broadcast_shapes(a.shape, b.shape)
        return _full(total(None if da is None else da * b, None if db is None else a * db), shape)


class Div(Function):
    """``y = a / b``; VJP ``ga = gy / b``, ``gb = -gy * a / b**2``; JVP ``dy = (da - y * db) / b``."""

    def forward(self, a, b):
        with np.errstate(all="ignore"):  # x / 0 is inf or NaN without a warning, as in PyTorch
            y = a / b
        self.save_for_backward(a, b, y)
        return y

    def backward(self, gy):
        a, b, _ = self.saved_tensors
        ga = sum_to(gy / b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-gy * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb

    def jvp(self, da, db):
        a, b, y = self.saved_tensors
        return _full(total(da, None if db is None else -(y * db)) / b, y.shape)


class Pow(Function):
    """``y = a ** b``. VJP ``ga = gy * b * a**(b-1)``, 0 where ``b == 0`` (so ``x ** 0`` has derivative 0 even at
    x = 0, and ``d2(x ** 1)`` is 0 there, as PyTorch); ``gb = gy * y * log(a)``, 0 where ``a == 0`` and ``b >= 0``
    (``0 ** w`` is constant there). JVP ``dy = da * (that da-factor) + db * (that db-factor)``."""

    def forward(self, a, b):
        with np.errstate(all="ignore"):
            y = a ** b
        self.save_for_backward(a, b, y)
        return y

    # Each masked formula is computed on a "safe" base (1 where the mask holds), so that the zero cotangent a
    # higher-order backward sends into the unselected branch never meets an inf (0 * inf would be NaN).
    @staticmethod
    def _times_da(g, a, b):
        zero = b.data == 0
        return where(zero, 0.0, g * b * where(zero, 1.0, a) ** (b - 1))

    @staticmethod
    def _times_db(g, a, b, y):
        flat = (a.data == 0) & (b.data >= 0)
        return where(flat, 0.0, g * y * log(where(flat, 1.0, a)))

    def backward(self, gy):
        a, b, y = self.saved_tensors
        ga = sum_to(self._times_da(gy, a, b), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(self._times_db(gy, a, b, y), b.shape) if self.needs_input_grad[1] else None
        return ga, gb

    def jvp(self, da, db):
        a, b, y = self.saved_tensors
        return _full(total(None if da is None else self._times_da(da, a, b),
                           None if db is None else self._times_db(db, a, b, y)), y.shape)


class Neg(Function):
    """``y = -x``; VJP ``gx = -gy``; JVP ``dy = -dx``."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy

    def jvp(self, dx):
        return -dx


class Exp(Function):
    """``y = exp(x)``; VJP ``gx = gy * y``; JVP ``dy = dx * y``."""

    def forward(self, x):
        with np.errstate(over="ignore"):
            y = get_array_module(x).exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy * y

    def jvp(self, dx):
        (y,) = self.saved_tensors
        return dx * y


class Log(Function):
    """``y = log(x)`` (natural); VJP ``gx = gy / x``; JVP ``dy = dx / x``."""

    def forward(self, x):
        self.save_for_backward(x)
        with np.errstate(all="ignore"):  # log(0) = -inf, log(-1) = NaN without a warning, as in PyTorch
            return get_array_module(x).log(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy / x

    def jvp(self, dx):
        (x,) = self.saved_tensors
        return dx / x


class Cast(Function):
    """``y = x.astype(dtype)``; VJP ``gx = gy.astype(x.dtype)``; JVP ``dy = dx.astype(dtype)``. A cast to an
    integer or bool dtype gives a result that does not require grad (as PyTorch)."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.in_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return cast(gy, self.in_dtype)

    def jvp(self, dx):
        return cast(dx, self.dtype)


class Clone(Function):
    """``y = a copy of x`` (own memory, C order); VJP ``gx = gy``; JVP ``dy = dx``."""

    def forward(self, x):
        return get_array_module(x).array(x, copy=True, order="C")

    def backward(self, gy):
        return gy

    def jvp(self, dx):
        return dx


def clone(x) -> Tensor:
    """A copy of ``x`` with its own memory, differentiable (``torch.clone``)."""
    return Clone.apply(x)


def add(a, b) -> Tensor:
    """``a + b`` elementwise with broadcasting (``torch.add``); a Python number takes the tensor's dtype."""
    return Add.apply(*_operands(a, b))


def sub(a, b) -> Tensor:
    """``a - b`` elementwise with broadcasting (``torch.sub``)."""
    return Sub.apply(*_operands(a, b))


def mul(a, b) -> Tensor:
    """``a * b`` elementwise with broadcasting (``torch.mul``)."""
    return Mul.apply(*_operands(a, b))


def div(a, b) -> Tensor:
    """``a / b`` elementwise with broadcasting (``torch.div``; inf or NaN at 0, without a warning)."""
    return Div.apply(*_operands(a, b))


def pow(a, b) -> Tensor:  # noqa: A001 - the operator's name
    """``a ** b`` elementwise with broadcasting (``torch.pow``); derivatives as PyTorch's at a zero base."""
    return Pow.apply(*_operands(a, b))


def neg(x) -> Tensor:
    """``-x`` elementwise (``torch.neg``)."""
    return Neg.apply(x)


def exp(x) -> Tensor:
    """``e ** x`` elementwise (``torch.exp``)."""
    return Exp.apply(x)


def log(x) -> Tensor:
    """Natural logarithm elementwise (``torch.log``; -inf at 0, NaN below)."""
    return Log.apply(x)


def cast(x, dtype) -> Tensor:
    """``x`` converted to ``dtype`` (differentiable: the gradient is converted back)."""
    return Cast.apply(x, dtype=np.dtype(dtype))


__all__ = ["clone", "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "cast", "as_tensor"]
