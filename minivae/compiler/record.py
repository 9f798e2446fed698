"""Recording one eager run of a step into a list of nodes over numbered arrays ("slots").

While a :class:`Recorder` is open (:func:`minivae.autograd.capture.recording`), the engine reports its array work
(see :mod:`minivae.autograd.capture`). The recorder gives every array it meets a slot number, keeps the array
alive until the recording ends (so that ``id()`` stays unique) and appends a node per event:

==================  ==============================================================================
node                what a replay does
==================  ==============================================================================
:class:`OpNode`     ``fn.forward(*inputs)``: an op's forward, or one of the backward's VJP ops
:class:`GradNode`   stores a gradient into a leaf's ``.grad`` (a copy, or a sum with what is there)
:class:`ZeroGrad`   sets ``.grad`` of some tensors to None
:class:`StepNode`   ``optimizer.step()``: the whole update, one node
:class:`DrawNode`   draws from the default generator (``randn``, ``rand``, ...)
:class:`ArrayNode`  array work done outside an op (an in-place op's write-back into the tensor)
:class:`CheckNode`  raises if a value is not finite (:func:`minivae.compiler.assert_finite`)
==================  ==============================================================================

Where a slot's array comes from: an input of the step (``("input", k)``), a node (``("node", n)``), a Tensor
that existed before the op read it (``("tensor", t)``: a parameter, read again at every replay, so that a
parameter whose ``data`` was replaced is still seen), or a constant array (``("constant", a)``).
"""
from __future__ import annotations

import copy
import weakref

import numpy as np

from minivae.autograd.tensor import Tensor
from minivae.backend import get_array_module


class CaptureError(RuntimeError):
    """A step did something a plan cannot hold (``create_graph=True``, a step that touches no Tensor, ...)."""


class Node:
    """One event of a recorded step: ``ins`` and ``outs`` are slot numbers."""

    kind = "node"
    ins: tuple = ()
    outs: tuple = ()
    fused: tuple = ()  # names of the fusions a pass applied to this node

    @property
    def name(self) -> str:
        """What the plan's summary calls this node."""
        return self.kind


class OpNode(Node):
    """An op's forward (``fn`` is a copy of the op object, holding its parameters but no graph)."""

    kind = "op"

    def __init__(self, fn, ins, outs):
        self.fn, self.ins, self.outs = fn, tuple(ins), tuple(outs)
        self.in_place = any(o in self.ins for o in self.outs)
        self.attrs: list = []  # (attribute, slot, is a Tensor): arrays the forward keeps on the op
        self.params: list = []  # (attribute, slot, is a Tensor): arrays given to the op as parameters

    @property
    def name(self) -> str:
        """The op's name (``Conv2d``, ``ReLUBackward``, ...)."""
        return self.fn.name


class GradNode(Node):
    """``leaf.grad = copy(g)`` or, when the recorded step found a gradient there (``accumulate``),
    ``leaf.grad = leaf.grad + g``. The mode is the recorded one: a step that resets ``.grad`` by assignment
    (``w.grad = None``, which no hook sees) replays as it was recorded."""

    kind = "grad"

    def __init__(self, leaf, g, out, accumulate: bool):
        self.leaf, self.ins, self.outs, self.accumulate = leaf, (g,), (out,), accumulate

    @property
    def name(self) -> str:
        """``grad[<leaf's name or shape>]``."""
        return f"grad[{getattr(self.leaf, 'name', None) or tuple(self.leaf.shape)}]"


class ZeroGrad(Node):
    """``t.grad = None`` for each tensor of ``tensors``."""

    kind = "zero_grad"

    def __init__(self, tensors):
        self.tensors = tuple(tensors)


class StepNode(Node):
    """``optimizer.step()``, reading the gradients in slots ``ins``."""

    kind = "optimizer"

    def __init__(self, optimizer, ins):
        self.optimizer, self.ins = optimizer, tuple(ins)

    @property
    def name(self) -> str:
        """``<Optimizer class>.step``."""
        return f"{type(self.optimizer).__name__}.step"


