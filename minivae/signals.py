"""Stopping a run cleanly on Ctrl-C (SIGINT), ``kill`` (SIGTERM) or a closed terminal (SIGHUP).

Inside :class:`GracefulStop`, any of these signals raises :class:`Interrupted` (a ``KeyboardInterrupt``) at once,
except within a :meth:`GracefulStop.deferred` block (a training step, a checkpoint write): there the signal
is remembered and raised when the block ends, so the step completes and the checkpoint file is either the
old one or the new one, never a half-written temporary file. A second signal during a deferred block raises
at once (the user insists; :func:`minivae.checkpoint.atomic_write` still removes its temporary file).

The command line turns :class:`Interrupted` into one line on stderr and the exit status ``128 + signal``
(130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), as a shell reports a process ended by that signal.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class Interrupted(KeyboardInterrupt):
    """A run was stopped by a signal; ``signum`` is the signal, ``exit_status`` ``128 + signum``."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class GracefulStop:
    """Context manager handling SIGINT, SIGTERM and SIGHUP (where the platform has it) as described in the module
    docstring.

    Handlers are installed only in the main thread (elsewhere Python forbids it and this does nothing);
    the previous handlers are restored on exit, or, with ``ignore_after=True`` (the ``minivae`` program, whose
    work is done and saved by then), the signals are ignored for the moments the interpreter takes to shut
    down, so that a finished run is not reported as killed.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM) + ((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())

    def __init__(self, ignore_after: bool = False):
        self._previous: dict = {}
        self._depth = 0
        self.pending: int | None = None
        self.ignore_after = ignore_after  # on exit ignore the signals instead of restoring the old handlers

    def _handle(self, signum, frame):
        if self._depth and self.pending is None:
            self.pending = signum
            return
        raise Interrupted(signum)

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, signal.SIG_IGN if self.ignore_after else handler)
        self._previous.clear()

    @contextmanager
    def deferred(self):
        """Hold off a signal until the block ends (then raise :class:`Interrupted`)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        self.check()

    def check(self) -> None:
        """Raise :class:`Interrupted` if a signal arrived during a deferred block."""
        if self.pending is not None and not self._depth:
            signum, self.pending = self.pending, None
            raise Interrupted(signum)
