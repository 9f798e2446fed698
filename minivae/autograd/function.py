"""``Function``: one differentiable operation, its forward on arrays and its derivatives on Tensors.

A subclass writes three methods side by side:

* ``forward(*arrays)`` computes the outputs from the input arrays (through the selected kernels) and may call
  ``save_for_backward(...)`` with input arrays, output arrays or other arrays (constants);
* ``backward(*grad_outputs)`` receives Tensors and returns Tensors: the vector-Jacobian product (VJP), written
  with minivae's own differentiable ops (Chainer's ``FunctionNode.backward``, needle's ``Op.gradient``), so
  that a backward run with ``create_graph=True`` can be differentiated again;
* ``jvp(*tangents)``: the forward-mode rule (Jacobian-vector product), also on Tensors.

Parameters that are not arrays (a stride, an axis) are arguments of the subclass's ``__init__`` and are
passed through ``apply(..., name=value)``.

Saved tensors, in a dozen lines. Inside ``backward``/``jvp``, ``self.saved_tensors`` gives back what forward
saved, as Tensors *of the graph*: a saved input is that input Tensor, a saved output this node's output
Tensor, so that a VJP using them is itself differentiable. Each entry remembers the version of the tensor
when it was saved (PyTorch's ``SavedVariable``); an in-place op bumps a tensor's version, and reading a
saved tensor whose version changed raises "modified by an inplace operation", always. Outputs are held
through a weak reference (a node holding its own output strongly would be a reference cycle that keeps
every activation alive until the garbage collector runs); when the output Tensor is gone, a new handle on
the saved array is made, linked to this node.

:meth:`Function.apply` runs the forward, links the results into the graph, keeps with the node the kernel
selection its forward ran under (the engine runs its backward under the same one) and, inside a
``forward_ad.dual_level``, pushes tangents through :meth:`jvp` (see :mod:`minivae.autograd.forward_ad`).
"""
from __future__ import annotations

import weakref

import numpy as np
from numpy import ndarray

from minivae import kernels
from minivae.autograd import anomaly, capture, grad_mode
from minivae.autograd.tensor import Tensor, VersionCounter, as_tensor
from minivae.backend import check_same_device, get_array_module


class SavedTensor:
    """One saved array: where it came from (``"input"``, ``"output"`` or ``"constant"``, with the position),
    the version counter it belongs to and the version it had when saved."""

    __slots__ = ("kind", "index", "array", "counter", "version")

    def __init__(self, kind, index, array, counter):
        self.kind, self.index, self.array, self.counter = kind, index, array, counter
        self.version = counter.value if counter is not None else 0


