"""Dense layer op: ``linear(x, weight, bias)`` on the selected ``dense_*`` kernels.

The backward kernel is an op of its own (:class:`LinearBackward`), whose VJP is written with ``linear`` and
``matmul``, so a backward through a dense layer can be differentiated again.
"""
from __future__ import annotations

from minivae import kernels
from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.backend import device_of
from minivae.ops.broadcast import broadcast_to
from minivae.ops.matmul import matmul
from minivae.ops.shape import swap_last
from minivae.ops.tangents import total
from minivae.ops.validate import check_floating, check_ndim


class Linear(Function):
    """``y = x @ W^T + b`` with x ``(N, in_features)``, W ``(out_features, in_features)``, b ``(out_features,)``.

    VJP: ``(gx, gW, gb) = (gy @ W, gy^T @ x, sum_n gy)``, one ``dense_backward`` kernel (:class:`LinearBackward`).
    JVP (bilinear): ``dy = dx @ W^T + x @ dW^T + db``.
    """

    def forward(self, x, weight, bias=None):
        check_ndim("linear", "input", x, 2, "(N, in_features)")
        check_ndim("linear", "weight", weight, 2, "(out_features, in_features)")
        check_floating("linear", input=x, weight=weight, bias=bias)
        if x.shape[1] != weight.shape[1]:
            raise ValueError(f"linear: input has {x.shape[1]} features but weight {tuple(weight.shape)} "
                             f"expects in_features={weight.shape[1]}")
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
        self.save_for_backward(x, weight)
        return kernels.get("dense_forward", device_of(x))(x, weight, bias)

    def backward(self, gy):
        x, weight = self.saved_tensors
        gx, gw, gb = LinearBackward.apply(gy, x, weight)
        return (gx, gw) if len(self.inputs) == 2 else (gx, gw, gb)

    def jvp(self, dx, dw, db=None):
        x, weight = self.saved_tensors
        out = (x.shape[0], weight.shape[0])
        return total(None if dx is None else linear(dx, weight),
                     None if dw is None else linear(x, dw),
                     None if db is None else broadcast_to(db, out))


class LinearBackward(Function):
    """The dense backward kernel as an op: ``(gx, gW, gb) = (gy @ W, gy^T @ x, sum_n gy)``.

    VJP, for cotangents ``(u_x, u_W, u_b)``: ``g_gy = u_x @ W^T + x @ u_W^T + u_b``, ``g_x = gy @ u_W``,
    ``g_W = gy^T @ u_x``. JVP (bilinear in ``gy`` and ``(x, W)``): the op on ``dgy`` plus
    ``(gy @ dW, gy^T @ dx, 0)``.
    """

    def forward(self, gy, x, weight):
        self.save_for_backward(gy, x, weight)
        return kernels.get("dense_backward", device_of(gy))(gy, x, weight)

    def backward(self, u_x, u_w, u_b):
        gy, x, weight = self.saved_tensors
        need = self.needs_input_grad
        g_gy = linear(u_x, weight, u_b) + linear(x, u_w) if need[0] else None
        g_x = matmul(gy, u_w) if need[1] else None
        g_w = matmul(swap_last(gy), u_x) if need[2] else None
        return g_gy, g_x, g_w

    def jvp(self, d_gy, dx, dw):
        gy, x, weight = self.saved_tensors
        gx, gw, gb = LinearBackward.apply(d_gy, x, weight) if d_gy is not None else (None, None, None)
        gx = total(gx, None if dw is None else matmul(gy, dw))
        gw = total(gw, None if dx is None else matmul(swap_last(gy), dx))
        return gx, gw, gb


def linear(x, weight, bias=None) -> Tensor:
    """Affine map ``x @ weight.T + bias`` (PyTorch's ``F.linear``).

    Shapes: x ``(*, in_features)`` (any number of leading dims, as PyTorch; the kernel sees ``(N, in_features)``),
    weight ``(out_features, in_features)``, bias ``(out_features,)`` or None; returns ``(*, out_features)`` in the
    input dtype.
    Raises: ValueError on mismatched shapes; TypeError on non-floating or mixed dtypes.
    """
    from minivae.autograd.tensor import as_tensor
    from minivae.ops.shape import reshape

    x, weight = as_tensor(x), as_tensor(weight)
    lead = x.shape[:-1]
    flat = x if x.ndim == 2 else reshape(x, (-1, x.shape[-1]) if x.ndim else (1, 1))
    y = Linear.apply(flat, weight) if bias is None else Linear.apply(flat, weight, bias)
    return y if x.ndim == 2 else reshape(y, lead + (weight.shape[0],) if weight.ndim == 2 else (-1,))


__all__ = ["linear", "Linear", "LinearBackward"]
