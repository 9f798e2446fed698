"""Install operators and methods on :class:`Tensor` (``x + y``, ``x @ w``, ``x == y``, ``x.sum(dim=1)``, ``x[0]``,
``x += y``, ...), with PyTorch's names and semantics.

The autograd layer defines Tensor without knowing any op; this module, in the ops layer, attaches them
(the way Chainer's ``basic_math.install_variable_arithmetics`` does). :data:`METHODS` lists every method that
is an op, for the docs and for the test that checks each public op has a PyTorch oracle case.
"""
from __future__ import annotations

import numpy as np

from minivae import backend
from minivae.autograd.tensor import Tensor
from minivae.ops.piecewise import piecewise
from minivae.ops import (activation, compare, elementwise as ew, extrema, indexing, inplace,
                         joining, matmul, reduction, shape, softmax, unary, where as where_)


def _swap(f):
    return lambda self, other: f(other, self)


def _is_dtype_name(name: str) -> bool:
    try:
        return bool(name) and np.dtype(name) is not None
    except TypeError:
        return False


def _to(self, *args, dtype=None, device=None, copy: bool = False):
    """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(other)`` (PyTorch's): this tensor converted
    (differentiably for a dtype change; a device copy is a new leaf keeping ``requires_grad``); self when
    nothing changes and ``copy`` is False. Raises ValueError / TypeError for an unknown device or dtype."""
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, str) and (a in backend.DEVICES or not _is_dtype_name(a)):
            device = a  # an unknown name is reported as an unknown device below
        else:
            dtype = a
    out = self
    if device is not None and backend.check_device_name(device) != self.device:
        out = Tensor(backend.to_device(self.data, device), requires_grad=self.requires_grad)
    if dtype is not None and np.dtype(dtype) != out.dtype:
        out = ew.cast(out, np.dtype(dtype))
    return ew.clone(out) if copy and out is self else out


def _bool_reduce(name):
    def f(self, dim=None, keepdim=False):
        from minivae.ops.validate import normalize_dims

        xp = backend.get_array_module(self.data)
        axis = None if dim is None else normalize_dims(dim, self.ndim, name)
        return piecewise(lambda a: xp.asarray(getattr(xp, name)(a, axis=axis, keepdims=keepdim)), self, name=name)
    f.__doc__ = f"``{name}`` of the elements (over ``dim``), a bool tensor (``torch.{name}``); not differentiable."
    return f


def _where(self, condition, other):
    """``where(condition, self, other)`` (``torch.Tensor.where``)."""
    return where_.where(condition, self, other)


def _expand_as(self, other):
    """``self.expand(other.size())``."""
    return shape.expand(self, other.shape)


def _view_as(self, other):
    """``self.view(other.size())``."""
    return shape.view(self, other.shape)


def _reshape_as(self, other):
    """``self.reshape(other.size())``."""
    return shape.reshape(self, other.shape)


def _type_as(self, other):
    """``self.to(other.dtype)``."""
    return _to(self, other.dtype)


def _converter(dtype, name):
    def f(self):
        return _to(self, dtype)
    f.__doc__ = f"``self.to({name})`` (differentiable for a floating dtype)."
    f.__name__ = name
    return f


def _contiguous(self):
    """Self if its data is C-contiguous, else a contiguous copy (``torch.Tensor.contiguous``)."""
    return self if self.data.flags.c_contiguous else ew.clone(self)


def _cpu(self):
    """This tensor on the CPU (``self.to("cpu")``)."""
    return _to(self, backend.CPU)


def _pos(self):
    """``+x``: self."""
    return self


#: Tensor methods that are ops (name -> function taking the tensor first).
METHODS = {
    "add": ew.add, "sub": ew.sub, "mul": ew.mul, "div": ew.div, "pow": ew.pow, "neg": ew.neg, "exp": ew.exp,
    "log": ew.log, "clone": ew.clone, "matmul": matmul.matmul,
    "abs": unary.abs, "sqrt": unary.sqrt, "rsqrt": unary.rsqrt, "reciprocal": unary.reciprocal,
    "log1p": unary.log1p, "expm1": unary.expm1, "sin": unary.sin, "cos": unary.cos, "erf": unary.erf,
    "relu": activation.relu, "sigmoid": activation.sigmoid, "tanh": activation.tanh, "softplus": activation.softplus,
    "eq": compare.eq, "ne": compare.ne, "lt": compare.lt, "le": compare.le, "gt": compare.gt, "ge": compare.ge,
    "maximum": compare.maximum, "minimum": compare.minimum, "clamp": compare.clamp, "clip": compare.clamp,
    "sum": reduction.sum, "mean": reduction.mean, "var": reduction.var, "std": reduction.std,
    "prod": reduction.prod, "norm": reduction.norm,
    "max": extrema.max, "min": extrema.min, "amax": extrema.amax, "amin": extrema.amin, "argmax": extrema.argmax,
    "argmin": extrema.argmin, "gather": extrema.gather,
    "logsumexp": softmax.logsumexp, "softmax": softmax.softmax, "log_softmax": softmax.log_softmax,
    "reshape": shape.reshape, "view": shape.view, "permute": shape.permute, "transpose": shape.transpose,
    "t": shape.t, "unsqueeze": shape.unsqueeze, "squeeze": shape.squeeze, "flatten": shape.flatten,
    "unflatten": shape.unflatten, "expand": shape.expand, "repeat": joining.repeat, "split": joining.split,
    "chunk": joining.chunk,
    "where": _where, "expand_as": _expand_as, "view_as": _view_as, "reshape_as": _reshape_as, "type_as": _type_as,
}


def install() -> None:
    """Attach the operators and methods to the Tensor class (called once, on import)."""
    T = Tensor
    T.__add__, T.__radd__ = ew.add, _swap(ew.add)
    T.__sub__, T.__rsub__ = ew.sub, _swap(ew.sub)
    T.__mul__, T.__rmul__ = ew.mul, _swap(ew.mul)
    T.__truediv__, T.__rtruediv__ = ew.div, _swap(ew.div)
    T.__pow__, T.__rpow__ = ew.pow, _swap(ew.pow)
    T.__neg__, T.__abs__ = ew.neg, unary.abs
    T.__pos__ = _pos
    T.__matmul__, T.__rmatmul__ = matmul.matmul, _swap(matmul.matmul)
    T.__eq__, T.__ne__ = compare.eq, compare.ne
    T.__lt__, T.__le__, T.__gt__, T.__ge__ = compare.lt, compare.le, compare.gt, compare.ge
    T.__getitem__ = indexing.getitem
    for name, f in METHODS.items():
        setattr(T, name, f)
    T.T = property(shape.reverse_dims, doc="Every dimension reversed (``torch.Tensor.T``).")
    T.mT = property(shape.swap_last, doc="The last two dimensions swapped (``torch.Tensor.mT``).")
    T.to = _to
    T.any, T.all = _bool_reduce("any"), _bool_reduce("all")
    T.contiguous, T.cpu = _contiguous, _cpu
    T.astype = ew.cast  # NumPy's name, kept as an alias of .to(dtype)
    for name, dtype in (("float", np.float32), ("double", np.float64), ("half", np.float16), ("long", np.int64),
                        ("int", np.int32), ("bool", np.bool_)):
        setattr(T, name, _converter(dtype, name))
    T._concatenate = staticmethod(joining.cat)  # for autograd.functional, which can't import ops
    inplace.install(T)
