"""Matrix product ``a @ b`` for 2-D operands (and a batch of matrices times a matrix)."""
from __future__ import annotations

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.ops.broadcast import sum_to


class MatMul(Function):
    """``y = a @ b``; ``ga = gy @ b^T``, ``gb = a^T @ gy`` (summed over broadcast batch axes)."""

    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul needs operands with at least 2 dimensions, got shapes {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align ({a.shape[-1]} != {b.shape[-2]})")
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, gy):
        a, b = self.saved
        ga = sum_to(gy @ b.swapaxes(-1, -2), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(a.swapaxes(-1, -2) @ gy, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def matmul(a, b) -> Tensor:
    return MatMul.apply(a, b)
