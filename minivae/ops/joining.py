"""Joining and splitting: cat, stack, split, chunk, repeat (PyTorch's names, ``dim=`` with ``axis=`` accepted).

Concatenation and splitting are each other's adjoint: the VJP of ``cat`` splits the gradient, the VJP of
``split`` concatenates the gradients. ``stack`` is ``cat`` of unsqueezed inputs; ``chunk`` is a ``split``;
``repeat`` (tiling) sums the gradient over the copies. Each JVP is the op applied to the tangents.
"""
from __future__ import annotations

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.backend import get_array_module
from minivae.ops.reduction import Sum
from minivae.ops.shape import Reshape, reshape, unsqueeze
from minivae.ops.tangents import or_zeros
from minivae.ops.validate import normalize_dim, pick


def _bounds(sizes) -> list:
    """The split points of pieces of ``sizes``: the running totals, without the last."""
    total, out = 0, []
    for s in sizes[:-1]:
        total += s
        out.append(total)
    return out


class Concatenate(Function):
    """``y = cat(xs, dim)``; VJP: each ``gx_i`` is its slice of ``gy`` (a split); JVP: the concatenation of the
    tangents (zeros where an input has none)."""

    def __init__(self, dim: int):
        self.dim = dim

    def forward(self, *xs):
        self.sizes = [x.shape[self.dim] for x in xs]
        return get_array_module(*xs).concatenate(xs, axis=self.dim)

    def backward(self, gy):
        return Split.apply(gy, bounds=_bounds(self.sizes), dim=self.dim)

    def jvp(self, *dxs):
        return Concatenate.apply(*(or_zeros(d, x) for d, x in zip(dxs, self.inputs)), dim=self.dim)


class Split(Function):
    """``ys = split(x, bounds, dim)``; VJP ``gx = cat(gys, dim)``; JVP: the split tangent."""

    def __init__(self, bounds: list, dim: int):
        self.bounds, self.dim = bounds, dim

    def forward(self, x):
        return tuple(get_array_module(x).split(x, self.bounds, axis=self.dim))

    def backward(self, *gys):
        return Concatenate.apply(*gys, dim=self.dim)

    def jvp(self, dx):
        return Split.apply(dx, bounds=self.bounds, dim=self.dim)


def cat(tensors, dim: int = 0, *, axis=None) -> Tensor:
    """Join tensors along ``dim`` (``torch.cat``). Raises ValueError for an empty list or mismatched shapes,
    IndexError for a dim out of range."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    d = normalize_dim(pick("cat", dim if axis is None else None, axis), tensors[0].ndim, "cat")
    for k, t in enumerate(tensors):
        first = tensors[0].shape
        if t.ndim != len(first) or t.shape[:d] + t.shape[d + 1:] != first[:d] + first[d + 1:]:
            raise ValueError(f"cat: sizes of tensors must match except in dimension {d}: tensor 0 has shape "
                             f"{tensors[0].shape}, tensor {k} has shape {t.shape}")
    return Concatenate.apply(*tensors, dim=d)


concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    """Join same-shape tensors along a new dim ``dim`` (``torch.stack``). Raises ValueError for different shapes."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"stack: expects each tensor to be equal size, got {[t.shape for t in tensors]}")
    d = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return Concatenate.apply(*(unsqueeze(t, d) for t in tensors), dim=d)


def split(x, split_size_or_sections, dim: int = 0, *, axis=None) -> tuple:
    """Split along ``dim`` into pieces of ``split_size_or_sections`` (an int size: the last piece may be smaller;
    or a list of sizes), as ``torch.split``. Raises ValueError if the sizes do not add up to the dim's length."""
    x = as_tensor(x)
    d = normalize_dim(pick("split", dim if axis is None else None, axis), x.ndim, "split")
    length = x.shape[d]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections < 1:
            raise ValueError(f"split: split_size must be a positive int, got {split_size_or_sections}")
        n = split_size_or_sections
        sizes = [n] * (length // n) + ([length % n] if length % n else [])
        sizes = sizes or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != length:
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but dim {d} has length {length}")
    return Split.apply(x, bounds=_bounds(sizes), dim=d)


def chunk(x, chunks: int, dim: int = 0) -> tuple:
    """Split into ``chunks`` pieces of ``ceil(length / chunks)`` along ``dim`` (fewer when they run out), as
    ``torch.chunk``. Raises ValueError for ``chunks < 1``."""
    x = as_tensor(x)
    if chunks < 1:
        raise ValueError(f"chunk: chunks must be at least 1, got {chunks}")
    d = normalize_dim(dim, x.ndim, "chunk")
    length = x.shape[d]
    if length == 0:  # PyTorch: ``chunks`` empty pieces
        return Split.apply(x, bounds=[0] * (chunks - 1), dim=d)
    return split(x, -(-length // chunks), d)


class Repeat(Function):
    """``y = x`` tiled ``repeats`` times along each dim (``Tensor.repeat``; new dims go in front). VJP: ``gy``
    summed over the copies (a reshape to ``(r0, n0, r1, n1, ...)`` and a sum); JVP: the tiled tangent."""

    def __init__(self, repeats: tuple):
        self.repeats = repeats

    def forward(self, x):
        self.in_shape = x.shape
        lead = len(self.repeats) - x.ndim
        self.full_shape = (1,) * lead + x.shape
        return get_array_module(x).tile(x.reshape(self.full_shape), self.repeats)

    def backward(self, gy):
        split_shape = []
        for r, n in zip(self.repeats, self.full_shape):
            split_shape += [r, n]
        g = Sum.apply(reshape(gy, tuple(split_shape)), dims=tuple(range(0, len(split_shape), 2)), keepdim=False)
        return Reshape.apply(g, shape=self.in_shape)

    def jvp(self, dx):
        return Repeat.apply(dx, repeats=self.repeats)


def repeat(x, *repeats) -> Tensor:
    """``x`` tiled ``repeats`` times along each dim, as ``Tensor.repeat`` (at least ``x.ndim`` counts).

    Raises RuntimeError for fewer counts than dims."""
    x = as_tensor(x)
    repeats = tuple(int(r) for r in (repeats[0] if len(repeats) == 1 and isinstance(repeats[0], (tuple, list))
                                     else repeats))
    if len(repeats) < x.ndim:
        raise RuntimeError(f"repeat: number of repeat dims ({len(repeats)}) can not be smaller than number of "
                           f"dimensions of tensor ({x.ndim})")
    return Repeat.apply(x, repeats=repeats)


__all__ = ["cat", "concatenate", "stack", "split", "chunk", "repeat", "Concatenate", "Split", "Repeat"]
