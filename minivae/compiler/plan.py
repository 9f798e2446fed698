"""A :class:`Plan`: the recorded nodes of one step turned into a list of calls that a replay runs in order.

A replay builds no Tensor and no graph: it fills a list of arrays (one per slot) from the step's inputs, the
parameters (read again at every replay) and the recorded constants, then runs each node's call on it:

* an op node calls the op's own ``forward`` on the arrays (the same code, so the same bits as eager), or, where a
  pass rewrote it, the kernel directly (with a fused epilogue, or writing into a buffer the memory planner gave);
* a gradient node stores ``.grad`` as the engine does, an optimizer node runs the optimizer's own update (or the
  flat Adam kernel), a draw node draws from the default generator, a check node raises on a non-finite value.

A slot's array is dropped as soon as no later node reads it (as eager mode frees an activation when the backward
no longer needs it), unless it is an output of the step or a stored gradient.
"""
from __future__ import annotations

import numpy as np

from minivae import kernels
from minivae.autograd.tensor import Tensor
from minivae.backend import get_array_module
from minivae.compiler.record import ArrayNode, CheckNode, DrawNode, GradNode, OpNode, StepNode, ZeroGrad
from minivae.kernels import _blas


def _as_array(y):
    return np.asarray(y) if isinstance(y, np.generic) else y


def op_call(node: OpNode):
    """The call of an op node: its ``forward`` on the input slots, the results into the output slots."""
    fn, outs = node.fn, node.outs
    ins = node.ins[:len(node.ins) - len(node.params)]  # the forward's arguments; then the array parameters
    forward = fn.forward
    if node.attrs or node.params:
        attrs, params = node.attrs, node.params

        def run_keeping(buf):
            for attr, slot, is_tensor in params:
                setattr(fn, attr, Tensor._make(buf[slot]) if is_tensor else buf[slot])
            ys = forward(*[buf[i] for i in ins])
            for o, y in zip(outs, ys if len(outs) > 1 else (ys,)):
                buf[o] = _as_array(y)
            for attr, slot, is_tensor in attrs:
                value = getattr(fn, attr)
                buf[slot] = value.data if is_tensor else value
            fn._to_save = ()
        return run_keeping
    if len(outs) == 1:
        (o,) = outs

        def run(buf):
            buf[o] = _as_array(forward(*[buf[i] for i in ins]))
            fn._to_save = ()
        return run

    def run_many(buf):
        ys = forward(*[buf[i] for i in ins])
        for o, y in zip(outs, ys):
            buf[o] = _as_array(y)
        fn._to_save = ()
    return run_many


def _grad_call(node: GradNode):
    leaf, (g,), (o,), accumulate = node.leaf, node.ins, node.outs, node.accumulate

    def run(buf):
        arr = leaf.grad.data + buf[g] if accumulate and leaf.grad is not None else buf[g].copy()
        leaf.grad = Tensor._make(arr)
        buf[o] = arr
    return run


def _zero_grad_call(node: ZeroGrad):
    tensors = node.tensors

    def run(buf):
        for t in tensors:
            t.grad = None
    return run


def _step_call(node: StepNode):
    return lambda buf: node.optimizer._step()


def _draw_call(node: DrawNode):
    draw, (o,) = node.draw, node.outs

    def run(buf):
        buf[o] = draw()
    return run


def _check_call(node: CheckNode):
    (i,), error, message = node.ins, node.error, node.message

    def run(buf):
        a = buf[i]
        if not bool(get_array_module(a).isfinite(a).all()):
            raise error(message(a) if callable(message) else message)
    return run


def _array_call(node: ArrayNode):
    fn, ins, (o,) = node.fn, node.ins, node.outs

    def run(buf):
        buf[o] = fn(*[buf[i] for i in ins])
    return run


CALLS = {ArrayNode: _array_call, OpNode: op_call, GradNode: _grad_call, ZeroGrad: _zero_grad_call, StepNode: _step_call,
         DrawNode: _draw_call, CheckNode: _check_call}


