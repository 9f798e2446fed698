"""``PiecewiseConstant``: an array function whose derivative is zero wherever it exists (a comparison, a sign, a
tie mask), run as an op.

Being an op (not a bare array expression wrapped in a Tensor) is what lets :func:`minivae.compile` see it: a mask
computed from this step's data is recomputed by every replay, where an array made outside an op would be recorded
as a constant and replayed as the first capture's values. Its VJP and JVP are zero (None), which is the
derivative of a piecewise constant function away from its jumps (PyTorch gives comparisons and ``sign`` no
gradient either).
"""
from __future__ import annotations

import numpy as np

from minivae.autograd.function import Function


class PiecewiseConstant(Function):
    """``y = fn(*arrays)``, with zero derivatives. ``fn`` takes and returns arrays (``np.sign``, a comparison).
    VJP: no gradient for any input (None); JVP: a zero tangent (None).

    Args (of ``apply``): the input Tensors, then ``fn`` and ``name`` (shown in traces and plans) as keywords.
    """

    def __init__(self, fn, name: str):
        self.fn, self.label = fn, name

    @property
    def name(self) -> str:
        """The function's name given to ``apply`` (``greater_equal``, ``sign``, ...)."""
        return self.label

    def forward(self, *arrays):
        with np.errstate(invalid="ignore"):
            return self.fn(*arrays)

    def backward(self, gy):
        return (None,) * len(self.needs_input_grad)

    def jvp(self, *tangents):
        return None


def piecewise(fn, *inputs, name: str) -> "Tensor":  # noqa: F821  (a Tensor; annotations are not evaluated)
    """``fn(*arrays)`` of ``inputs`` (Tensors) as a :class:`PiecewiseConstant` op."""
    return PiecewiseConstant.apply(*inputs, fn=fn, name=name)
