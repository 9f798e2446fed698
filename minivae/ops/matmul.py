"""Matrix product ``a @ b``: matrices, batches of matrices (broadcast), and vectors as ``torch.matmul``."""
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
    """``a @ b`` with ``torch.matmul``'s semantics: batched over leading dims (broadcast); a 1-D operand is a
    vector (a dim is added for the product and removed after it), so two vectors give their dot product (0-d).

    Raises RuntimeError for a 0-d operand, ValueError for inner sizes that differ."""
    from minivae.autograd.tensor import as_tensor
    from minivae.ops.shape import squeeze, unsqueeze

    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    vec_a, vec_b = a.ndim == 1, b.ndim == 1
    y = MatMul.apply(unsqueeze(a, 0) if vec_a else a, unsqueeze(b, -1) if vec_b else b)
    if vec_b:
        y = squeeze(y, -1)
    if vec_a:
        y = squeeze(y, -1 if vec_b else -2)
    return y