class Function:
    """Base class of differentiable operations.

    Subclasses implement ``forward(self, *arrays) -> array | tuple[array, ...]``,
    ``backward(self, *grad_outputs: Tensor) -> Tensor | None | tuple`` (one entry per input, None where an input
    needs no gradient; ``self.needs_input_grad[i]`` tells which do) and, for forward mode,
    ``jvp(self, *tangents: Tensor | None) -> Tensor | tuple`` (one tangent per output; an input tangent is
    None where that input has none, i.e. zero).
    """

    #: True for ops whose output may share memory with input 0 (reshape, slicing, ...): the output then shares
    #: the input's version counter, as a PyTorch view does, so an in-place change through either is seen.
    is_view = False

    freed = False
    inputs: tuple = ()
    needs_input_grad: tuple = ()
    output_meta: tuple = ()
    _outputs: tuple = ()
    _to_save: tuple = ()
    _saved: tuple | None = None
    _out_tangents = None
    kernel_selection: tuple = ()

    def __init__(self):
        """An op with parameters (a stride, a dim) names them in its own ``__init__``; ``apply(*inputs, **params)``
        passes the keyword arguments to it."""

    @property
    def name(self) -> str:
        """The op's name (its class name), as shown in traces, graphs and error messages."""
        return type(self).__name__

    # ------------------------------------------------------------------ what backward needs
    def save_for_backward(self, *arrays) -> None:
        """Keep input or output arrays (or constants) for backward/jvp; read them as ``self.saved_tensors``."""
        self._to_save = arrays

    @property
    def saved_tensors(self) -> tuple:
        """The saved arrays as Tensors of the graph (inputs as the input Tensors, outputs as this node's outputs,
        anything else as a constant).

        Raises RuntimeError once the graph was freed by a backward without ``retain_graph``, or when a saved
        tensor was modified by an in-place operation after it was saved.
        """
        if self._saved is None:
            if self.freed:
                raise RuntimeError(f"{self.name}: its saved tensors were freed by a backward pass; pass "
                                   "retain_graph=True to that backward() to use them again")
            return ()
        out = []
        for s in self._saved:
            if s.counter is not None and s.counter.value != s.version:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: {s.kind} {s.index} of {self.name} (shape {tuple(s.array.shape)}, {s.array.dtype}) "
                    f"is at version {s.counter.value}; expected version {s.version}. Use an out-of-place op "
                    "(x = x + y instead of x += y), or clone the tensor before changing it")
            if s.kind == "input":
                out.append(self.inputs[s.index])
            elif s.kind == "output":
                out.append(self._output(s))
            else:
                out.append(Tensor._make(s.array))
        return tuple(out)

    @property
    def saved(self) -> tuple:
        """The saved arrays themselves (for first-order code on arrays)."""
        return tuple(t.data for t in self.saved_tensors)

    def saved_array_now(self, key):
        """The array saved entry ``key`` (its position in ``save_for_backward``) refers to now: anomaly mode
        compares it with the copy taken at forward time."""
        s = self._saved[key]
        if s.kind == "input":
            return self.inputs[s.index].data
        live = self._outputs[s.index]() if s.kind == "output" and self._outputs else None
        return s.array if live is None else live.data

    def _output(self, s: SavedTensor) -> Tensor:
        """Output ``s.index`` of this node: the live Tensor, or a new handle on the saved array linked here."""
        live = self._outputs[s.index]() if self._outputs else None
        if live is not None:
            return live
        handle = Tensor._make(s.array, bool(self._outputs))
        handle._version_counter = s.counter
        if self._outputs:
            handle._ctx, handle._output_index = self, s.index
        if self._out_tangents is not None and self._out_tangents[s.index] is not None:
            handle._fw_tangent = self._out_tangents[s.index]
        return handle

    def release(self) -> None:
        """Free what was saved for backward (after a backward without ``retain_graph``)."""
        self._saved = None
        self._anomaly_copies = None
        self.freed = True

    # ------------------------------------------------------------------ the rules subclasses write
    def forward(self, *arrays):  # pragma: no cover - abstract
        """Compute the outputs (arrays) from the input arrays; subclasses implement it."""
        raise NotImplementedError

    def backward(self, *grad_outputs):  # pragma: no cover - abstract
        """The VJP: one gradient Tensor (or None) per input, from one gradient Tensor per output."""
        raise NotImplementedError(f"{self.name} has no backward (VJP) rule")

    def jvp(self, *tangents):
        """The JVP: one tangent Tensor (or None for zero) per output, from one tangent (or None) per input."""
        raise NotImplementedError(f"{self.name} has no forward-mode (JVP) rule: forward-mode AD can't go "
                                  "through it; use reverse mode (backward, autograd.grad)")

    # ------------------------------------------------------------------ running it
    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors (or arrays / Python scalars) and link the result into the graph.

        Returns a Tensor, or a tuple of Tensors for ops with several outputs. Outputs that are not floating
        point (indices, masks) never require grad.
        Raises:
            DeviceMismatchError: inputs live on different devices.
        """
        fn = cls(**params)
        tensors = tuple([x if isinstance(x, Tensor) else as_tensor(x) for x in inputs])
        arrays = tuple([t.data for t in tensors])
        if len(arrays) > 1 and not all([type(a) is ndarray for a in arrays]):
            check_same_device(*arrays, op=fn.name)
        raw = fn.forward(*arrays)
        single = not isinstance(raw, tuple)
        raw = (raw,) if single else raw
        record = grad_mode.is_grad_enabled() and any([t.requires_grad for t in tensors])
        results = tuple([Tensor._make(y, record and y.dtype.kind == "f") for y in raw])
        if cls.is_view and get_array_module(arrays[0]).may_share_memory(results[0].data, arrays[0]):
            results[0]._version_counter = tensors[0]._version_counter
            results[0]._base = tensors[0] if tensors[0]._base is None else tensors[0]._base
        recorder = capture.active()
        if recorder is not None:  # minivae.compile is recording a step: report the op before it joins the graph
            recorder.op(fn, tensors, raw, results)
        dual = forward_ad.is_active() and any([t._fw_tangent is not None for t in tensors])
        if record or dual:  # (otherwise fn is dropped here, with what it saved)
            fn.inputs = tensors
            fn._saved = _saved_entries(fn._to_save, tensors, raw, results)
            fn._to_save = ()
        if record:
            fn.kernel_selection = kernels.selection()
            fn.needs_input_grad = tuple([t.requires_grad for t in tensors])
            fn.output_meta = tuple([(y.shape, y.dtype, np if type(y) is ndarray else get_array_module(y))
                                    for y in (r.data for r in results)])
            fn._outputs = tuple([weakref.ref(r) for r in results])
            for i, r in enumerate(results):
                r._ctx, r._output_index = fn, i
            if anomaly.is_enabled():
                anomaly.record(fn, [(_describe(fn, s), k, s.array) for k, s in enumerate(fn._saved)
                                    if s.kind != "constant" and s.array is not None])
        if dual:
            forward_ad.propagate(fn, tensors, results, record)
        return results[0] if single else results


def _saved_entries(to_save, tensors, raw_outputs, results) -> tuple:
    """A :class:`SavedTensor` per saved array: an input, an output (matched by identity with what forward
    returned, before a NumPy scalar from a 0-d op became a 0-d array) or a constant."""
    entries = []
    for c, a in enumerate(to_save):
        entry = None
        for i, t in enumerate(tensors):
            if a is t.data:
                entry = SavedTensor("input", i, a, t._version_counter)
                break
        else:
            for j, y in enumerate(raw_outputs):
                if a is y or a is results[j].data:
                    entry = SavedTensor("output", j, results[j].data, results[j]._version_counter)
                    break
        entries.append(entry or SavedTensor("constant", c, a, None))
    return tuple(entries)


def _describe(fn, s: SavedTensor) -> str:
    t = fn.inputs[s.index] if s.kind == "input" else None
    name = getattr(t, "name", None) if t is not None else None
    return f"the tensor saved for backward ({s.kind} {s.index}{f' {name!r}' if name else ''})"


__all__ = ["Function", "SavedTensor", "VersionCounter"]

from minivae.autograd import forward_ad  # noqa: E402  (forward_ad defines Functions: imported after Function)
