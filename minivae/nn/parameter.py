"""``Parameter``: a leaf Tensor that a Module owns and an optimizer updates."""
from __future__ import annotations

from minivae.autograd.tensor import Tensor


class Parameter(Tensor):
    """A Tensor with ``requires_grad=True`` registered by the Module it is assigned to."""

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
