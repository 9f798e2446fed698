"""Small helpers the JVP rules share: a tangent that is None stands for zero (the input carries no tangent)."""
from __future__ import annotations

from minivae.autograd.tensor import Tensor


def total(*terms):
    """The sum of the terms that are not None (None when all are None: a zero tangent)."""
    out = None
    for t in terms:
        if t is not None:
            out = t if out is None else out + t
    return out


def or_zeros(tangent, like: Tensor) -> Tensor:
    """``tangent``, or a zero Tensor of ``like``'s shape and dtype when it is None."""
    if tangent is not None:
        return tangent
    from minivae.backend import get_array_module

    return Tensor._make(get_array_module(like.data).zeros(like.shape, dtype=like.dtype))
