"""Extrema: amax, amin, max / min (values, or values and indices along a dim), argmax, argmin, and ``gather``.

Gradients follow PyTorch: ``amax``/``amin`` and the full ``max()``/``min()`` share the gradient evenly among tied
maxima (:class:`AMax`); ``max(dim)``/``min(dim)`` send it to the index they return (a :func:`gather`, whose
VJP is a scatter-add). The masks and indices are constants, so second derivatives through them are zero.
"""
from __future__ import annotations

from typing import NamedTuple

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.backend import get_array_module
from minivae.ops.piecewise import piecewise
from minivae.ops.reduction import Sum, expand_reduced
from minivae.ops.shape import squeeze
from minivae.ops.validate import normalize_dim, normalize_dims, pick


def _check_nonempty(x: Tensor, dims: tuple, op: str) -> None:
    if x.numel() == 0 and (not dims or any(x.shape[d] == 0 for d in dims)):
        raise IndexError(f"{op}: cannot reduce an empty dimension (shape {x.shape}): the result has no identity")


class AMax(Function):
    """``y = amax(x, dims)`` (``amin`` with ``largest=False``). VJP: ``gy`` shared evenly among the elements equal
    to the extremum, ``gx = mask * gy / count``; JVP: the mean of the tangent over those elements."""

    def __init__(self, dims: tuple, keepdim: bool, largest: bool):
        self.dims, self.keepdim, self.largest = dims, keepdim, largest

    def forward(self, x):
        reduce = x.max if self.largest else x.min
        y = reduce(axis=self.dims, keepdims=self.keepdim)
        self.save_for_backward(x, y)
        return y

    def _weights(self):
        """``mask / count``: 1/k on each of the k tied extrema of a slice, 0 elsewhere (piecewise constant)."""
        return piecewise(self._tie_weights, *self.saved_tensors, name="tie_weights")

    def _tie_weights(self, x, y):
        xp = get_array_module(x)
        y_full = y if self.keepdim else y.reshape(tuple(1 if i in self.dims else n for i, n in enumerate(x.shape)))
        mask = (x == y_full).astype(x.dtype)
        return mask / mask.sum(axis=self.dims, keepdims=True) if mask.size else xp.zeros_like(x)

    def backward(self, gy):
        x = self.inputs[0]
        return expand_reduced(gy, self.dims, x.shape, self.keepdim) * self._weights()

    def jvp(self, dx):
        return Sum.apply(dx * self._weights(), dims=self.dims, keepdim=self.keepdim)


def amax(x, dim=(), keepdim: bool = False) -> Tensor:
    """Largest value over ``dim`` (an int or tuple; ``()`` or None: every dim), as ``torch.amax``.

    Raises IndexError for a bad dim or an empty dim to reduce."""
    x = as_tensor(x)
    dims = normalize_dims(None if dim == () else dim, x.ndim, "amax")
    _check_nonempty(x, dims, "amax")
    return AMax.apply(x, dims=dims, keepdim=keepdim, largest=True)


def amin(x, dim=(), keepdim: bool = False) -> Tensor:
    """Smallest value over ``dim`` (an int or tuple; ``()`` or None: every dim), as ``torch.amin``."""
    x = as_tensor(x)
    dims = normalize_dims(None if dim == () else dim, x.ndim, "amin")
    _check_nonempty(x, dims, "amin")
    return AMax.apply(x, dims=dims, keepdim=keepdim, largest=False)


class MaxResult(NamedTuple):
    """``(values, indices)`` of ``max(dim)`` / ``min(dim)`` (PyTorch's ``torch.return_types.max``)."""

    values: Tensor
    indices: Tensor


def _arg(x: Tensor, dim, keepdim: bool, largest: bool, op: str) -> Tensor:
    xp = get_array_module(x.data)
    if dim is None:
        _check_nonempty(x, (), op)
        flat = x.data.reshape(-1)
        idx = xp.argmax(flat) if largest else xp.argmin(flat)
        return Tensor._make(xp.asarray(idx, dtype=xp.int64).reshape((1,) * x.ndim if keepdim else ()))
    d = normalize_dim(dim, x.ndim, op)
    data = x.data.reshape(1) if x.ndim == 0 else x.data
    _check_nonempty(x, (d,), op)
    idx = (xp.argmax if largest else xp.argmin)(data, axis=d, keepdims=keepdim)
    return Tensor._make(idx.astype(xp.int64).reshape(() if x.ndim == 0 else idx.shape))


