"""Where a step's array work can be seen: the hooks :func:`minivae.compile` records a training step through.

Eager code runs as always; while a recorder is open (``with recording(rec):``, context-local like every other
piece of context state), the few places that do array work on behalf of a step report it:

* :meth:`Function.apply` reports each op it ran: the op object (its parameters), its input arrays and the
  arrays its ``forward`` returned (``rec.op``). The backward pass's VJPs are ops too, so they are seen the
  same way, and so is the gradient accumulation (an ``Add``);
* :meth:`Tensor._store_grad` reports a gradient stored into a leaf's ``.grad`` (``rec.store_grad``);
* an optimizer's ``step`` and ``zero_grad`` report themselves (``rec.optimizer_step``, ``rec.zero_grad``): the
  update is one node of the plan, run by the optimizer's own code or by a fused kernel;
* the random factories report a draw (``rec.random``), so that a replay draws new numbers, as eager would;
* ``Tensor.item()`` and friends report a read of a value back to Python (``rec.host_read``): what Python
  then decides is not in the plan.

The recorder's class lives in :mod:`minivae.compiler` (a layer above); this module only holds the hook.
"""
from __future__ import annotations

from contextvars import ContextVar

__all__ = ["active", "recording"]

_RECORDER: ContextVar = ContextVar("minivae_capture", default=None)


def active():
    """The open recorder of this thread / asyncio task, or None (the common case: one ContextVar read)."""
    return _RECORDER.get()


class recording:
    """``with recording(recorder):`` report this context's array work to ``recorder`` (None: stop reporting)."""

    __slots__ = ("recorder", "_token")

    def __init__(self, recorder):
        self.recorder = recorder

    def __enter__(self):
        self._token = _RECORDER.set(self.recorder)
        return self.recorder

    def __exit__(self, *exc):
        _RECORDER.reset(self._token)
        return False
