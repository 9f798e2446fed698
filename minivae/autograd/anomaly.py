"""Anomaly mode: ``with minivae.autograd.detect_anomaly():`` (PyTorch's name).

Inside the block every graph node records

* where its forward was called from: the file and line of the first frame outside minivae (the user's code);
* a copy of every array it saved for backward.

At backward time the engine then raises :class:`AnomalyError`

* when a saved array was changed in place between forward and backward (through ``.data`` or any other
  alias), naming the op, the saved tensor and the forward's file:line (PyTorch's version counter catches
  only its own in-place ops; minivae compares the copy, so raw array writes are caught too);
* when a VJP produces NaN, naming the op and the file:line of its forward (PyTorch only warns with the line).

Outside the block none of this runs: the engine tests one flag per backward pass.
"""
from __future__ import annotations

import contextlib
import os
import sys
from contextvars import ContextVar

import numpy as np

__all__ = ["detect_anomaly", "is_enabled", "AnomalyError"]

#: (depth of open ``detect_anomaly`` blocks, their innermost ``check_nan``), per thread / asyncio task
_STATE: ContextVar[tuple] = ContextVar("minivae_anomaly", default=(0, True))
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AnomalyError(RuntimeError):
    """Raised in anomaly mode: a NaN gradient or a saved tensor modified in place (the message says which op,
    which tensor and where the op's forward was called)."""


def is_enabled() -> bool:
    """Whether a ``detect_anomaly()`` block is open in this thread / task."""
    return _STATE.get()[0] > 0


@contextlib.contextmanager
def detect_anomaly(check_nan: bool = True):
    """Context manager: record the forward's location and copies of saved arrays at every node built inside,
    and check them (and NaN in every VJP when ``check_nan``) during backward. Nests."""
    token = _STATE.set((_STATE.get()[0] + 1, bool(check_nan)))
    try:
        yield
    finally:
        _STATE.reset(token)


def _user_frame() -> str:
    """``file:line`` of the innermost frame outside the minivae package (the user's call)."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def record(fn, saved: list) -> None:
    """Called by ``Function.apply`` in anomaly mode: keep the forward's location and copies of the arrays
    ``fn`` saved (``saved`` is a list of ``(description, key, array)``; ``fn.saved_array_now(key)`` gives the
    array the key refers to at backward time)."""
    fn.forward_location = _user_frame()
    fn._anomaly_copies = [(what, key, array, array.copy()) for what, key, array in saved]


def _where(fn) -> str:
    return f"{fn.name} (its forward was called at {getattr(fn, 'forward_location', '<not recorded>')})"


def check_saved(fn) -> None:
    """Raise AnomalyError if an array ``fn`` saved for backward changed since its forward."""
    for what, key, array, copy in getattr(fn, "_anomaly_copies", None) or ():
        current = fn.saved_array_now(key)
        if current is not array:
            raise AnomalyError(f"{what} of {_where(fn)} was replaced (its .data was reassigned) after the forward "
                               "and before backward: the gradient would be computed from other values")
        xp = np if isinstance(array, np.ndarray) else _array_module(array)
        if not bool(xp.array_equal(array, copy, equal_nan=True)):
            raise AnomalyError(f"{what} of {_where(fn)} was modified in place after the forward and before "
                               f"backward (shape {tuple(array.shape)}, {array.dtype}): the gradient would be wrong; "
                               "copy the array before changing it, or run backward first")


def check_grads(fn, grads) -> None:
    """Raise AnomalyError if a gradient ``fn.backward`` returned holds NaN."""
    if not _STATE.get()[1]:
        return
    for i, g in enumerate(grads):
        if g is None:
            continue
        data = getattr(g, "data", g)
        xp = np if isinstance(data, np.ndarray) else _array_module(data)
        if bool(xp.isnan(data).any()):
            raise AnomalyError(f"Function {fn.name}.backward returned NaN values in its gradient for input {i} "
                               f"(shape {tuple(data.shape)}); {_where(fn)}")


def _array_module(array):
    from minivae.backend import get_array_module

    return get_array_module(array)
