"""Dense layer op: ``linear(x, weight, bias)`` on the selected ``dense_*`` kernels."""
from __future__ import annotations

from minivae import kernels
from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.backend import device_of
from minivae.ops.validate import check_floating, check_ndim


class Linear(Function):
    """``y = x @ W^T + b`` with x ``(N, in_features)``, W ``(out_features, in_features)``, b ``(out_features,)``.

    VJP: ``gx = gy @ W``, ``gW = gy^T @ x``, ``gb = sum_n gy``.
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
        self.device = device_of(x)
        self.save_for_backward(x, weight)
        return kernels.get("dense_forward", self.device)(x, weight, bias)

    def backward(self, gy):
        x, weight = self.saved
        gx, gw, gb = kernels.get("dense_backward", self.device)(gy, x, weight)
        return (gx, gw) if len(self.needs_input_grad) == 2 else (gx, gw, gb)


def linear(x, weight, bias=None) -> Tensor:
    """Affine map ``x @ weight.T + bias`` (PyTorch's ``F.linear``).

    Shapes: x ``(N, in_features)``, weight ``(out_features, in_features)``, bias ``(out_features,)`` or None;
    returns ``(N, out_features)`` in the input dtype.
    Raises: ValueError on mismatched shapes; TypeError on non-floating or mixed dtypes.
    """
    return Linear.apply(x, weight) if bias is None else Linear.apply(x, weight, bias)
