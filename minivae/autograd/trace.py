"""Backward trace: record every vector-Jacobian product (VJP) the backward pass runs, in order.

::

    from minivae.autograd.trace import trace
    with trace() as t:
        loss.backward()
    print(t.table())          # op, shapes, dtype, gradient norms, time per op
    t.records[0].op           # "Sum": the first VJP run is the one nearest the loss
    t.total_seconds           # wall time of all the VJPs, in seconds

The backward engine (:func:`minivae.autograd.engine.backward`) asks :func:`active` for the innermost
open trace and, when there is one, runs each ``Function.backward`` through :meth:`Trace.run`, which times
it with ``time.perf_counter`` (synchronising the GPU first and last when the arrays live there) and
records a :class:`TraceRecord`. The gradient norms are computed after the clock stops, so they do not
count in ``seconds``. With no trace open the engine pays one function call per op.
"""
from __future__ import annotations

import math
import time
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

__all__ = ["trace", "Trace", "TraceRecord", "active"]

#: The innermost open trace in this thread / asyncio task (None when none is open).
_ACTIVE: ContextVar = ContextVar("minivae_trace", default=None)


def active() -> Trace | None:
    """The innermost open :class:`Trace`, or None when no ``with trace():`` block is open."""
    return _ACTIVE.get()


@dataclass(frozen=True)
class TraceRecord:
    """One VJP run by the backward pass.

    Attributes:
        index: position in execution order (0 = the first VJP run, the op nearest the output).
        op: the Function's name (its class name, e.g. ``"Conv2d"``).
        input_shapes: shapes of the op's inputs (tuples of ints), in argument order.
        output_shapes: shapes of the op's outputs.
        dtype: dtype name of the op's first output (the dtype the VJP computes in), e.g. ``"float32"``.
        grad_output_norms: L2 norm of each output gradient fed to the VJP (float, computed in float64).
        grad_input_norms: L2 norm of each input gradient the VJP returned; None where it returned none
            (an input that needs no gradient).
        seconds: wall time of ``Function.backward``, in seconds (``time.perf_counter``).
    """

    index: int
    op: str
    input_shapes: tuple
    output_shapes: tuple
    dtype: str
    grad_output_norms: tuple
    grad_input_norms: tuple
    seconds: float


def _norm(a) -> float | None:
    """L2 norm of an array or Tensor in float64 (None for None)."""
    if a is None:
        return None
    a = getattr(a, "data", a)
    if isinstance(a, np.ndarray) or np.isscalar(a):
        return float(np.sqrt(np.sum(np.square(np.asarray(a, dtype=np.float64)))))
    flat = a.astype("float64").ravel()  # CuPy: reduce on the device, copy one number back
    return float((flat * flat).sum() ** 0.5)


def _synchronize(arrays) -> None:
    """Wait for the GPU when any of ``arrays`` is a CuPy array (so that the clock reads finished work)."""
    for a in arrays:
        a = getattr(a, "data", a)
        if a is not None and not isinstance(a, np.ndarray) and hasattr(a, "device") and hasattr(a, "get"):
            import cupy

            cupy.cuda.get_current_stream().synchronize()
            return


def _shape_text(shape) -> str:
    return "x".join(str(int(n)) for n in shape) if len(shape) else "()"


def _norm_text(n) -> str:
    return "-" if n is None else f"{n:.3e}"


class Trace:
    """The records of one ``with trace():`` block (see the module docstring).

    Attributes:
        records: list of :class:`TraceRecord`, in execution order, across every backward pass run
            inside the block.
    """

    def __init__(self):
        self.records: list[TraceRecord] = []
        self._tokens: list = []

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> Trace:
        self._tokens.append(_ACTIVE.set(self))
        return self

    def __exit__(self, *exc) -> bool:
        _ACTIVE.reset(self._tokens.pop())
        return False

    # ------------------------------------------------------------------ called by the engine
    def run(self, fn, grads_out):
        """Run ``fn.backward(*grads_out)``, time it, record it, and return what it returned (unchanged)."""
        _synchronize(grads_out)
        start = time.perf_counter()
        grads_in = fn.backward(*grads_out)
        as_tuple = grads_in if isinstance(grads_in, tuple) else (grads_in,)
        _synchronize(as_tuple)
        seconds = time.perf_counter() - start
        meta = fn.output_meta
        self.records.append(TraceRecord(
            index=len(self.records),
            op=fn.name,
            input_shapes=tuple(tuple(t.shape) for t in fn.inputs),
            output_shapes=tuple(tuple(shape) for shape, _, _ in meta),
            dtype=str(np.dtype(meta[0][1])) if meta else "",
            grad_output_norms=tuple(_norm(g) for g in grads_out),
            grad_input_norms=tuple(_norm(g) for g in as_tuple),
            seconds=seconds,
        ))
        return grads_in

    # ------------------------------------------------------------------ reading it
    @property
    def total_seconds(self) -> float:
        """Sum of the recorded VJP times, in seconds."""
        return math.fsum(r.seconds for r in self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def table(self) -> str:
        """The records as an aligned text table, one row per VJP, and a total line.

        Columns: ``#``, ``op``, ``inputs`` (shapes), ``outputs`` (shapes), ``dtype``, ``|grad out|`` and
        ``|grad in|`` (L2 norms, one per output / input, ``-`` where an input got no gradient) and
        ``time [us]`` (microseconds).
        """
        header = ("#", "op", "inputs", "outputs", "dtype", "|grad out|", "|grad in|", "time [us]")
        rows = [header]
        for r in self.records:
            rows.append((
                str(r.index), r.op,
                ", ".join(_shape_text(s) for s in r.input_shapes),
                ", ".join(_shape_text(s) for s in r.output_shapes),
                r.dtype,
                ", ".join(_norm_text(n) for n in r.grad_output_norms),
                ", ".join(_norm_text(n) for n in r.grad_input_norms),
                f"{r.seconds * 1e6:.1f}",
            ))
        widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
        right = {0, 7}  # numbers right-aligned

        def fmt(row):
            return "  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                             for c, (cell, w) in enumerate(zip(row, widths))).rstrip()

        lines = [fmt(header), "  ".join("-" * w for w in widths)]
        lines += [fmt(row) for row in rows[1:]]
        lines.append(f"{len(self.records)} VJPs, total {self.total_seconds * 1e6:.1f} us "
                     f"({self.total_seconds:.6f} s)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def trace() -> Trace:
    """Open a backward trace: ``with trace() as t: loss.backward()``; then ``t.table()``, ``t.records``,
    ``t.total_seconds`` (seconds). Traces nest; each VJP is recorded in the innermost open one only.

    Returns:
        a :class:`Trace` to use as a context manager.
    """
    return Trace()
