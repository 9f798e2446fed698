"""Indexing: ``x[index]`` (differentiable) and ``x[index] = value`` (an in-place op, see :mod:`minivae.ops.inplace`).

An index is what NumPy takes: ints, slices, ``None``, ``...``, and integer or boolean index Tensors / arrays.
``x[index]`` (:class:`GetItem`) and the scatter-add (:class:`IndexAdd`) are each other's adjoint;
``index_put`` (the out-of-place form of ``x[index] = v``) is linear in ``(x, v)``: VJP ``gx = gy`` with
``gy[index] = 0``, ``gv = gy[index]`` summed to v's shape; JVP ``index_put(dx, index, dv)``.
"""
from __future__ import annotations

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.backend import get_array_module
from minivae.ops.broadcast import sum_to
from minivae.ops.tangents import or_zeros


def normalize_index(index):
    """``index`` with Tensors replaced by their arrays (a tuple stays a tuple). Raises IndexError for a float
    index tensor."""
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for p in parts:
        if isinstance(p, Tensor):
            p = p.data
        if hasattr(p, "dtype") and getattr(p, "ndim", 0) >= 0 and p.dtype.kind == "f":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors, got a float tensor")
        if isinstance(p, list):
            p = get_array_module(*[q for q in p if hasattr(q, "dtype")] or [0]).asarray(p)
        out.append(p)
    return tuple(out) if isinstance(index, tuple) else out[0]


class GetItem(Function):
    """``y = x[index]``; VJP: ``gx`` is zero except ``gx[index] += gy`` (:class:`IndexAdd`); JVP ``dy = dx[index]``."""

    is_view = True

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.in_shape = x.shape
        return x[self.index]

    def backward(self, gy):
        return IndexAdd.apply(gy, index=self.index, shape=self.in_shape)

    def jvp(self, dx):
        return GetItem.apply(dx, index=self.index)


class IndexAdd(Function):
    """``y = zeros(shape); y[index] += x`` (repeated indices accumulate): the adjoint of :class:`GetItem`.
    VJP ``gx = gy[index]``; JVP ``dy = index_add(dx)``."""

    def __init__(self, index, shape: tuple):
        self.index, self.shape = index, shape

    def forward(self, x):
        xp = get_array_module(x)
        y = xp.zeros(self.shape, dtype=x.dtype)
        if xp.__name__ == "numpy":
            xp.add.at(y, self.index, x)  # accumulates repeated indices
        else:  # pragma: no cover - GPU
            import cupyx

            cupyx.scatter_add(y, self.index, x)
        return y

    def backward(self, gy):
        return GetItem.apply(gy, index=self.index)

    def jvp(self, dx):
        return IndexAdd.apply(dx, index=self.index, shape=self.shape)


class IndexPut(Function):
    """``y = x.copy(); y[index] = v`` (v broadcast to the indexed shape); linear in ``(x, v)``.
    VJP ``gx = index_put(gy, index, 0)``, ``gv = sum_to(gy[index], v.shape)``; JVP ``index_put(dx, index, dv)``."""

    def __init__(self, index):
        self.index = index

    def forward(self, x, v):
        self.v_shape = v.shape
        y = x.copy()
        y[self.index] = v
        return y

    def backward(self, gy):
        gx = gv = None
        if self.needs_input_grad[0]:
            zero = Tensor._make(get_array_module(gy.data).zeros((), dtype=gy.dtype))
            gx = IndexPut.apply(gy, zero, index=self.index)
        if self.needs_input_grad[1]:
            gv = sum_to(GetItem.apply(gy, index=self.index), self.v_shape)
        return gx, gv

    def jvp(self, dx, dv):
        x, v = self.inputs
        return IndexPut.apply(or_zeros(dx, x), or_zeros(dv, v), index=self.index)


def getitem(x, index) -> Tensor:
    """``x[index]``: NumPy basic and advanced indexing (ints, slices, None, ``...``, integer or bool index
    Tensors); a view for basic indexing. Raises IndexError for an index out of range or a float index."""
    return GetItem.apply(x, index=normalize_index(index))


def index_put(x, index, value) -> Tensor:
    """A copy of ``x`` with ``value`` (a Tensor or number, broadcast) written at ``index``: the out-of-place form
    of ``x[index] = value``. Raises IndexError / ValueError as NumPy's assignment does."""
    x = as_tensor(x)
    value = value if isinstance(value, Tensor) else Tensor._make(get_array_module(x.data).asarray(value,
                                                                                                   dtype=x.dtype))
    return IndexPut.apply(x, value, index=normalize_index(index))


__all__ = ["getitem", "index_put", "normalize_index", "GetItem", "IndexAdd", "IndexPut"]
