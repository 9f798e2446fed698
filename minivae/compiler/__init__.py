"""``minivae.compile``: capture a training step once, replay a fused plan (see :func:`compile`)."""
from __future__ import annotations

from minivae.compiler.check import CheckError
from minivae.compiler.plan import Plan
from minivae.compiler.record import CaptureError
from minivae.compiler.step import CompiledStep, RecaptureWarning

__all__ = ["compile", "CompiledStep", "Plan", "CaptureError", "CheckError", "RecaptureWarning", "assert_finite"]


def compile(fn=None, *, check: bool = False, passes: dict | None = None, max_plans: int = 8):  # noqa: A001
    """Compile a training step: ``step = minivae.compile(fn)`` or ``@minivae.compile`` (also with options:
    ``@minivae.compile(check=True)``).

    ``fn`` takes Tensors (or arrays; other arguments are hashable values that become guards) and runs a whole step
    (forward, ``backward``, ``optimizer.step()``), returning Tensors (or tuples, lists, dicts of them). The first
    call runs eagerly; the second runs eagerly while recording every array operation into a plan; later calls
    replay the plan on the new inputs' data without building Tensors or a graph, writing ``.grad``, the parameters
    and the optimizer state in place. Guards: the inputs' shapes, dtypes and devices, other arguments' values, the
    kernel selection and grad mode; a new key captures a new plan (``max_plans`` are kept).

    Not captured: Python control flow that depends on the data (two recordings that differ raise
    :class:`CaptureError`; a branch that flips later is only caught by ``check=True``), Python numbers read from
    Tensors (``.item()``) and used in the step, per-step data reached through globals instead of arguments,
    ``create_graph=True``. Use :func:`assert_finite` for a check that must stay in the plan.

    Args:
        fn: the step function.
        check: run eager beside every replay and raise :class:`CheckError` at the first difference (slow: for
            debugging a step that does not replay correctly).
        passes: turn passes off, e.g. ``{"memory": False}``; names in :data:`minivae.compiler.passes.DEFAULTS`.
        max_plans: how many plans (guard keys) to keep.
    Returns:
        a :class:`CompiledStep` (callable like ``fn``; ``.plan.summary()``, ``.plan.plot_memory()``).
    Raises:
        TypeError: ``fn`` is not callable. ValueError: an unknown pass name.
    """
    if fn is None:
        return lambda f: CompiledStep(f, check=check, passes=passes, max_plans=max_plans)
    return CompiledStep(fn, check=check, passes=passes, max_plans=max_plans)


def assert_finite(tensor, error=FloatingPointError, message: str | None = None) -> None:
    """Raise ``error(message)`` when ``tensor`` holds a NaN or an infinity: eagerly, and in every replay of a
    compiled step that called it (a check recorded into the plan, unlike a Python ``if`` on ``.item()``).

    Args:
        tensor: a Tensor (any shape; the check reads all of it).
        error: the exception class to raise (default FloatingPointError).
        message: its message (default names the shape), or a function of the array giving it.
    """
    from minivae.autograd import capture
    from minivae.backend import get_array_module

    message = message or f"a tensor of shape {tuple(tensor.shape)} holds a NaN or an infinity"
    recorder = capture.active()
    if recorder is not None:
        recorder.check_finite(tensor.data, error, message)
    if not bool(get_array_module(tensor.data).isfinite(tensor.data).all()):
        raise error(message(tensor.data) if callable(message) else message)
