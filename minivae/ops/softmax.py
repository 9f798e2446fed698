"""logsumexp, softmax and log_softmax along a dim, written with differentiable ops (stable: the maximum along
the dim is subtracted first, as a constant, which changes no derivative).

``logsumexp(x) = m + log(sum(exp(x - m)))`` with ``m = max(x)`` (Blanchard, Higham & Higham 2021, "Accurately
computing the log-sum-exp and softmax functions"); ``log_softmax = x - logsumexp(x)``, ``softmax = exp(log_softmax)``.
Their VJPs and JVPs follow from the ops they are made of (``d logsumexp = softmax``).
"""
from __future__ import annotations

import numpy as np

from minivae.autograd.tensor import Tensor, as_tensor
from minivae.backend import get_array_module
from minivae.ops.elementwise import exp, log
from minivae.ops.reduction import Sum
from minivae.ops.shape import squeeze
from minivae.ops.validate import normalize_dim, normalize_dims


def _shift(x: Tensor, dims: tuple) -> Tensor:
    """The (constant) maximum over ``dims`` with ``keepdim=True``; 0 where it is infinite (so that ``x - m`` is
    not NaN for a slice of -inf) or where the slice is empty."""
    xp = get_array_module(x.data)
    if x.numel() == 0:
        return Tensor._make(xp.zeros((1,) * x.ndim, dtype=x.dtype))
    m = x.data.max(axis=dims, keepdims=True)
    return Tensor._make(xp.where(xp.isfinite(m), m, 0).astype(x.dtype))


def logsumexp(x, dim, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(x), dim))`` without overflow (``torch.logsumexp``); ``dim`` an int or tuple.

    Raises IndexError for a dim out of range."""
    x = as_tensor(x)
    dims = normalize_dims(dim, x.ndim, "logsumexp")
    m = _shift(x, dims)
    with np.errstate(divide="ignore"):
        out = log(Sum.apply(exp(x - m), dims=dims, keepdim=True)) + m
    return out if keepdim else squeeze(out, dims) if dims else out


def log_softmax(x, dim: int, dtype=None) -> Tensor:
    """``x - logsumexp(x, dim)``: log-probabilities along ``dim`` (``torch.nn.functional.log_softmax``), computed
    in ``dtype`` when given. Raises IndexError for a dim out of range."""
    x = as_tensor(x)
    if dtype is not None:
        x = x.to(dtype)
    d = normalize_dim(dim, x.ndim, "log_softmax")
    return x - logsumexp(x, (d,) if x.ndim else (), keepdim=True)


def softmax(x, dim: int, dtype=None) -> Tensor:
    """``exp(x) / sum(exp(x), dim)`` along ``dim`` (``torch.nn.functional.softmax``), without overflow."""
    x = as_tensor(x)
    if dtype is not None:
        x = x.to(dtype)
    d = normalize_dim(dim, x.ndim, "softmax")
    dims = (d,) if x.ndim else ()
    e = exp(x - _shift(x, dims))
    return e / Sum.apply(e, dims=dims, keepdim=True)


__all__ = ["logsumexp", "softmax", "log_softmax"]
