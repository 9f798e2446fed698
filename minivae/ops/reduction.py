"""Reductions with PyTorch's ``dim=`` / ``keepdim=`` (NumPy's ``axis=`` / ``keepdims=`` accepted as aliases):
sum, mean, prod, var, std, norm.

``dim`` is None (every dimension), an int or a tuple of ints (``prod`` takes one int, as PyTorch); a dim out of
range raises IndexError naming the dim and the number of dimensions. Each VJP broadcasts the output gradient
back over the reduced dimensions (:func:`expand_reduced`); each JVP reduces the tangent the same way.
"""
from __future__ import annotations

import math

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.backend import get_array_module
from minivae.ops.broadcast import broadcast_to
from minivae.ops.shape import reshape
from minivae.ops.validate import normalize_dims, pick
from minivae.ops.where import where


def kept_shape(shape: tuple, dims: tuple) -> tuple:
    """``shape`` with the reduced ``dims`` set to 1 (the ``keepdim=True`` shape)."""
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


def expand_reduced(g: Tensor, dims: tuple, shape: tuple, keepdim: bool) -> Tensor:
    """A reduction's output (or its gradient) ``g`` broadcast back to the input's ``shape``."""
    if not keepdim and len(shape) != g.ndim:
        g = reshape(g, kept_shape(shape, dims))
    return broadcast_to(g, shape)


def _dims(x: Tensor, dim, axis, op: str, keepdim, keepdims) -> tuple[tuple, bool]:
    return normalize_dims(pick(op, dim, axis), x.ndim, op), bool(keepdim or keepdims)


class Sum(Function):
    """``y = x.sum(dims)``; VJP ``gx = gy`` broadcast back over ``dims``; JVP ``dy = dx.sum(dims)`` (linear)."""

    def __init__(self, dims: tuple, keepdim: bool):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        self.in_shape = x.shape
        return x.sum(axis=self.dims, keepdims=self.keepdim)

    def backward(self, gy):
        return expand_reduced(gy, self.dims, self.in_shape, self.keepdim)

    def jvp(self, dx):
        return Sum.apply(dx, dims=self.dims, keepdim=self.keepdim)


def sum(x, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (None: every dim), as ``torch.sum``; integer and bool tensors sum to int64.

    Raises IndexError for a dim out of range."""
    x = as_tensor(x)
    dims, keep = _dims(x, dim, axis, "sum", keepdim, keepdims)
    return Sum.apply(x, dims=dims, keepdim=keep)


def _count(shape, dims) -> int:
    return math.prod(shape[d] for d in dims)


def mean(x, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``dim`` (None: every dim): the sum times ``1 / count``; NaN over an empty dim (as PyTorch).

    Raises TypeError for an integer or bool tensor (PyTorch: cast it first), IndexError for a bad dim."""
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"mean: needs a floating-point tensor, got dtype {x.dtype}; convert it with .float()")
    dims, keep = _dims(x, dim, axis, "mean", keepdim, keepdims)
    count = _count(x.shape, dims)
    return Sum.apply(x, dims=dims, keepdim=keep) * (1.0 / count if count else math.nan)


def var(x, dim=None, *, correction=None, keepdim: bool = False, unbiased=None, axis=None,
        keepdims: bool = False) -> Tensor:
    """Variance over ``dim``: ``sum((x - mean)^2) / (N - correction)``, ``correction=1`` by default (Bessel's
    correction, as ``torch.var``; ``unbiased=False`` means ``correction=0``). NaN or inf where ``N <= correction``.
    """
    x = as_tensor(x)
    dims, keep = _dims(x, dim, axis, "var", keepdim, keepdims)
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    d = x - mean(x, dims, keepdim=True)
    dof = max(_count(x.shape, dims) - correction, 0)
    return Sum.apply(d * d, dims=dims, keepdim=keep) / float(dof)


def std(x, dim=None, *, correction=None, keepdim: bool = False, unbiased=None, axis=None,
        keepdims: bool = False) -> Tensor:
    """Standard deviation: ``sqrt(var(x, dim, correction))`` (see :func:`var`)."""
    from minivae.ops.unary import sqrt

    return sqrt(var(x, dim, correction=correction, keepdim=keepdim, unbiased=unbiased, axis=axis, keepdims=keepdims))


