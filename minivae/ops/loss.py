"""Losses: binary cross-entropy with logits (Bernoulli likelihood) and squared error (Gaussian)."""
from __future__ import annotations

from minivae import kernels
from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.backend import device_of
from minivae.ops.activation import sigmoid
from minivae.ops.reduction import mean, sum
from minivae.ops.tangents import total
from minivae.ops.validate import check_floating, check_same_shape

_REDUCTIONS = ("none", "sum", "mean")


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return sum(loss)
    if reduction == "mean":
        return mean(loss)
    raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


class BCEWithLogits(Function):
    """Elementwise ``l = max(x,0) - x t + log(1 + exp(-|x|))`` = ``-[t log s(x) + (1-t) log(1-s(x))]``.

    VJP: ``gx = gl * (sigmoid(x) - t)`` (the fused kernel, as the op :class:`BCEWithLogitsBackward`),
    ``gt = -gl * x``. JVP: ``dl = (sigmoid(x) - t) dx - x dt``.
    """

    def forward(self, logits, target):
        self.save_for_backward(logits, target)
        return kernels.get("bce_with_logits_forward", device_of(logits))(logits, target)

    def backward(self, gy):
        logits, target = self.saved_tensors
        gx = BCEWithLogitsBackward.apply(gy, logits, target) if self.needs_input_grad[0] else None
        gt = -gy * logits if self.needs_input_grad[1] else None
        return gx, gt

    def jvp(self, dx, dt):
        logits, target = self.saved_tensors
        return total(None if dx is None else BCEWithLogitsBackward.apply(dx, logits, target),
                     None if dt is None else -(logits * dt))


class BCEWithLogitsBackward(Function):
    """The BCE backward kernel as an op: ``gx = gy (sigmoid(x) - t)``, linear in ``gy``.

    VJP for a cotangent ``u``: ``g_gy = u (sigmoid(x) - t)`` (the same kernel), ``g_x = u gy s (1 - s)``,
    ``g_t = -u gy``. JVP: ``the op on d_gy + gy s (1 - s) dx - gy dt``.
    """

    def forward(self, gy, logits, target):
        if gy.shape != logits.shape:
            raise ValueError(f"bce_with_logits backward: gradient shape {gy.shape} != logits shape {logits.shape}")
        self.save_for_backward(gy, logits, target)
        return kernels.get("bce_with_logits_backward", device_of(logits))(gy, logits, target)

    def backward(self, u):
        gy, logits, target = self.saved_tensors
        need = self.needs_input_grad
        s = sigmoid(logits) if need[1] else None
        return (BCEWithLogitsBackward.apply(u, logits, target) if need[0] else None,
                u * gy * s * (1.0 - s) if need[1] else None,
                -(u * gy) if need[2] else None)

    def jvp(self, d_gy, dx, dt):
        gy, logits, target = self.saved_tensors
        s = sigmoid(logits) if dx is not None else None
        return total(None if d_gy is None else BCEWithLogitsBackward.apply(d_gy, logits, target),
                     None if dx is None else gy * s * (1.0 - s) * dx,
                     None if dt is None else -(gy * dt))


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean",  # noqa: A002
                                     pos_weight=None) -> Tensor:
    """Bernoulli negative log-likelihood of ``target`` under ``sigmoid(input)``, in nats, with
    ``torch.nn.functional.binary_cross_entropy_with_logits``'s signature and default reduction ("mean").

    Stable form ``max(x, 0) - x t + log1p(exp(-|x|))`` (the fused kernel); with ``pos_weight`` (the weight of the
    positive term, broadcast along the last dim) ``(1 - t) x + (1 + (pos_weight - 1) t) softplus(-x)``;
    ``weight`` multiplies each element's loss.

    Args:
        input (logits), target: one shape and floating dtype.
        reduction: "mean" (default), "sum" (the VAE convention; the ELBO code passes it) or "none".
    Raises:
        ValueError: shape mismatch or unknown reduction. TypeError: non-floating or mixed dtypes.
    """
    from minivae.ops.activation import softplus

    logits, target = as_tensor(input), as_tensor(target)
    check_same_shape("binary_cross_entropy_with_logits", logits=logits, target=target)
    check_floating("binary_cross_entropy_with_logits", logits=logits.data, target=target.data)
    if pos_weight is None:
        loss = BCEWithLogits.apply(logits, target)
    else:
        loss = (1.0 - target) * logits + (target * (as_tensor(pos_weight) - 1.0) + 1.0) * softplus(-logits)
    if weight is not None:
        loss = loss * as_tensor(weight)
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


class SquaredError(Function):
    """Elementwise ``l = (x - t)^2``; VJP ``gx = 2 gl (x - t)``, ``gt = -gx``; JVP ``dl = 2 (x - t)(dx - dt)``."""

    def forward(self, x, target):
        self.save_for_backward(x, target)
        diff = x - target
        return diff * diff

    def backward(self, gy):
        x, target = self.saved_tensors
        g = gy * (x - target) * 2.0
        return g, -g

    def jvp(self, dx, dt):
        x, target = self.saved_tensors
        return (x - target) * total(dx, None if dt is None else -dt) * 2.0


def mse_loss(input, target, reduction: str = "mean") -> Tensor:  # noqa: A002 - torch's argument name
    """Squared error ``(input - target)^2``, reduced by "mean" (default, as PyTorch), "sum" or "none".

    Raises ValueError on shape mismatch or unknown reduction, TypeError on non-floating dtypes.
    """
    x, target = as_tensor(input), as_tensor(target)
    check_same_shape("mse_loss", input=x, target=target)
    check_floating("mse_loss", input=x.data, target=target.data)
    return _reduce(SquaredError.apply(x, target), reduction, "mse_loss")


def gaussian_nll(x, target, sigma: float = 1.0) -> Tensor:
    """Per-example negative log-likelihood of ``target`` under N(x, sigma^2 I), summed over all but the
    first axis, in nats: ``0.5 * ||t - x||^2 / sigma^2 + D/2 * log(2 pi sigma^2)``. Returns ``(N,)``."""
    import math

    x, target = as_tensor(x), as_tensor(target)
    se = mse_loss(x, target, reduction="none")
    d = 1
    for n in x.shape[1:]:
        d *= n
    per_example = sum(se.reshape(x.shape[0], -1), dim=1)
    return per_example * (0.5 / sigma ** 2) + 0.5 * d * math.log(2 * math.pi * sigma ** 2)


__all__ = ["binary_cross_entropy_with_logits", "mse_loss", "gaussian_nll"]
