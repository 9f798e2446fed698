"""Shape ops: reshape, transpose, concatenate, split, indexing (``x[...]``), broadcast_to.

All are linear, so each JVP is the op itself applied to the tangent, and each VJP is the adjoint shape op
(reshape back, the inverse permutation, split <-> concatenate, gather <-> scatter-add).
"""
from __future__ import annotations

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.backend import get_array_module
from minivae.ops.broadcast import BroadcastTo, broadcast_to  # noqa: F401  (re-exported: a shape op too)
from minivae.ops.tangents import or_zeros


class Reshape(Function):
    """``y = x.reshape(shape)``; VJP ``gx = gy.reshape(x.shape)``; JVP ``dy = dx.reshape(shape)``."""

    def forward(self, x):
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.in_shape)

    def jvp(self, dx):
        return reshape(dx, self.shape)


class Transpose(Function):
    """``y = x.transpose(axes)``; VJP ``gx = gy.transpose(argsort(axes))``; JVP ``dy = dx.transpose(axes)``."""

    def forward(self, x):
        self.perm = tuple(range(x.ndim))[::-1] if self.axes is None else tuple(a % x.ndim for a in self.axes)
        if sorted(self.perm) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {self.axes} are not a permutation of {x.ndim} dimensions")
        return x.transpose(self.perm)

    def backward(self, gy):
        inverse = [0] * len(self.perm)
        for i, p in enumerate(self.perm):
            inverse[p] = i
        return Transpose.apply(gy, axes=tuple(inverse))

    def jvp(self, dx):
        return Transpose.apply(dx, axes=self.perm)


class Concatenate(Function):
    """``y = concatenate(xs, axis)``; VJP: each ``gx_i`` is its slice of ``gy`` (a split); JVP: the
    concatenation of the tangents (zeros where an input has none)."""

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return get_array_module(*xs).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        return Split.apply(gy, bounds=_cumsum(self.sizes)[:-1], axis=self.axis)

    def jvp(self, *dxs):
        return Concatenate.apply(*(or_zeros(d, x) for d, x in zip(dxs, self.inputs)), axis=self.axis)


class Split(Function):
    """``ys = split(x, sections, axis)`` (sections: a count or a list of sizes, as ``torch.split``);
    VJP ``gx = concatenate(gys, axis)``; JVP: the split tangent."""

    def forward(self, x):
        return tuple(get_array_module(x).split(x, self.bounds, axis=self.axis))

    def backward(self, *gys):
        return Concatenate.apply(*gys, axis=self.axis)

    def jvp(self, dx):
        return Split.apply(dx, bounds=self.bounds, axis=self.axis)


class GetItem(Function):
    """``y = x[index]`` (basic or integer-array indexing); VJP: ``gx`` is zero except ``gx[index] += gy``
    (:class:`IndexAdd`); JVP ``dy = dx[index]``."""

    def forward(self, x):
        self.in_shape, self.in_dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        return IndexAdd.apply(gy, index=self.index, shape=self.in_shape)

    def jvp(self, dx):
        return GetItem.apply(dx, index=self.index)


class IndexAdd(Function):
    """``y = zeros(shape); y[index] += x`` (repeated indices accumulate): the adjoint of :class:`GetItem`.
    VJP ``gx = gy[index]``; JVP ``dy = index_add(dx)``."""

    def forward(self, x):
        xp = get_array_module(x)
        y = xp.zeros(self.shape, dtype=x.dtype)
        if xp.__name__ == "numpy":
            xp.add.at(y, self.index, x)  # accumulates repeated indices
        else:
            import cupyx

            cupyx.scatter_add(y, self.index, x)
        return y

    def backward(self, gy):
        return GetItem.apply(gy, index=self.index)

    def jvp(self, dx):
        return IndexAdd.apply(dx, index=self.index, shape=self.shape)


def _cumsum(sizes):
    total, out = 0, []
    for s in sizes:
        total += s
        out.append(total)
    return out


def reshape(x, *shape) -> Tensor:
    """Reshape to ``shape`` (one entry may be -1), as ``torch.reshape``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return Reshape.apply(x, shape=shape)


def transpose(x, *axes) -> Tensor:
    """Permute axes (``x.transpose(1, 0)``, or reverse them with no arguments), as ``numpy.transpose``."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return Transpose.apply(x, axes=axes or None)


def swap_last(x) -> Tensor:
    """``x`` with its last two axes swapped (the matrix transpose of a batch of matrices)."""
    perm = list(range(x.ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return Transpose.apply(x, axes=tuple(perm))


def concatenate(tensors, axis: int = 0) -> Tensor:
    """Join tensors along ``axis`` (``torch.cat``)."""
    return Concatenate.apply(*tensors, axis=axis)


cat = concatenate


def split(x, split_size_or_sections, axis: int = 0) -> tuple:
    """Split along ``axis`` into pieces of ``split_size_or_sections`` (an int size, or a list of sizes),
    with ``torch.split``'s semantics. Raises ValueError if the sizes do not add up to the axis length."""
    length = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections < 1:
            raise ValueError("split size must be a positive int")
        sizes = [split_size_or_sections] * (length // split_size_or_sections)
        if length % split_size_or_sections:
            sizes.append(length % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        total = 0
        for s in sizes:
            total += s
        if total != length:
            raise ValueError(f"split sizes {sizes} add up to {total}, but axis {axis} has length {length}")
    return Split.apply(x, bounds=_cumsum(sizes)[:-1], axis=axis)


def getitem(x, index) -> Tensor:
    """``x[index]``: basic slicing or integer-array indexing, as NumPy."""
    if isinstance(index, Tensor):
        index = index.data
    return GetItem.apply(x, index=index)
