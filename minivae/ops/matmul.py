"""Matrix product ``a @ b`` for 2-D operands (and a batch of matrices times a matrix)."""
from __future__ import annotations

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.ops.broadcast import sum_to
from minivae.ops.shape import swap_last
from minivae.ops.tangents import total


class MatMul(Function):
    """``y = a @ b``; VJP ``ga = gy @ b^T``, ``gb = a^T @ gy`` (summed over broadcast batch axes);
    JVP ``dy = da @ b + a @ db`` (bilinear)."""

    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul needs operands with at least 2 dimensions, got shapes {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align ({a.shape[-1]} != {b.shape[-2]})")
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, gy):
        a, b = self.saved_tensors
        ga = sum_to(matmul(gy, swap_last(b)), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(matmul(swap_last(a), gy), b.shape) if self.needs_input_grad[1] else None
        return ga, gb

    def jvp(self, da, db):
        a, b = self.saved_tensors
        return total(None if da is None else matmul(da, b), None if db is None else matmul(a, db))


def matmul(a, b) -> Tensor:
    """``a @ b`` (NumPy's matmul semantics for operands with at least 2 dimensions)."""
    return MatMul.apply(a, b)
