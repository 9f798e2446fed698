"""Comparisons (bool tensors, no gradient) and the ops built on them: maximum, minimum, clamp.

``x == y``, ``x < y``, ... are elementwise, as in PyTorch, and return bool Tensors that never require grad.
``maximum``/``minimum`` send the gradient to the larger / smaller operand and split it evenly at ties;
``clamp`` passes it where ``min <= x <= max`` (PyTorch's conventions, ``derivatives.yaml``). The selection
masks are constants, so these ops are linear in their inputs given the masks: second derivatives are 0.
"""
from __future__ import annotations

import numbers

import numpy as np

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.backend import check_same_device, get_array_module
from minivae.ops.broadcast import sum_to
from minivae.ops.elementwise import _operands
from minivae.ops.piecewise import piecewise
from minivae.ops.tangents import total


def _compare(a, b, ufunc: str) -> Tensor:
    a, b = _operands(a, b)
    a, b = as_tensor(a), as_tensor(b)
    check_same_device(a.data, b.data, op=ufunc)
    return piecewise(getattr(get_array_module(a.data, b.data), ufunc), a, b, name=ufunc)


def eq(a, b) -> Tensor:
    """``a == b`` elementwise, a bool Tensor (``torch.eq``)."""
    return _compare(a, b, "equal")


def ne(a, b) -> Tensor:
    """``a != b`` elementwise, a bool Tensor (``torch.ne``)."""
    return _compare(a, b, "not_equal")


def lt(a, b) -> Tensor:
    """``a < b`` elementwise, a bool Tensor (``torch.lt``)."""
    return _compare(a, b, "less")


def le(a, b) -> Tensor:
    """``a <= b`` elementwise, a bool Tensor (``torch.le``)."""
    return _compare(a, b, "less_equal")


def gt(a, b) -> Tensor:
    """``a > b`` elementwise, a bool Tensor (``torch.gt``)."""
    return _compare(a, b, "greater")


def ge(a, b) -> Tensor:
    """``a >= b`` elementwise, a bool Tensor (``torch.ge``)."""
    return _compare(a, b, "greater_equal")


class Select2(Function):
    """``y = wa * a + wb * b`` with constant weights from the forward's comparison: maximum (``largest``) or
    minimum. Weights 1 / 0 to the selected operand, 1/2 each at ties (NaN propagates to both). VJP
    ``ga = sum_to(gy * wa)``, ``gb = sum_to(gy * wb)``; JVP ``dy = wa * da + wb * db``."""

    def __init__(self, largest: bool):
        self.largest = largest

    def forward(self, a, b):
        xp = get_array_module(a, b)
        with np.errstate(invalid="ignore"):
            y = (xp.maximum if self.largest else xp.minimum)(a, b)
            tie = a == b
            a_loses = (a < b) if self.largest else (a > b)
            b_loses = (b < a) if self.largest else (b > a)
        dtype = y.dtype
        self.wa = Tensor._make(xp.where(tie, 0.5, xp.where(a_loses, 0.0, 1.0)).astype(dtype))
        self.wb = Tensor._make(xp.where(tie, 0.5, xp.where(b_loses, 0.0, 1.0)).astype(dtype))
        self.shapes = (a.shape, b.shape)
        return y

    def backward(self, gy):
        need = self.needs_input_grad
        return (sum_to(gy * self.wa, self.shapes[0]) if need[0] else None,
                sum_to(gy * self.wb, self.shapes[1]) if need[1] else None)

    def jvp(self, da, db):
        return total(None if da is None else da * self.wa, None if db is None else db * self.wb)


def maximum(a, b) -> Tensor:
    """Elementwise maximum of two tensors (``torch.maximum``; NaN propagates)."""
    return Select2.apply(*_operands(a, b), largest=True)


def minimum(a, b) -> Tensor:
    """Elementwise minimum of two tensors (``torch.minimum``; NaN propagates)."""
    return Select2.apply(*_operands(a, b), largest=False)


class Clamp(Function):
    """``y = min(max(x, lo), hi)`` with number bounds (either may be None). VJP ``gx = gy`` where
    ``lo <= x <= hi``, else 0 (at a bound the gradient passes, as PyTorch); JVP ``dy = dx`` there, else 0."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        xp = get_array_module(x)
        with np.errstate(invalid="ignore"):
            keep = xp.ones(x.shape, dtype=bool)
            if self.lo is not None:
                keep &= x >= self.lo
            if self.hi is not None:
                keep &= x <= self.hi
        self.keep = Tensor._make(keep.astype(x.dtype))
        return xp.clip(x, self.lo, self.hi).astype(x.dtype, copy=False)

    def backward(self, gy):
        return gy * self.keep

    jvp = backward


def clamp(x, min=None, max=None) -> Tensor:  # noqa: A002 - torch's argument names
    """``x`` clamped into ``[min, max]`` (``torch.clamp``; either bound may be None, or a Tensor: then it is
    ``minimum(maximum(x, min), max)``). Raises ValueError when both bounds are None."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        y = as_tensor(x)
        y = y if min is None else maximum(y, min)
        return y if max is None else minimum(y, max)
    for name, v in (("min", min), ("max", max)):
        if v is not None and not isinstance(v, numbers.Number):
            raise TypeError(f"clamp: {name} must be a number or a Tensor, got {type(v).__name__}")
    return Clamp.apply(x, lo=min, hi=max)


__all__ = ["eq", "ne", "lt", "le", "gt", "ge", "maximum", "minimum", "clamp", "Select2", "Clamp"]