class DrawNode(Node):
    """A draw from a random generator: ``draw()`` returns the new array (``out``)."""

    kind = "draw"

    def __init__(self, draw, out, what):
        self.draw, self.outs, self.what = draw, (out,), what

    @property
    def name(self) -> str:
        """What was drawn or done (``randn``, ``sub_ (write)``, ...)."""
        return self.what


class ArrayNode(Node):
    """Array work an op module does outside a Function (an in-place op's write-back, the copy of the old values):
    ``fn(*arrays)`` returns the array for ``outs[0]`` (which may be one of the inputs, written in place)."""

    kind = "array"

    def __init__(self, fn, ins, out, what):
        self.fn, self.ins, self.outs, self.what = fn, tuple(ins), (out,), what

    @property
    def name(self) -> str:
        """What was drawn or done (``randn``, ``sub_ (write)``, ...)."""
        return self.what


class CheckNode(Node):
    """Raise ``error(message)`` when the array in slot ``ins[0]`` holds a NaN or an infinity."""

    kind = "check"

    def __init__(self, slot, error, message):
        self.ins, self.error, self.message = (slot,), error, message


class Recorder:
    """Collects the nodes and slots of one run (see the module docstring).

    Args:
        inputs: the step's input arrays, in argument order (slots 0, 1, ...).
        snapshots: also keep a copy of every array a node makes, as it was made (``values``; for
            ``check=True``, where a later in-place op may change the array itself).
    """

    def __init__(self, inputs, snapshots: bool = False):
        self.values: dict | None = {} if snapshots else None
        self.nodes: list[Node] = []
        self.sources: list = []  # per slot: ("input", k) | ("node", n) | ("tensor", t) | ("constant", a)
        self.meta: list = []  # per slot: (shape, dtype, xp)
        self.views: dict = {}  # slot -> slot whose memory it may view (set for op outputs only)
        self.arrays: list = []  # per slot, the array of an input, tensor or constant slot (None for node slots)
        self.host_reads = 0
        # id(array) -> (slot, weak reference): an id is the array's only while the reference still gives it back
        # (a freed array's id may be reused), so the recording does not keep the step's activations alive longer
        # than eager mode would
        self._ids: dict = {}
        self._keep: list = []  # arrays that take no weak reference (NumPy scalars): kept while recording
        for k, a in enumerate(inputs):
            self._new_slot(a, ("input", k))

    # ------------------------------------------------------------------ slots
    def _new_slot(self, array, source) -> int:
        slot = len(self.sources)
        self.sources.append(source)
        self.meta.append((tuple(array.shape), np.dtype(array.dtype), get_array_module(array)))
        self._remember(array, slot)
        self.arrays.append(None if source[0] == "node" else array)
        return slot

    def _remember(self, array, slot) -> None:
        try:
            ref = weakref.ref(array)
        except TypeError:  # a NumPy scalar
            self._keep.append(array)
            ref = lambda a=array: a  # noqa: E731  (a strong "reference")
        self._ids[id(array)] = (slot, ref)

    def _lookup(self, array) -> int | None:
        entry = self._ids.get(id(array))
        return entry[0] if entry is not None and entry[1]() is array else None

    def slot_of(self, array, tensor=None) -> int:
        """The slot of an array a node reads (a new ``tensor`` or ``constant`` slot for one not seen yet)."""
        slot = self._lookup(array)
        if slot is None:
            slot = self._new_slot(array, ("tensor", tensor) if tensor is not None else ("constant", array))
        return slot

    # ------------------------------------------------------------------ the hooks (minivae.autograd.capture)
    def op(self, fn, tensors, raw, results) -> None:
        """An op ran: ``fn.forward(*[t.data for t in tensors])`` returned ``raw`` (wrapped as ``results``)."""
        ins = [self.slot_of(t.data, t) for t in tensors]
        outs = []
        for y, r in zip(raw, results):
            slot = self._lookup(y)
            if slot is None:  # a new array (the usual case), else an in-place op returned its input
                slot = self._new_slot(r.data, ("node", len(self.nodes)))
                if r.data is not y:  # a NumPy scalar became a 0-d array: both name this slot
                    self._remember(y, slot)
                xp = get_array_module(r.data)
                for i, t in zip(ins, tensors):
                    if xp.may_share_memory(r.data, t.data):
                        self.views[slot] = self.views.get(i, i)
                        break
            outs.append(slot)
            if self.values is not None:
                self.values[slot] = r.data.copy()
        node = OpNode(copy.copy(fn), ins, outs)
        node.fn._to_save = ()
        # arrays the forward kept on the op for its backward (a mask, tie weights): the backward's ops read them,
        # so they are outputs of this node too, read from the op after every replayed forward
        for attr, value in list(vars(fn).items()):
            array = value.data if isinstance(value, Tensor) else value
            if attr == "_to_save" or not hasattr(array, "shape") or not hasattr(array, "dtype"):
                continue
            known = self._lookup(array)
            if known is not None:  # an array given as a parameter (where's condition): an input of the node
                if known not in outs and known not in ins:
                    node.params.append((attr, known, isinstance(value, Tensor)))
                    node.ins += (known,)
                continue
            slot = self._new_slot(array, ("node", len(self.nodes)))
            node.attrs.append((attr, slot, isinstance(value, Tensor)))
            if self.values is not None:
                self.values[slot] = array.copy()
        self.nodes.append(node)

    def store_grad(self, leaf, grad_array, new_array, accumulated: bool) -> None:
        """``leaf.grad`` was set to ``new_array`` from the gradient ``grad_array`` (a copy, or a sum when
        ``accumulated``)."""
        g = self.slot_of(grad_array)
        out = self._new_slot(new_array, ("node", len(self.nodes)))
        self.nodes.append(GradNode(leaf, g, out, accumulated))
        if self.values is not None:
            self.values[out] = new_array.copy()

    def zero_grad(self, tensors) -> None:
        """``zero_grad()`` set the ``.grad`` of ``tensors`` to None."""
        self.nodes.append(ZeroGrad(tensors))

    def optimizer_step(self, optimizer) -> None:
        """``optimizer.step()`` ran (reading the gradients of its parameters)."""
        ins = [self.slot_of(p.grad.data) for p in optimizer.params if p.grad is not None]
        self.nodes.append(StepNode(optimizer, ins))

    def random(self, draw, array, what: str) -> None:
        """A random factory returned ``array``; ``draw()`` draws the next one the same way."""
        out = self._new_slot(array, ("node", len(self.nodes)))
        self.nodes.append(DrawNode(draw, out, what))
        if self.values is not None:
            self.values[out] = array.copy()

    def array_op(self, fn, inputs, output, what: str) -> None:
        """``output = fn(*inputs)`` ran on arrays outside any op (``output`` may be one of ``inputs``)."""
        ins = [self.slot_of(a) for a in inputs]
        out = self._lookup(output)
        if out is None:
            out = self._new_slot(output, ("node", len(self.nodes)))
        self.nodes.append(ArrayNode(fn, ins, out, what))
        if self.values is not None:
            self.values[out] = output.copy()

    def check_finite(self, array, error, message) -> None:
        """:func:`minivae.compiler.assert_finite` checked ``array``."""
        self.nodes.append(CheckNode(self.slot_of(array), error, message))

    def host_read(self) -> None:
        """A value was read back to Python (``Tensor.item()``)."""
        self.host_reads += 1

    def create_graph(self) -> None:
        """A backward with ``create_graph=True`` stored ``.grad``: raises :class:`CaptureError`."""
        raise CaptureError("compile: the step runs a backward with create_graph=True (a higher-order gradient); "
                           "a plan holds first-order steps only: run this step eagerly")
