"""Whether operations record the graph for backward: ``no_grad`` / ``enable_grad`` / ``set_grad_enabled``, as in
PyTorch. The flag is a :class:`contextvars.ContextVar`, like every piece of minivae's context state: a ``no_grad``
block in one thread or asyncio task is not seen by another."""
from __future__ import annotations

import contextlib
from contextvars import ContextVar

_ENABLED: ContextVar[bool] = ContextVar("minivae_grad_enabled", default=True)


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad`` (in this thread / task)."""
    return _ENABLED.get()


@contextlib.contextmanager
def set_grad_enabled(mode: bool):
    """Context manager: record the graph inside if ``mode`` is true, not otherwise (``torch.set_grad_enabled``)."""
    token = _ENABLED.set(bool(mode))
    try:
        yield
    finally:
        _ENABLED.reset(token)


def no_grad():
    """Context manager: operations inside record no graph and their results do not require grad."""
    return set_grad_enabled(False)


def enable_grad():
    """Context manager: switch graph recording back on inside a ``no_grad`` block."""
    return set_grad_enabled(True)
