"""``where(condition, a, b)``: pick from ``a`` where the condition holds, else from ``b`` (broadcasting).

The condition is a constant (a boolean array: no gradient flows into it), so the op is linear in ``(a, b)``:
VJP ``ga = sum_to(where(c, gy, 0))``, ``gb = sum_to(where(c, 0, gy))``; JVP ``dy = where(c, da, db)``. Several
derivative rules use it to mask a formula where it is undefined (PyTorch's ``masked_fill`` in its formulas).
"""
from __future__ import annotations

import numbers

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.backend import get_array_module
from minivae.ops.broadcast import sum_to
from minivae.ops.tangents import or_zeros


class Where(Function):
    """``y = where(condition, a, b)`` with a constant boolean ``condition``; linear in ``(a, b)``: VJP
    ``ga = sum_to(where(c, gy, 0))``, ``gb = sum_to(where(c, 0, gy))``; JVP ``dy = where(c, da, db)``."""

    def __init__(self, condition):
        self.condition = condition

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return get_array_module(a, b).where(self.condition, a, b)

    def backward(self, gy):
        zero = _zeros_like(gy)
        ga = sum_to(Where.apply(gy, zero, condition=self.condition), self.shapes[0]) if self.needs_input_grad[0] \
            else None
        gb = sum_to(Where.apply(zero, gy, condition=self.condition), self.shapes[1]) if self.needs_input_grad[1] \
            else None
        return ga, gb

    def jvp(self, da, db):
        a, b = self.inputs
        return Where.apply(or_zeros(da, a), or_zeros(db, b), condition=self.condition)


def _zeros_like(t: Tensor) -> Tensor:
    return Tensor._make(get_array_module(t.data).zeros((), dtype=t.dtype))


def where(condition, input, other) -> Tensor:  # noqa: A002 - PyTorch's argument name
    """Elementwise ``input if condition else other`` (``torch.where``), with broadcasting.

    Args:
        condition: a bool Tensor or array (no gradient flows into it).
        input, other: Tensors or Python scalars (a scalar takes the other operand's dtype).
    Returns:
        a Tensor of the broadcast shape; differentiable in ``input`` and ``other``.
    Raises:
        TypeError: a condition that is not boolean. ValueError: shapes that do not broadcast.
    """
    cond = condition.data if isinstance(condition, Tensor) else condition
    xp = get_array_module(cond) if not isinstance(cond, (bool, numbers.Number)) else None
    if xp is None or cond.dtype.kind != "b":
        raise TypeError(f"where: condition must be a bool tensor, got {getattr(cond, 'dtype', type(cond).__name__)}")
    if isinstance(input, numbers.Number) and isinstance(other, numbers.Number):
        input = Tensor(input)
    if isinstance(input, numbers.Number):
        input = Tensor._make(xp.asarray(input, dtype=as_tensor(other).dtype))
    if isinstance(other, numbers.Number):
        other = Tensor._make(xp.asarray(other, dtype=as_tensor(input).dtype))
    return Where.apply(input, other, condition=cond)


__all__ = ["where", "Where"]
