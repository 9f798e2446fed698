"""Shape ops: reshape, transpose, concatenate, split, basic slicing (``x[...]``), broadcast_to."""
from __future__ import annotations

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.backend import get_array_module
from minivae.ops.broadcast import sum_to


class Reshape(Function):
    """``y = x.reshape(shape)``; ``gx = gy.reshape(x.shape)``."""

    def forward(self, x):
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.in_shape)


class Transpose(Function):
    """``y = x.transpose(axes)``; ``gx = gy.transpose(argsort(axes))``."""

    def forward(self, x):
        self.perm = tuple(range(x.ndim))[::-1] if self.axes is None else tuple(a % x.ndim for a in self.axes)
        if sorted(self.perm) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {self.axes} are not a permutation of {x.ndim} dimensions")
        return x.transpose(self.perm)

    def backward(self, gy):
        inverse = [0] * len(self.perm)
        for i, p in enumerate(self.perm):
            inverse[p] = i
        return gy.transpose(inverse)


class BroadcastTo(Function):
    """``y = broadcast_to(x, shape)``; ``gx = sum_to(gy, x.shape)``."""

    def forward(self, x):
        self.in_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape).copy()

    def backward(self, gy):
        return sum_to(gy, self.in_shape)


class Concatenate(Function):
    """``y = concatenate(xs, axis)``; each ``gx_i`` is its slice of ``gy``."""

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return get_array_module(*xs).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        xp = get_array_module(gy)
        bounds = list(_cumsum(self.sizes)[:-1])
        return tuple(xp.split(gy, bounds, axis=self.axis))


class Split(Function):
    """``ys = split(x, sections, axis)`` (sections: a count or a list of sizes, as ``torch.split``);
    ``gx = concatenate(gys, axis)``."""

    def forward(self, x):
        xp = get_array_module(x)
        self.in_shape = x.shape
        return tuple(xp.split(x, self.bounds, axis=self.axis))

    def backward(self, *gys):
        return get_array_module(*gys).concatenate(gys, axis=self.axis)


class GetItem(Function):
    """``y = x[index]`` (basic or integer-array indexing); ``gx`` is zero except ``gx[index] += gy``."""

    def forward(self, x):
        self.in_shape, self.in_dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.in_shape, dtype=self.in_dtype)
        if xp.__name__ == "numpy":
            xp.add.at(gx, self.index, gy)  # accumulates repeated indices
        else:
            import cupyx

            cupyx.scatter_add(gx, self.index, gy)
        return gx


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


def broadcast_to(x, shape) -> Tensor:
    return BroadcastTo.apply(x, shape=tuple(shape))


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
    if isinstance(index, Tensor):
        index = index.data
    return GetItem.apply(x, index=index)
