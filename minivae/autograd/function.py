"""``Function``: one differentiable operation, its forward on arrays and its derivatives on Tensors.

``forward(*arrays)`` computes outputs from input arrays (through the selected kernels) and may call
``save_for_backward(*arrays)`` with input or output arrays. ``backward(*grad_outputs)`` receives Tensors and
returns Tensors: the vector-Jacobian product (VJP) written with minivae's own differentiable ops, as Chainer's
``FunctionNode.backward`` and needle's ``Op.gradient``, so that a backward run with ``create_graph=True`` can
be differentiated again. ``jvp(*tangents)`` is the forward-mode rule (Jacobian-vector product), also on
Tensors. Inside both, ``self.saved_tensors`` gives the saved arrays as Tensors of the graph: an input is the
input Tensor itself, an output a handle on this node's output, so derivatives flow through them.

:meth:`Function.apply` wraps the arrays in Tensors, links the graph, and keeps with the node the kernel
selection its forward ran under (the engine runs its backward under the same one).
"""
from __future__ import annotations

import weakref

import numpy as np
from numpy import ndarray

from minivae import kernels
from minivae.autograd import anomaly, grad_mode
from minivae.backend import check_same_device, get_array_module


class _DualState:
    """The open ``forward_ad.dual_level`` (None when none) and whether a JVP rule is running."""

    level = None
    busy = False


DUAL = _DualState()


