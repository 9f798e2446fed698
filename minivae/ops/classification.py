"""Losses with ``torch.nn.functional``'s signatures and default reduction ("mean"): nll_loss, cross_entropy,
kl_div, binary_cross_entropy, l1_loss. Values in nats; each written with differentiable ops (gather,
log_softmax, where, ...), so every derivative order and forward mode follow from theirs.
"""
from __future__ import annotations

import numpy as np

from minivae.autograd.tensor import Tensor, as_tensor
from minivae.backend import get_array_module
from minivae.ops.compare import maximum
from minivae.ops.elementwise import exp, log
from minivae.ops.extrema import gather
from minivae.ops.loss import _reduce
from minivae.ops.reduction import Sum, mean
from minivae.ops.shape import squeeze, unsqueeze
from minivae.ops.softmax import log_softmax
from minivae.ops.unary import abs as abs_
from minivae.ops.validate import check_floating, check_same_shape
from minivae.ops.where import where


def _class_index(target: Tensor, op: str):
    t = target.data
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must be an integer (class index) tensor, got dtype {t.dtype}")
    return t


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Negative log-likelihood of class indices under log-probabilities (``torch.nn.functional.nll_loss``).

    Args:
        input: log-probabilities ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``.
        target: int64 class indices ``(N)``, ``(N, d1, ...)`` or ``()``; entries equal to ``ignore_index`` count
            for nothing.
        weight: optional per-class weights ``(C,)``; "mean" is then the weighted mean ``sum(w_t l) / sum(w_t)``.
        reduction: "mean" (default), "sum" or "none".
    Raises:
        TypeError: a non-integer target. ValueError: shapes that don't match, a class index out of range.
    """
    x = as_tensor(input)
    t = _class_index(as_tensor(target), "nll_loss")
    unbatched = x.ndim == 1
    if unbatched:
        x, t = unsqueeze(x, 0), t.reshape((1,) + t.shape)
    if x.ndim < 2 or t.shape != (x.shape[0],) + x.shape[2:]:
        raise ValueError(f"nll_loss: expected target of shape {(x.shape[0],) + x.shape[2:]} for input of shape "
                         f"{x.shape}, got {t.shape}")
    xp = get_array_module(x.data)
    ignored = t == ignore_index
    safe = xp.where(ignored, 0, t)
    n_classes = x.shape[1]
    if safe.size and (safe.min() < 0 or safe.max() >= n_classes):
        raise ValueError(f"nll_loss: target holds a class index outside [0, {n_classes - 1}]")
    w = xp.ones(n_classes, dtype=x.dtype) if weight is None else as_tensor(weight).data.astype(x.dtype)
    w_t = Tensor._make(xp.where(ignored, 0, w[safe]).astype(x.dtype))
    picked = squeeze(gather(x, 1, xp.expand_dims(safe, 1).astype(np.int64)), 1)
    loss = -(picked * w_t)
    if reduction == "mean":
        return Sum.apply(loss, dims=tuple(range(loss.ndim)), keepdim=False) / w_t.data.sum()
    return _reduce(squeeze(loss, 0) if unbatched else loss, reduction, "nll_loss")


def cross_entropy(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",  # noqa: A002
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between the softmax of ``input`` (logits, class dim 1) and ``target``
    (``torch.nn.functional.cross_entropy``): class indices (int64, as :func:`nll_loss`) or class probabilities
    (a floating tensor of the input's shape). ``label_smoothing`` mixes the target with the uniform distribution
    (Szegedy et al. 2016, section 7).

    Raises:
        ValueError: shapes that don't match, ``label_smoothing`` outside [0, 1], ``weight`` with label smoothing
            and class indices (not supported). TypeError: a non-floating input.
    """
    x, target = as_tensor(input), as_tensor(target)
    check_floating("cross_entropy", input=x.data)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    class_dim = 0 if x.ndim == 1 else 1
    logp = log_softmax(x, class_dim)
    n_classes = x.shape[class_dim]
    if target.dtype.kind == "f":
        check_same_shape("cross_entropy", input=x, target=target)
        t = target * (1.0 - label_smoothing) + label_smoothing / n_classes if label_smoothing else target
        terms = logp * t if weight is None else logp * t * _class_weights(weight, x, class_dim)
        loss = -Sum.apply(terms, dims=(class_dim,), keepdim=False)
        if reduction == "mean":
            return mean(loss) if loss.ndim else loss
        return _reduce(loss, reduction, "cross_entropy")
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if not label_smoothing:
        return nll
    if weight is not None:
        raise ValueError("cross_entropy: weight together with label_smoothing and class-index targets is not "
                         "supported by minivae; pass class probabilities instead")
    keep = Tensor._make((target.data != ignore_index).astype(x.dtype))
    smooth = -Sum.apply(logp, dims=(class_dim,), keepdim=False) * keep * (1.0 / n_classes)
    if reduction == "mean":
        smooth = Sum.apply(smooth, dims=tuple(range(smooth.ndim)), keepdim=False) / keep.data.sum()
    else:
        smooth = _reduce(smooth, reduction, "cross_entropy")
    return nll * (1.0 - label_smoothing) + smooth * label_smoothing


