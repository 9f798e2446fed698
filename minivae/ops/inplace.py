"""In-place operations with PyTorch's rules: ``add_``, ``sub_``, ``mul_``, ``div_``, ``clamp_``, ``copy_``,
``fill_``, ``zero_``, ``x[index] = value`` and ``+=``, ``-=``, ``*=``, ``/=``.

Each is the out-of-place op written back into the tensor's own array, with three rules:

* a leaf that requires grad can't be changed in place while grad mode is on (the classic update
  ``p -= lr * p.grad`` goes inside ``with no_grad():``), as in PyTorch;
* every change bumps the tensor's version counter (shared with its views): a backward that saved the tensor
  before the change raises "modified by an inplace operation" (see :mod:`minivae.autograd.function`);
* when the graph is being recorded, the tensor takes the new op's place in the graph (its history is
  "rebased" as PyTorch's is); the op is recorded on a copy of the old values, so its derivative is exact.
"""
from __future__ import annotations

import weakref

from minivae.autograd import capture, grad_mode
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.backend import check_same_device, get_array_module


def apply_(t: Tensor, op, *args, name: str) -> Tensor:
    """``t <- op(t, *args)`` in place (``op`` an out-of-place function of Tensors); returns ``t``.

    Raises:
        RuntimeError: ``t`` is a leaf that requires grad and grad mode is on; the result's shape or dtype can't
            be written into ``t`` (PyTorch's "output with shape ... doesn't match the broadcast shape"); ``t`` is
            a view of a tensor in a graph while the graph is recorded (PyTorch supports this; minivae refuses).
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(t).__name__}")
    recording = grad_mode.is_grad_enabled()
    if recording and t.requires_grad and t.is_leaf:
        raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an in-place operation; "
                           "do the update inside `with minivae.no_grad():` (or on p.data)")
    for a in args:
        if isinstance(a, Tensor):
            check_same_device(t.data, a.data, op=name)
    record = recording and (t.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args))
    if record and t._base is not None and (t._base.requires_grad or t.requires_grad):
        raise RuntimeError(f"{name}: in-place change of a view of a tensor that is part of a graph: minivae does not "
                           "rebase the viewed tensor's history as PyTorch does; use an out-of-place op or .clone() "
                           "the view first")
    if not record:
        with grad_mode.no_grad():
            result = op(t, *args)
        _write(t, result, name)
        if result._fw_tangent is not None or t._fw_tangent is not None:  # forward mode: the result's tangent
            t._fw_tangent = result._fw_tangent
        return t
    old = Tensor._make(t.data.copy(), t.requires_grad)  # the values before the change take t's place in the graph
    if capture.active() is not None:
        capture.active().array_op(_copy, (t.data,), old.data, f"{name} (old values)")
    old._ctx, old._output_index, old._fw_tangent = t._ctx, t._output_index, t._fw_tangent
    if t._ctx is not None and t._ctx._outputs:
        outs = list(t._ctx._outputs)
        outs[t._output_index] = weakref.ref(old)
        t._ctx._outputs = tuple(outs)
    result = op(old, *args)
    _write(t, result, name)
    t.requires_grad, t._ctx, t._output_index = result.requires_grad, result._ctx, result._output_index
    t._fw_tangent = result._fw_tangent
    if result._ctx is not None:
        outs = list(result._ctx._outputs)
        outs[result._output_index] = weakref.ref(t)
        result._ctx._outputs = tuple(outs)
    return t


def _write(t: Tensor, result: Tensor, name: str) -> None:
    """Copy ``result`` into ``t``'s array (broadcast to t's shape, cast within the same kind) and bump the version."""
    xp = get_array_module(t.data)
    r = result.data
    if xp.broadcast_shapes(r.shape, t.shape) != t.shape:
        raise RuntimeError(f"{name}: output with shape {list(t.shape)} doesn't match the broadcast shape "
                           f"{list(xp.broadcast_shapes(r.shape, t.shape))}")
    if not xp.can_cast(r.dtype, t.dtype, casting="same_kind"):
        raise RuntimeError(f"{name}: result type {r.dtype} can't be cast to the desired output type {t.dtype}")
    xp.copyto(t.data, r, casting="same_kind")
    t._version_counter.value += 1
    if capture.active() is not None:  # minivae.compile is recording: the write-back is part of the step
        capture.active().array_op(_copy_into, (t.data, r), t.data, f"{name} (write)")


def _copy(a):
    return a.copy()


def _copy_into(dst, src):
    """``dst[...] = src`` (broadcast, cast within the kind); returns ``dst``."""
    get_array_module(dst).copyto(dst, src, casting="same_kind")
    return dst


def _fill(t, value):
    xp = get_array_module(t.data)
    v = value.data if isinstance(value, Tensor) else value
    return Tensor._make(xp.broadcast_to(xp.asarray(v, dtype=t.dtype), t.shape))


def install(T) -> None:
    """Attach the in-place methods and operators to the Tensor class ``T``."""
    from minivae.ops import compare
    from minivae.ops import elementwise as ew
    from minivae.ops.indexing import index_put

    def add_(self, other, alpha=1):
        return apply_(self, lambda a, b: ew.add(a, b if alpha == 1 else b * alpha), other, name="add_")

    def sub_(self, other, alpha=1):
        return apply_(self, lambda a, b: ew.sub(a, b if alpha == 1 else b * alpha), other, name="sub_")

    def mul_(self, other):
        return apply_(self, ew.mul, other, name="mul_")

    def div_(self, other):
        return apply_(self, ew.div, other, name="div_")

    def clamp_(self, min=None, max=None):  # noqa: A002 - torch's argument names
        return apply_(self, lambda a: compare.clamp(a, min, max), name="clamp_")

    def copy_(self, src):
        # a[...] = src (broadcast, cast): the gradient of the old values is 0 and src's is summed back to its shape
        return apply_(self, lambda a, s: index_put(a, Ellipsis, s), as_tensor(src), name="copy_")

    def fill_(self, value):
        return apply_(self, lambda a: _fill(a, value), name="fill_")

    def zero_(self):
        return apply_(self, lambda a: _fill(a, 0), name="zero_")

    for f in (add_, sub_, mul_, div_, clamp_, copy_, fill_, zero_):
        f.__doc__ = (f"In-place ``{f.__name__}`` (PyTorch's): changes this tensor's data, bumps its version counter, "
                     "returns self. Raises RuntimeError on a leaf that requires grad outside ``no_grad``.")
        setattr(T, f.__name__, f)
    T.__iadd__ = lambda self, other: apply_(self, ew.add, other, name="add_ (+=)")
    T.__isub__ = lambda self, other: apply_(self, ew.sub, other, name="sub_ (-=)")
    T.__imul__ = lambda self, other: apply_(self, ew.mul, other, name="mul_ (*=)")
    T.__itruediv__ = lambda self, other: apply_(self, ew.div, other, name="div_ (/=)")

    def setitem(self, index, value):
        """``x[index] = value`` in place (the rules above; differentiable in ``x`` and ``value`` when recorded)."""
        apply_(self, lambda a, v: index_put(a, index, v), value, name="__setitem__")

    T.__setitem__ = setitem