class Prod(Function):
    """``y = prod(x, dims)``. ``dy/dx_i`` is the product of the other elements (:func:`_prod_grad`, exact where
    ``x`` holds zeros); VJP ``gx = gy * dy/dx``; JVP ``dy = sum(dx * dy/dx)``."""

    def __init__(self, dims: tuple, keepdim: bool):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        self.in_shape = x.shape
        self.save_for_backward(x)
        return x.prod(axis=self.dims, keepdims=self.keepdim)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return expand_reduced(gy, self.dims, self.in_shape, self.keepdim) * _prod_grad(x, self.dims)

    def jvp(self, dx):
        (x,) = self.saved_tensors
        return Sum.apply(dx * _prod_grad(x, self.dims), dims=self.dims, keepdim=self.keepdim)


def _prod_grad(x: Tensor, dims: tuple) -> Tensor:
    """``d prod(x) / d x_i`` = the product of the other elements, written with differentiable ops: with no zero
    in the slice ``prod / x_i``; with one zero, the product of the non-zeros at the zero and 0 elsewhere; with
    more, 0. (Its own derivative is exact away from zeros.)"""
    xp = get_array_module(x.data)
    zero = x.data == 0
    count = zero.sum(axis=dims, keepdims=True)
    x_nz = where(zero, 1.0, x)
    p_nz = Prod.apply(x_nz, dims=dims, keepdim=True)
    one_zero = where(xp.logical_and(zero, count == 1), p_nz, 0.0)
    return where(xp.broadcast_to(count == 0, x.shape), p_nz / x_nz, one_zero)


def prod(x, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool = False) -> Tensor:
    """Product over one ``dim`` (an int) or over every element (``dim=None``), as ``torch.prod``."""
    x = as_tensor(x)
    dims, keep = _dims(x, pick("prod", dim, axis), None, "prod", keepdim, keepdims)
    return Prod.apply(x, dims=dims, keepdim=keep)


class Norm2(Function):
    """The 2-norm ``y = sqrt(sum(x^2))`` over ``dims``. VJP ``gx = x * gy / y`` (0 where ``y = 0``, as PyTorch);
    JVP ``dy = sum(x * dx) / y`` (0 where ``y = 0``)."""

    def __init__(self, dims: tuple, keepdim: bool):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        y = get_array_module(x).sqrt((x * x).sum(axis=self.dims, keepdims=self.keepdim))
        self.save_for_backward(x, y)
        return y

    def _scale(self, g, y):
        """``g / y``, 0 where ``y == 0``."""
        zero = y.data == 0
        return where(zero, 0.0, g / where(zero, 1.0, y))

    def backward(self, gy):
        x, y = self.saved_tensors
        return x * expand_reduced(self._scale(gy, y), self.dims, x.shape, self.keepdim)

    def jvp(self, dx):
        x, y = self.saved_tensors
        return self._scale(Sum.apply(x * dx, dims=self.dims, keepdim=self.keepdim), y)


def norm(x, p="fro", dim=None, keepdim: bool = False) -> Tensor:
    """The vector ``p``-norm over ``dim`` (every element when None), as ``torch.norm``: ``p`` is ``"fro"`` or 2
    (Euclidean), 1, ``inf`` / ``-inf`` (largest / smallest magnitude) or another positive number.

    Raises ValueError for an unsupported ``p``, IndexError for a bad dim.
    """
    from minivae.ops.extrema import amax, amin
    from minivae.ops.unary import abs as abs_

    x = as_tensor(x)
    dims = normalize_dims(dim, x.ndim, "norm")
    if p in ("fro", 2, 2.0):
        return Norm2.apply(x, dims=dims, keepdim=keepdim)
    if p == math.inf:
        return amax(abs_(x), dims, keepdim)
    if p == -math.inf:
        return amin(abs_(x), dims, keepdim)
    if isinstance(p, (int, float)) and p > 0:
        s = Sum.apply(abs_(x) ** float(p), dims=dims, keepdim=keepdim)
        return s if p == 1 else s ** (1.0 / p)
    raise ValueError(f"norm: p must be 'fro', a positive number or +-inf, got {p!r}")


__all__ = ["sum", "mean", "var", "std", "prod", "norm", "Sum", "Prod", "Norm2", "expand_reduced", "kept_shape"]
