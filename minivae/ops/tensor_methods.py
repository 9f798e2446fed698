"""Install operators and methods on :class:`Tensor` (``x + y``, ``x @ w``, ``x.relu()``, ``x[0]``, ...).

The autograd layer defines Tensor without knowing any op; this module, in the ops layer, attaches them
(the way Chainer's ``basic_math.install_variable_arithmetics`` does).
"""
from __future__ import annotations

from minivae.autograd.tensor import Tensor
from minivae.ops import activation, elementwise as ew, matmul, reduction, shape


def _swap(f):
    return lambda self, other: f(other, self)


def install() -> None:
    T = Tensor
    T.__add__, T.__radd__ = ew.add, _swap(ew.add)
    T.__sub__, T.__rsub__ = ew.sub, _swap(ew.sub)
    T.__mul__, T.__rmul__ = ew.mul, _swap(ew.mul)
    T.__truediv__, T.__rtruediv__ = ew.div, _swap(ew.div)
    T.__pow__, T.__rpow__ = ew.pow, _swap(ew.pow)
    T.__neg__ = ew.neg
    T.__matmul__, T.__rmatmul__ = matmul.matmul, _swap(matmul.matmul)
    T.__getitem__ = shape.getitem
    T.exp, T.log = ew.exp, ew.log
    T.relu, T.sigmoid, T.tanh, T.softplus = activation.relu, activation.sigmoid, activation.tanh, activation.softplus
    T.sum, T.mean = reduction.sum, reduction.mean
    T.reshape, T.transpose = shape.reshape, shape.transpose
    T.split = shape.split
    T.T = property(lambda self: shape.transpose(self))
    T._concatenate = staticmethod(shape.concatenate)  # for autograd.functional, which can't import ops
    T.astype = ew.cast
    T.float = lambda self: ew.cast(self, "float32")
    T.double = lambda self: ew.cast(self, "float64")
