"""Whether operations record the graph for backward: ``no_grad`` / ``enable_grad`` as in PyTorch."""
from __future__ import annotations

import contextlib
import threading

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def _grad_mode(enabled: bool):
    previous = is_grad_enabled()
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = previous


def no_grad():
    """Context manager: operations inside record no graph and their results do not require grad."""
    return _grad_mode(False)


def enable_grad():
    """Context manager: switch graph recording back on inside a ``no_grad`` block."""
    return _grad_mode(True)