class Function:
    """Base class of differentiable operations.

    Subclasses implement ``forward(self, *arrays) -> array | tuple[array, ...]``,
    ``backward(self, *grad_outputs: Tensor) -> Tensor | None | tuple`` (one entry per input, None where an input
    needs no gradient; ``self.needs_input_grad[i]`` tells which do) and, for forward mode,
    ``jvp(self, *tangents: Tensor | None) -> Tensor | tuple`` (one tangent per output; an input tangent is
    None where that input has none, i.e. zero). Non-array parameters (stride, axis, ...) are passed to the
    constructor through ``apply(..., name=value)``.
    """

    freed = False
    inputs: tuple = ()
    needs_input_grad: tuple = ()
    output_meta: tuple = ()
    _outputs: tuple = ()
    _to_save: tuple = ()
    _saved_spec = None
    _out_tangents = None
    kernel_selection: tuple = ()

    def __init__(self, **params):
        self.__dict__.update(params)

    @property
    def name(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ what backward needs
    def save_for_backward(self, *arrays) -> None:
        """Keep input or output arrays (or constants) for backward/jvp; read them as ``self.saved_tensors``."""
        self._to_save = arrays

    @property
    def saved_tensors(self) -> tuple:
        """The saved arrays as Tensors: inputs as the input Tensors, outputs as handles on this node's outputs
        (so that a VJP using them is differentiable), anything else as a constant.

        Raises RuntimeError once the graph was freed by a backward without ``retain_graph``.
        """
        if self._saved_spec is None:
            if self.freed:
                raise RuntimeError(f"{self.name}: its saved tensors were freed by a backward pass; pass "
                                   "retain_graph=True to that backward() to use them again")
            return ()
        from minivae.autograd.tensor import Tensor

        out = []
        for kind, k, array in self._saved_spec:
            if kind == "i":
                out.append(self.inputs[k])
            elif kind == "o":
                out.append(self._output_handle(k, array))
            else:
                out.append(Tensor._make(array))
        return tuple(out)

    @property
    def saved(self) -> tuple:
        """The saved arrays themselves (for first-order code on arrays)."""
        return tuple(t.data for t in self.saved_tensors)

    def saved_array_now(self, key):
        """The array a saved entry refers to now (anomaly mode compares it with the copy taken at forward)."""
        kind, k = key
        if kind == "i":
            return self.inputs[k].data
        for kind2, k2, array in self._saved_spec or ():
            if (kind2, k2) == key:
                if kind == "o":
                    live = self._outputs[k]() if self._outputs else None
                    return array if live is None else live.data
                return array
        return None

    def _output_handle(self, k, array):
        from minivae.autograd.tensor import Tensor

        live = self._outputs[k]() if self._outputs else None
        if live is not None:
            return live
        handle = Tensor._make(array, bool(self._outputs))
        if self._outputs:
            handle._ctx, handle._output_index = self, k
        if self._out_tangents is not None and self._out_tangents[k] is not None:
            handle._fw_tangent = self._out_tangents[k]
        return handle

    def release(self) -> None:
        """Free what was saved for backward (after a backward without ``retain_graph``)."""
        self._saved_spec = None
        self._anomaly_copies = None
        self.freed = True

    # ------------------------------------------------------------------ the rules subclasses write
    def forward(self, *arrays):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grad_outputs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{self.name} has no backward (VJP) rule")

    def jvp(self, *tangents):
        raise NotImplementedError(f"{self.name} has no forward-mode (JVP) rule: forward-mode AD can't go "
                                  "through it; use reverse mode (backward, autograd.grad)")

    # ------------------------------------------------------------------ running it
    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors (or arrays / Python scalars) and link the result into the graph.

        Returns a Tensor, or a tuple of Tensors for ops with several outputs.
        Raises:
            DeviceMismatchError: inputs live on different devices.
        """
        from minivae.autograd.tensor import Tensor, as_tensor

        fn = cls(**params)
        tensors = tuple([x if isinstance(x, Tensor) else as_tensor(x) for x in inputs])
        arrays = tuple([t.data for t in tensors])
        if len(arrays) > 1 and not all([type(a) is ndarray for a in arrays]):
            check_same_device(*arrays, op=fn.name)
        outputs = fn.forward(*arrays)
        single = not isinstance(outputs, tuple)
        if single:
            outputs = (outputs,)
        record = grad_mode.is_grad_enabled() and any([t.requires_grad for t in tensors])
        results = tuple([Tensor._make(y, record) for y in outputs])
        dual = DUAL.level is not None and not DUAL.busy and any(t._fw_tangent is not None for t in tensors)
        if record or dual:  # (otherwise fn is dropped here, with what it saved)
            fn.inputs = tensors
            fn._saved_spec = _saved_spec(fn._to_save, arrays, results)
            fn._to_save = ()
        if record:
            fn.kernel_selection = kernels.selection()
            fn.needs_input_grad = tuple([t.requires_grad for t in tensors])
            fn.output_meta = tuple([(y.shape, y.dtype, np if type(y) is ndarray else get_array_module(y))
                                    for y in (r.data for r in results)])
            fn._outputs = tuple(weakref.ref(r) for r in results)
            for i, r in enumerate(results):
                r._ctx, r._output_index = fn, i
            if anomaly.is_enabled():
                anomaly.record(fn, [(_describe(fn, kind, k), (kind, k), a) for kind, k, a in fn._saved_spec
                                    if kind != "c" and a is not None])
        if dual:
            _propagate_tangents(fn, tensors, results, record)
        return results[0] if single else results


def _saved_spec(to_save, arrays, results) -> list:
    """Each saved array as ("i", input index) / ("o", output index) / ("c", constant), with the array."""
    spec = []
    for c, a in enumerate(to_save):
        for i, x in enumerate(arrays):
            if a is x:
                spec.append(("i", i, a))
                break
        else:
            for j, r in enumerate(results):
                if a is r.data:
                    spec.append(("o", j, a))
                    break
            else:
                spec.append(("c", c, a))
    return spec


def _describe(fn, kind, k) -> str:
    t = fn.inputs[k] if kind == "i" else None
    name = getattr(t, "name", None) if t is not None else None
    role = f"input {k}" if kind == "i" else f"output {k}"
    return f"the tensor saved for backward ({role}{f' {name!r}' if name else ''})"


def _propagate_tangents(fn, tensors, results, record) -> None:
    """Forward mode: the output tangents from ``fn.jvp`` (run with tangent propagation off)."""
    level = DUAL.level
    tangents = tuple(t._fw_tangent[1] if t._fw_tangent is not None and t._fw_tangent[0] is level else None
                     for t in tensors)
    if all(t is None for t in tangents):
        return
    DUAL.busy = True
    try:
        if record:
            out = fn.jvp(*tangents)
        else:  # the rule may read saved outputs: let it see the results
            fn._outputs = tuple(weakref.ref(r) for r in results)
            out = fn.jvp(*tangents)
    finally:
        DUAL.busy = False
    out = out if isinstance(out, tuple) else (out,)
    if len(out) != len(results):
        raise RuntimeError(f"{fn.name}.jvp returned {len(out)} tangents for {len(results)} outputs")
    stored = []
    for r, t in zip(results, out):
        if t is not None:
            if t.shape != r.shape:
                raise RuntimeError(f"{fn.name}.jvp returned a tangent of shape {t.shape} for an output of shape "
                                   f"{r.shape}")
            if t.dtype != r.dtype:
                t = t.astype(r.dtype)
            r._fw_tangent = (level, t)
        stored.append(r._fw_tangent)
    if record:
        fn._out_tangents = tuple(stored)
    if not record:
        fn._saved_spec = None
        fn._outputs = ()