class Plan:
    """The nodes and slots of one recorded step, and the calls a replay runs.

    Attributes:
        nodes: the recorded nodes (:mod:`minivae.compiler.record`), in execution order.
        sources: per slot, where its array comes from (``("input", k)``, ``("node", n)``, ``("tensor", t)``,
            ``("constant", array)``).
        meta: per slot, ``(shape, dtype, array module)``.
        outputs: the slots of the step's returned Tensors, and ``structure`` how to rebuild the return value.
        fusions: names of the fusions the passes applied, with their counts (``{"conv+relu": 5, ...}``).
        buffers: the memory planner's buffers (nbytes per buffer; empty when the pass is off).
        host_reads: how many values the recorded step read back to Python (``.item()``): what Python did with
            them is not in the plan.
    """

    def __init__(self, recorder, outputs, structure, label: str = "step"):
        self.nodes = list(recorder.nodes)
        self.sources = list(recorder.sources)
        self.meta = list(recorder.meta)
        self.views = dict(recorder.views)
        self.host_reads = recorder.host_reads
        self.outputs, self.structure, self.label = tuple(outputs), structure, label
        self.fusions: dict = {}
        self.buffers: list = []
        self.planned: dict = {}  # slot -> its view into a buffer (memory planner)
        self.planned_buffer: dict = {}  # slot -> buffer index
        self.calls: dict = {}  # id(node) -> a call replacing the default one (set by passes)
        self.passes: list = []
        self.build()

    # ------------------------------------------------------------------ liveness
    def pinned(self) -> set:
        """Slots that must outlive the step: its outputs and the stored gradients (``.grad``)."""
        keep = set(self.outputs)
        for node in self.nodes:
            if isinstance(node, GradNode):
                keep.update(node.outs)
        return keep

    def lifetimes(self) -> dict:
        """``slot -> (first, last)``: the node that makes it (-1 for inputs, parameters and constants) and the last
        node that reads it (``len(nodes)`` for pinned slots); a slot some view reads lives as long as the view."""
        end = len(self.nodes)
        first, last = {}, {}
        for k, node in enumerate(self.nodes):
            for s in node.outs:
                first.setdefault(s, k)
                last[s] = max(last.get(s, k), k)
            for s in node.ins:
                last[s] = max(last.get(s, -1), k)
        for s in self.pinned():
            last[s] = end
        for view, base in sorted(self.views.items(), reverse=True):
            if view in last:
                last[base] = max(last.get(base, -1), last[view])
        return {s: (first.get(s, -1), last.get(s, first.get(s, -1))) for s in set(first) | set(last)}

    def nbytes(self, slot: int) -> int:
        """The size of slot ``slot``'s array, in bytes."""
        shape, dtype, _ = self.meta[slot]
        return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize

    # ------------------------------------------------------------------ building the replay
    def build(self) -> None:
        """Turn the nodes into the replay's calls and the list of slots to drop after each call."""
        self._calls = [self.calls.get(id(n)) or CALLS[type(n)](n) for n in self.nodes]
        self._inputs = [(s, v) for s, (kind, v) in enumerate(self.sources) if kind == "input"]
        self._tensors = [(s, v) for s, (kind, v) in enumerate(self.sources) if kind == "tensor"]
        self._base = [v if kind == "constant" else None for kind, v in self.sources]
        for s, view in self.planned.items():
            self._base[s] = view
        keep = self.pinned() | set(self.planned)
        drop = [[] for _ in self.nodes]
        for s, (_, last) in self.lifetimes().items():
            kind = self.sources[s][0]
            if 0 <= last < len(self.nodes) and s not in keep and kind in ("node",):
                drop[last].append(s)
        self._steps = list(zip(self._calls, drop))
        self._hold_blas = kernels.current("cpu") == "numba" and all(xp is np for _, _, xp in self.meta)

    def replay(self, inputs) -> list:
        """Run the plan on ``inputs`` (arrays, in the step's argument order); returns the output arrays.

        On the Numba CPU kernels, the BLAS thread limit their GEMMs need (one thread per chunk) is set once around
        the whole replay instead of once per kernel call (:class:`minivae.kernels._blas.one_thread` nests)."""
        if self._hold_blas:
            with _blas.one_thread():
                return self._replay(inputs)
        return self._replay(inputs)

    def slots(self, inputs) -> list:
        """The slot list a replay starts from: constants and planned buffers, the ``inputs`` and the tensors'
        arrays (read now: a parameter whose ``data`` was replaced is seen)."""
        buf = self._base.copy()
        for s, k in self._inputs:
            buf[s] = inputs[k]
        for s, t in self._tensors:
            buf[s] = t.data
        return buf

    def _replay(self, inputs) -> list:
        buf = self.slots(inputs)
        for call, drop in self._steps:
            call(buf)
            for s in drop:
                buf[s] = None
        return [buf[s] for s in self.outputs]

    # ------------------------------------------------------------------ reading it
    def signature(self) -> list:
        """``(node name, input shapes, output shapes)`` per node: two captures of the same step agree on it."""
        return [(n.name, tuple(self.meta[s][0] for s in n.ins), tuple(self.meta[s][0] for s in n.outs))
                for n in self.nodes]

    def summary(self) -> str:
        """A text table of the plan: see :func:`minivae.compiler.summary.summary`."""
        from minivae.compiler.summary import summary

        return summary(self)

    def memory_profile(self):
        """``(labels, live_bytes)``: the bytes of the slots alive during each node (see
        :func:`minivae.compiler.summary.memory_profile`)."""
        from minivae.compiler.summary import memory_profile

        return memory_profile(self)

    def plot_memory(self, ax=None, path=None):
        """Draw the live memory over the step (see :func:`minivae.compiler.summary.plot_memory`)."""
        from minivae.compiler.summary import plot_memory

        return plot_memory(self, ax=ax, path=path)

    def __repr__(self) -> str:
        return f"<Plan {self.label}: {len(self.nodes)} nodes, {len(self.sources)} slots>"
