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

One level at a time: nested ``dual_level`` blocks raise (PyTorch allows only one level too).
"""
from __future__ import annotations

from typing import NamedTuple

from minivae.autograd.function import DUAL, Function

__all__ = ["dual_level", "make_dual", "unpack_dual", "UnpackedDualTensor", "enter_dual_level", "exit_dual_level"]


class _Level:
    """Identity of one open level (tangents made in an earlier level are not seen in a later one)."""


def enter_dual_level():
    """Open a level (prefer ``with dual_level():``). Raises RuntimeError if one is already open."""
    if DUAL.level is not None:
        raise RuntimeError("forward_ad: nested dual levels are not supported; use one `with dual_level():` block")
    DUAL.level = _Level()
    return DUAL.level


def exit_dual_level() -> None:
    """Close the open level: tangents made inside it are no longer seen."""
    DUAL.level = None
    DUAL.busy = False


class dual_level:
    """Context manager: inside, :func:`make_dual` attaches tangents and every op propagates them."""

    def __enter__(self):
        return enter_dual_level()

    def __exit__(self, *exc):
        exit_dual_level()
        return False


class _MakeDual(Function):
    """An alias of the primal that carries the tangent: identity forward, identity VJP, the tangent as JVP."""

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

    if DUAL.level is None:
        raise RuntimeError("forward_ad.make_dual must be called inside `with forward_ad.dual_level():`")
    primal = as_tensor(tensor)
    tangent = tangent if isinstance(tangent, Tensor) else Tensor(tangent)
    if primal.dtype.kind != "f":
        raise TypeError(f"make_dual: the primal must be floating point, got dtype {primal.dtype}")
    if tangent.shape != primal.shape:
        raise ValueError(f"make_dual: tangent shape {tangent.shape} does not match the primal's {primal.shape}")
    if tangent.dtype != primal.dtype:
        raise TypeError(f"make_dual: tangent dtype {tangent.dtype} does not match the primal's {primal.dtype}; "
                        "convert it with .astype()")
    DUAL.busy = True  # the alias itself carries no tangent of the primal's
    try:
        dual = _MakeDual.apply(primal)
    finally:
        DUAL.busy = False
    dual._fw_tangent = (DUAL.level, tangent)
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
    if DUAL.level is None:
        raise RuntimeError("forward_ad.unpack_dual must be called inside `with forward_ad.dual_level():` "
                           "(tangents do not outlive their level)")
    fw = getattr(tensor, "_fw_tangent", None)
    tangent = fw[1] if fw is not None and fw[0] is DUAL.level else None
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    DUAL.busy = True  # the primal: an alias of the values (differentiable in reverse mode) without the tangent
    try:
        primal = _MakeDual.apply(tensor)
    finally:
        DUAL.busy = False
    return UnpackedDualTensor(primal, tangent)