def _class_weights(weight, x: Tensor, class_dim: int) -> Tensor:
    w = as_tensor(weight)
    return w.reshape((1,) * class_dim + (x.shape[class_dim],) + (1,) * (x.ndim - class_dim - 1))


def kl_div(input, target, reduction: str = "mean", log_target: bool = False) -> Tensor:  # noqa: A002
    """Pointwise KL divergence ``target * (log(target) - input)`` with ``input`` log-probabilities
    (``torch.nn.functional.kl_div``; 0 where target is 0). ``log_target=True``: target holds log-probabilities,
    ``exp(target) * (target - input)``. Reductions: "mean" (over every element, PyTorch's default), "batchmean"
    (the sum over the batch size: the KL divergence proper), "sum", "none". In nats.
    """
    x, target = as_tensor(input), as_tensor(target)
    if log_target:
        loss = exp(target) * (target - x)
    else:
        zero = target.data == 0
        loss = where(zero, 0.0, target * (log(where(zero, 1.0, target)) - x))
    if reduction == "batchmean":
        return Sum.apply(loss, dims=tuple(range(loss.ndim)), keepdim=False) * (1.0 / (x.shape[0] if x.ndim else 1))
    return _reduce(loss, reduction, "kl_div")


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean") -> Tensor:  # noqa: A002
    """``-(t log p + (1 - t) log(1 - p))`` for probabilities ``p = input`` (``torch.nn.functional.
    binary_cross_entropy``), each log clamped at -100 as PyTorch does; prefer the logits form.

    Raises ValueError for mismatched shapes, TypeError for non-floating dtypes."""
    p, t = as_tensor(input), as_tensor(target)
    check_same_shape("binary_cross_entropy", input=p, target=t)
    check_floating("binary_cross_entropy", input=p.data, target=t.data)
    loss = -(t * maximum(log(p), -100.0) + (1.0 - t) * maximum(log(1.0 - p), -100.0))
    if weight is not None:
        loss = loss * as_tensor(weight)
    return _reduce(loss, reduction, "binary_cross_entropy")


def l1_loss(input, target, reduction: str = "mean") -> Tensor:  # noqa: A002 - torch's argument name
    """Absolute error ``|input - target|``, reduced by "mean" (default), "sum" or "none"."""
    x, t = as_tensor(input), as_tensor(target)
    check_same_shape("l1_loss", input=x, target=t)
    return _reduce(abs_(x - t), reduction, "l1_loss")


__all__ = ["nll_loss", "cross_entropy", "kl_div", "binary_cross_entropy", "l1_loss"]
