"""``compile(fn, check=True)``: run eager beside the replay and raise at the first difference.

A checked call saves the state a step changes (the parameters and other tensors the plan reads, their ``.grad``,
the optimizers' state and the default generator), runs the step eagerly while recording it, saves the state it
left, puts the saved state back, and replays the plan, comparing every array a node makes with the one eager
made at the same place, bit for bit. At the first difference it puts eager's state back and raises
:class:`CheckError` naming the node; without one, it checks that the replay left the parameters and the optimizer
state exactly as eager did. Eager mode is the reference: after a checked call the state is eager's either way.
"""
from __future__ import annotations

import copy

import numpy as np

from minivae.autograd.tensor import Tensor
from minivae.backend import get_array_module
from minivae.compiler.record import StepNode
from minivae.ops import creation


class CheckError(AssertionError):
    """The replay of a plan and the eager step differ (``compile(fn, check=True)``)."""


def _copy(a):
    return None if a is None else a.copy()


class State:
    """A copy of what a step may change: tensors' data and ``.grad``, optimizer state, the default generator."""

    def __init__(self, plan):
        self.tensors = [t for kind, t in plan.sources if kind == "tensor"]
        self.optimizers = list({id(n.optimizer): n.optimizer for n in plan.nodes if isinstance(n, StepNode)}.values())
        for opt in self.optimizers:
            for p in opt.params:
                if all(p is not t for t in self.tensors):
                    self.tensors.append(p)
        self.data = [t.data.copy() for t in self.tensors]
        self.grads = [None if t.grad is None else t.grad.data.copy() for t in self.tensors]
        self.opt_state = [(opt.step_count, [{k: _copy(v) if hasattr(v, "shape") else copy.copy(v)
                                            for k, v in st.items()} for st in opt.state]) for opt in self.optimizers]
        self.generator = copy.deepcopy(creation.default_generator().bit_generator.state)

    def restore(self) -> None:
        """Put the saved values back, into the same arrays (views into them stay valid)."""
        for t, d, g in zip(self.tensors, self.data, self.grads):
            t.data[...] = d
            t.grad = None if g is None else Tensor._make(g.copy())
        for opt, (count, states) in zip(self.optimizers, self.opt_state):
            opt.step_count = count
            for live, saved in zip(opt.state, states):
                for k in list(live):
                    if k not in saved:
                        del live[k]
                for k, v in saved.items():
                    if hasattr(v, "shape") and hasattr(live.get(k), "shape") and live[k].shape == v.shape:
                        live[k][...] = v
                    else:
                        live[k] = _copy(v) if hasattr(v, "shape") else v
        creation.default_generator().bit_generator.state = copy.deepcopy(self.generator)

    def differences(self, other: State) -> list:
        """Names of the entries where this state and ``other`` differ (bit for bit)."""
        out = []
        for k, (a, b) in enumerate(zip(self.data, other.data)):
            if not _same(a, b):
                out.append(f"tensor {k} {tuple(a.shape)} (data)")
        for k, (a, b) in enumerate(zip(self.grads, other.grads)):
            if (a is None) != (b is None) or (a is not None and not _same(a, b)):
                out.append(f"tensor {k} {tuple(self.data[k].shape)} (.grad)")
        for (c1, s1), (c2, s2), opt in zip(self.opt_state, other.opt_state, self.optimizers):
            if c1 != c2:
                out.append(f"{type(opt).__name__}.step_count")
            for i, (a, b) in enumerate(zip(s1, s2)):
                for key in set(a) | set(b):
                    va, vb = a.get(key), b.get(key)
                    if hasattr(va, "shape") and hasattr(vb, "shape") and _same(va, vb):
                        continue
                    if not hasattr(va, "shape") and va == vb:
                        continue
                    out.append(f"{type(opt).__name__} state {key!r} of parameter {i}")
        return out


def _same(a, b) -> bool:
    """Bit-for-bit equality (NaN equals NaN in the same place), on any device."""
    if a is None or b is None:
        return a is b
    a, b = _as_array(a), _as_array(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    xp = get_array_module(a)
    return bool(xp.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _as_array(a):
    return np.asarray(a) if isinstance(a, (np.generic, int, float)) else a


def compare_replay(plan, inputs, eager_arrays):
    """Replay ``plan`` on ``inputs``; return None or a message naming the first node whose output differs from
    the eager run's array in the same slot."""
    buf = plan.slots(inputs)
    for k, (call, node) in enumerate(zip(plan._calls, plan.nodes)):
        call(buf)
        for s in node.outs:
            if not _same(buf[s], eager_arrays[s]):
                a, b = _as_array(buf[s]), _as_array(eager_arrays[s])
                detail = ""
                if getattr(a, "shape", None) == getattr(b, "shape", None):
                    xp = get_array_module(a)
                    detail = f", max abs difference {float(xp.nanmax(xp.abs(a.astype('f8') - b.astype('f8')))):.3e}"
                return (f"node {k} ({node.name}{', fused: ' + '+'.join(node.fused) if node.fused else ''}) "
                        f"differs from eager in output slot {s}{detail}")
    return None