def argmax(x, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the largest value along ``dim`` (of the flattened tensor when None), int64, as ``torch.argmax``
    (the first one among ties). Not differentiable."""
    return _arg(as_tensor(x), dim, keepdim, True, "argmax")


def argmin(x, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the smallest value along ``dim`` (of the flattened tensor when None), int64, as ``torch.argmin``."""
    return _arg(as_tensor(x), dim, keepdim, False, "argmin")


def _extremum(x, dim, keepdim, axis, keepdims, largest, op):
    x = as_tensor(x)
    dim = pick(op, dim, axis)
    if dim is None:
        return (amax if largest else amin)(x)
    keep = bool(keepdim or keepdims)
    d = normalize_dim(dim, x.ndim, op)
    indices = _arg(x, d, True, largest, op)
    values = gather(x, d, indices) if x.ndim else x * 1
    if not keep and x.ndim:
        kept = values.shape[:d] + values.shape[d + 1:]
        values, indices = squeeze(values, d), Tensor._make(indices.data.reshape(kept))
    return MaxResult(values, indices)


def max(x, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool = False):  # noqa: A001 - torch's name
    """``max(x)``: the largest element (a 0-d Tensor); ``max(x, dim)``: a ``(values, indices)`` named tuple along
    ``dim``, as ``torch.max``. For the elementwise maximum of two tensors use :func:`maximum`."""
    if isinstance(dim, Tensor):
        raise TypeError("max(x, other) is torch's elementwise form: use minivae.maximum(x, other)")
    return _extremum(x, dim, keepdim, axis, keepdims, True, "max")


def min(x, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool = False):  # noqa: A001 - torch's name
    """``min(x)``: the smallest element; ``min(x, dim)``: ``(values, indices)`` along ``dim``, as ``torch.min``."""
    if isinstance(dim, Tensor):
        raise TypeError("min(x, other) is torch's elementwise form: use minivae.minimum(x, other)")
    return _extremum(x, dim, keepdim, axis, keepdims, False, "min")


def _full_index(index, dim: int):
    """The index tuple that addresses ``x[..., index[...], ...]`` along ``dim`` for every position of ``index``."""
    xp = get_array_module(index)
    grids = list(xp.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


class Gather(Function):
    """``y = gather(x, dim, index)``: ``y[i][j][k] = x[i][index[i][j][k]][k]`` for ``dim = 1``. VJP: ``gy``
    scatter-added back (:class:`ScatterAdd`); JVP: the gather of the tangent."""

    def __init__(self, dim: int, index):
        self.dim, self.index = dim, index

    def forward(self, x):
        self.in_shape = x.shape
        return x[_full_index(self.index, self.dim)]

    def backward(self, gy):
        return ScatterAdd.apply(gy, dim=self.dim, index=self.index, shape=self.in_shape)

    def jvp(self, dx):
        return Gather.apply(dx, dim=self.dim, index=self.index)


class ScatterAdd(Function):
    """``y = zeros(shape)`` with ``x`` added at ``index`` along ``dim`` (repeats accumulate): Gather's adjoint.
    VJP: the gather of ``gy``; JVP: the scatter-add of the tangent."""

    def __init__(self, dim: int, index, shape: tuple):
        self.dim, self.index, self.shape = dim, index, shape

    def forward(self, x):
        xp = get_array_module(x)
        y = xp.zeros(self.shape, dtype=x.dtype)
        if xp.__name__ == "numpy":
            xp.add.at(y, _full_index(self.index, self.dim), x)
        else:  # pragma: no cover - GPU
            import cupyx

            cupyx.scatter_add(y, _full_index(self.index, self.dim), x)
        return y

    def backward(self, gy):
        return Gather.apply(gy, dim=self.dim, index=self.index)

    def jvp(self, dx):
        return ScatterAdd.apply(dx, dim=self.dim, index=self.index, shape=self.shape)


def gather(x, dim: int, index) -> Tensor:
    """Values of ``x`` along ``dim`` at ``index`` (an int64 Tensor or array of x's number of dims), as
    ``torch.gather``. Raises IndexError for a bad dim, TypeError for a non-integer index."""
    x = as_tensor(x)
    idx = index.data if isinstance(index, Tensor) else index
    if getattr(idx, "dtype", None) is None or idx.dtype.kind not in "iu":
        raise TypeError(f"gather: index must be an integer tensor, got {getattr(idx, 'dtype', type(idx).__name__)}")
    d = normalize_dim(dim, x.ndim, "gather")
    return Gather.apply(x, dim=d, index=idx)


__all__ = ["amax", "amin", "max", "min", "argmax", "argmin", "gather", "MaxResult", "AMax", "Gather", "ScatterAdd"]
