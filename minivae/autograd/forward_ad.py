"""Forward-mode autodiff with dual tensors, with ``torch.autograd.forward_ad``'s API.

::

    import minivae.autograd.forward_ad as fwAD
    with fwAD.dual_level():
        x = fwAD.make_dual(primal, tangent)     # a tensor carrying a tangent (a direction)
        y = f(x)                                # every op also pushes the tangent through its JVP rule
        y_primal, y_tangent = fwAD.unpack_dual(y)   # y_tangent = J_f(primal) @ tangent

One forward pass gives one Jacobian-vector product (JVP): forward mode costs one pass per *input* direction,
reverse mode one pass per *output* (Griewank & Walther, "Evaluating Derivatives", 2008, ch. 3). Each op's JVP
rule sits next to its VJP in :mod:`minivae.ops` and is written with minivae's ops, so a tangent computed with
``requires_grad`` inputs can be differentiated in reverse mode (reverse-over-forward), and a backward run
inside a level pushes tangents through the VJPs (forward-over-reverse: Hessian-vector products).

One level at a time: nested ``dual_level`` blocks raise (PyTorch allows only one level too). The open level
is context state (a :class:`contextvars.ContextVar`): a level opened in one thread or asyncio task is not seen
in another.

:meth:`Function.apply` calls :func:`propagate` once per op when a level is open and an input carries a tangent.
"""
from __future__ import annotations

import weakref
from contextvars import ContextVar
from typing import NamedTuple

from minivae.autograd.function import Function

__all__ = ["dual_level", "make_dual", "unpack_dual", "UnpackedDualTensor", "enter_dual_level", "exit_dual_level"]


class _Level:
    """Identity of one open level (tangents made in an earlier level are not seen in a later one)."""


#: (the open level or None, whether a JVP rule is running now: then the ops it calls push no tangents)
_STATE: ContextVar[tuple] = ContextVar("minivae_forward_ad", default=(None, False))


def is_active() -> bool:
    """Whether a level is open and no JVP rule is running (ops then push tangents)."""
    level, busy = _STATE.get()
    return level is not None and not busy


def _level():
    return _STATE.get()[0]


class _quiet:
    """``with _quiet():`` run ops without pushing tangents (inside a JVP rule, or making an alias)."""

    def __enter__(self):
        self._token = _STATE.set((_level(), True))

    def __exit__(self, *exc):
        _STATE.reset(self._token)
        return False


def enter_dual_level():
    """Open a level (prefer ``with dual_level():``). Raises RuntimeError if one is already open."""
    if _level() is not None:
        raise RuntimeError("forward_ad: nested dual levels are not supported; use one `with dual_level():` block")
    level = _Level()
    _STATE.set((level, False))
    return level


def exit_dual_level() -> None:
    """Close the open level: tangents made inside it are no longer seen."""
    _STATE.set((None, False))


class dual_level:
    """Context manager: inside, :func:`make_dual` attaches tangents and every op propagates them."""

    def __enter__(self):
        if _level() is not None:
            raise RuntimeError("forward_ad: nested dual levels are not supported; use one `with dual_level():` "
                               "block")
        self._token = _STATE.set((_Level(), False))
        return _level()

    def __exit__(self, *exc):
        _STATE.reset(self._token)
        return False


def propagate(fn, tensors, results, record) -> None:
    """Forward mode for one op: the output tangents from ``fn.jvp`` (run with tangent propagation off), stored on
    the results (and kept on the node when it is recorded, for handles made later)."""
    level = _level()
    tangents = tuple(t._fw_tangent[1] if t._fw_tangent is not None and t._fw_tangent[0] is level else None
                     for t in tensors)
    if all(t is None for t in tangents):
        return
    if not record:  # the rule may read saved outputs: let it see the results
        fn._outputs = tuple(weakref.ref(r) for r in results)
    with _quiet():
        out = fn.jvp(*tangents)
    out = out if isinstance(out, tuple) else (out,)
    if len(out) != len(results):
        raise RuntimeError(f"{fn.name}.jvp returned {len(out)} tangents for {len(results)} outputs")
    stored = []
    for r, t in zip(results, out):
        if t is not None and r.dtype.kind == "f":
            if t.shape != r.shape:
                raise RuntimeError(f"{fn.name}.jvp returned a tangent of shape {t.shape} for an output of shape "
                                   f"{r.shape}")
            if t.dtype != r.dtype:
                t = t.astype(r.dtype)
            r._fw_tangent = (level, t)
        stored.append(r._fw_tangent)
    if record:
        fn._out_tangents = tuple(stored)
    else:
        fn._saved = None
        fn._outputs = ()


class _MakeDual(Function):
    """An alias of the primal that carries the tangent: identity forward, identity VJP, the tangent as JVP."""

    is_view = True

    def forward(self, x):
        return x.view() if hasattr(x, "view") else x

    def backward(self, gy):
        return gy


def make_dual(tensor, tangent):
    """A tensor with ``tensor``'s values (sharing its array) carrying ``tangent`` in the open level.

    Args:
        tensor: the primal (a Tensor or an array); if it requires grad, the result is differentiable with
            respect to it (reverse mode goes through the alias).
        tangent: a Tensor or array of the same shape and dtype (the direction ``v`` of ``J v``).
    Returns:
        a Tensor whose tangent is ``tangent``.
    Raises:
        RuntimeError: no ``dual_level`` is open. ValueError: shapes differ. TypeError: dtypes differ, or a
            non-floating primal.
    """
    from minivae.autograd.tensor import Tensor, as_tensor

    if _level() is None:
        raise RuntimeError("forward_ad.make_dual must be called inside `with forward_ad.dual_level():`")
    primal = as_tensor(tensor)
    tangent = tangent if isinstance(tangent, Tensor) else Tensor(tangent)
    if primal.dtype.kind != "f":
        raise TypeError(f"make_dual: the primal must be floating point, got dtype {primal.dtype}")
    if tangent.shape != primal.shape:
        raise ValueError(f"make_dual: tangent shape {tangent.shape} does not match the primal's {primal.shape}")
    if tangent.dtype != primal.dtype:
        raise TypeError(f"make_dual: tangent dtype {tangent.dtype} does not match the primal's {primal.dtype}; "
                        "convert it with .to(dtype)")
    with _quiet():  # the alias itself carries no tangent of the primal's
        dual = _MakeDual.apply(primal)
    dual._fw_tangent = (_level(), tangent)
    return dual


class UnpackedDualTensor(NamedTuple):
    """``(primal, tangent)``: the tangent is None where the tensor carries none (a zero tangent)."""

    primal: object
    tangent: object


def unpack_dual(tensor) -> UnpackedDualTensor:
    """``(primal, tangent)`` of a tensor in the open level: ``primal`` shares the tensor's values and its reverse-mode
    history but carries no tangent (as PyTorch's view); ``tangent`` is a Tensor, or None for a zero tangent.

    Raises RuntimeError outside a ``dual_level`` block.
    """
    if _level() is None:
        raise RuntimeError("forward_ad.unpack_dual must be called inside `with forward_ad.dual_level():` "
                           "(tangents do not outlive their level)")
    fw = getattr(tensor, "_fw_tangent", None)
    tangent = fw[1] if fw is not None and fw[0] is _level() else None
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    with _quiet():  # the primal: an alias of the values (differentiable in reverse mode) without the tangent
        primal = _MakeDual.apply(tensor)
    return UnpackedDualTensor(primal, tangent)
