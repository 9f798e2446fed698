"""Passes over a captured :class:`~minivae.compiler.plan.Plan`, each switchable off with
``compile(fn, passes={"name": False})``. Every pass keeps eager's bits (tested): it changes where results are
written and how many calls make them, never the arithmetic.

* ``epilogue``: a convolution, transposed convolution or dense op whose output only a ReLU reads runs with the
  ReLU in its kernel's epilogue (``relu=True``: applied to each chunk while it is in cache), and the ReLU call is
  gone.
* ``memory``: the arrays made by kernel calls that take ``out=`` get buffers from a pool, reused by arrays whose
  lifetimes do not overlap (greedy, in call order); a replay then allocates none of them.
* ``adam``: the parameters, gradients and Adam moments live side by side in four flat buffers (each parameter's
  ``data`` and state become views into them), and the optimizer node is one ``adam_step_flat`` call instead of a
  Python loop over parameters (CPU, plain Adam, float32/float64).

The transposed convolution's shared-im2col backward (one im2col of the output gradient for both the input and the
weight gradient) is the kernel ``conv_transpose2d_backward`` itself, which the op calls in every mode: there is no
second route to move here.
"""
from __future__ import annotations

import inspect

import numpy as np

from minivae import kernels
from minivae.autograd.tensor import Tensor
from minivae.compiler.record import GradNode, OpNode, StepNode

DEFAULTS = {"epilogue": True, "memory": True, "adam": True}

#: op name -> (kernel, how the op's parameters follow the arrays)
_KERNEL_OPS = {
    "Conv2d": ("conv2d_forward", lambda fn: (fn.stride, fn.padding)),
    "ConvTranspose2d": ("conv_transpose2d_forward", lambda fn: (fn.stride, fn.padding, fn.output_padding)),
    "Linear": ("dense_forward", lambda fn: ()),
    "ReLU": ("relu_forward", lambda fn: ()),
    "ReLUBackward": ("relu_backward", lambda fn: ()),
}


def run(plan, options: dict) -> None:
    """Apply the passes that are on, in order, then rebuild the plan's calls."""
    plan.passes = []
    for name, apply in (("epilogue", fuse_epilogues), ("memory", plan_memory), ("adam", flat_adam)):
        if options.get(name):
            apply(plan)
            plan.passes.append(name)
    plan.build()


def _kernel(node, keyword: str):
    """The kernel an op node's forward calls, when it takes ``keyword`` (else None)."""
    if not isinstance(node, OpNode) or node.name not in _KERNEL_OPS or node.params or node.attrs:
        return None
    device = "gpu" if node.xp_name != "numpy" else "cpu"
    fn = kernels.get(_KERNEL_OPS[node.name][0], device)
    try:
        return fn if keyword in inspect.signature(fn).parameters else None
    except (TypeError, ValueError):
        return None


def kernel_call(node, kernel, relu: bool = False, out=None):
    """A call running ``kernel`` for an op node directly (no checks: the recorded forward made them), with the
    ReLU epilogue and/or into ``out``."""
    ins, (o,) = node.ins, node.outs
    extra = _KERNEL_OPS[node.name][1](node.fn)
    options = {}
    if relu:
        options["relu"] = True
    if out is not None:
        options["out"] = out
    if node.name in ("Conv2d", "ConvTranspose2d", "Linear") and len(ins) == 2:
        def run(buf):
            buf[o] = kernel(buf[ins[0]], buf[ins[1]], None, *extra, **options)
    elif len(ins) == 1:
        (i,) = ins

        def run(buf):
            buf[o] = kernel(buf[i], **options)
    elif len(ins) == 2:
        a, b = ins

        def run(buf):
            buf[o] = kernel(buf[a], buf[b], **options)
    else:
        x, w, bias = ins

        def run(buf):
            buf[o] = kernel(buf[x], buf[w], buf[bias], *extra, **options)
    return run


def _readers(plan) -> dict:
    readers: dict = {}
    for node in plan.nodes:
        for s in node.ins:
            readers.setdefault(s, []).append(node)
    return readers


def _annotate(plan) -> None:
    for node in plan.nodes:
        if isinstance(node, OpNode):
            node.xp_name = plan.meta[node.outs[0]][2].__name__ if node.outs else "numpy"


def fuse_epilogues(plan) -> None:
    """conv / transposed conv / dense followed by the ReLU that alone reads its output: one call."""
    _annotate(plan)
    readers, pinned = _readers(plan), plan.pinned()
    keep = []
    skip = set()
    for k, node in enumerate(plan.nodes):
        if id(node) in skip:
            continue
        nxt = plan.nodes[k + 1] if k + 1 < len(plan.nodes) else None
        if (node.name in ("Conv2d", "ConvTranspose2d", "Linear") and nxt is not None and nxt.name == "ReLU"
                and isinstance(nxt, OpNode) and nxt.ins == node.outs and len(readers.get(node.outs[0], ())) == 1
                and node.outs[0] not in pinned and node.outs[0] not in plan.views.values()
                and _kernel(node, "relu") is not None):
            node.outs, node.fused = nxt.outs, node.fused + ("relu",)
            node.relu = True
            skip.add(id(nxt))
            plan.fusions[f"{node.name.lower()}+relu"] = plan.fusions.get(f"{node.name.lower()}+relu", 0) + 1
        keep.append(node)
    plan.nodes = keep
    for node in keep:
        if getattr(node, "relu", False):
            plan.calls[id(node)] = kernel_call(node, _kernel(node, "relu"), relu=True)


def plan_memory(plan) -> None:
    """Give the outputs of ``out=``-capable kernel calls buffers from a pool (see the module docstring)."""
    _annotate(plan)
    life, pinned = plan.lifetimes(), plan.pinned()
    base_of_views = set(plan.views.values())
    pinned |= {plan.views[v] for v in list(pinned) if v in plan.views}  # a kept view keeps its base
    candidates = {}
    for node in plan.nodes:
        kernel = _kernel(node, "out")
        if kernel is None or len(node.outs) != 1 or node.in_place:
            continue
        (s,) = node.outs
        if s in pinned or s in node.ins:
            continue
        candidates[s] = (node, kernel)
    buffers: list = []  # [nbytes, last use, xp]
    assigned = {}
    for s in sorted(candidates, key=lambda s: life[s][0]):
        first, last = life[s]
        need = plan.nbytes(s)
        xp = plan.meta[s][2]
        free = [b for b, (_, busy_until, bxp) in enumerate(buffers) if busy_until < first and bxp is xp]
        fits = [b for b in free if buffers[b][0] >= need]
        if fits:
            b = min(fits, key=lambda b: buffers[b][0])
        elif free:
            b = max(free, key=lambda b: buffers[b][0])
            buffers[b][0] = need
        else:
            b = len(buffers)
            buffers.append([need, -1, xp])
        buffers[b][1] = last if s not in base_of_views else max(last, life[s][1])
        assigned[s] = b
    arrays = [xp.empty(max(n, 1), dtype=np.uint8) for n, _, xp in buffers]
    plan.buffers = [int(n) for n, _, _ in buffers]
    plan.planned = {}
    for s, b in assigned.items():
        shape, dtype, _ = plan.meta[s]
        view = arrays[b][:plan.nbytes(s)].view(dtype).reshape(shape)
        plan.planned[s] = view
        node, kernel = candidates[s]
        if getattr(node, "relu", False):
            kernel = _kernel(node, "relu")
        plan.calls[id(node)] = kernel_call(node, kernel, relu=getattr(node, "relu", False), out=view)
    plan.planned_buffer = {s: b for s, b in assigned.items()}


def flat_adam(plan) -> None:
    """One ``adam_step_flat`` call for the optimizer node (CPU, plain Adam; else the node is left as it is)."""
    from minivae.kernels import _cpu_adam
    from minivae.optim import Adam

    for node in plan.nodes:
        if not isinstance(node, StepNode) or type(node.optimizer) is not Adam:
            continue
        opt = node.optimizer
        d = opt.defaults
        if d.get("amsgrad") or d.get("maximize") or d.get("decoupled_weight_decay") or d.get("weight_decay"):
            continue
        grads = {id(n.leaf): n for n in plan.nodes if isinstance(n, GradNode)}
        params = opt.params
        if not all(type(p.data) is np.ndarray and id(p) in grads and not grads[id(p)].accumulate
                   and opt.state[i] and _cpu_adam.fits(p.data, p.data, opt.state[i]["m"], opt.state[i]["v"])
                   for i, p in enumerate(params)) or len({p.dtype for p in params}) != 1:
            continue
        flat = _FlatState(params, opt.state)
        for i, p in enumerate(params):
            plan.calls[id(grads[id(p)])] = _grad_into(grads[id(p)], flat.grad_views[i])
        plan.calls[id(node)] = _flat_step(opt, flat)
        node.fused = ("adam_step_flat",)
        plan.fusions["adam over all parameters"] = 1


class _FlatState:
    """Parameters, gradients and Adam moments in four flat buffers; ``data`` and the state rebound to views."""

    def __init__(self, params, states):
        sizes = [p.numel() for p in params]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        dtype = params[0].dtype
        self.param, self.grad = np.empty(offsets[-1], dtype), np.zeros(offsets[-1], dtype)
        self.m, self.v = np.empty(offsets[-1], dtype), np.empty(offsets[-1], dtype)
        self.segments = np.stack([offsets[:-1], offsets[1:]], axis=1)
        self.params, self.states = params, states
        self.grad_views = []
        for i, p in enumerate(params):
            lo, hi = offsets[i], offsets[i + 1]
            for buf, src in ((self.param, p.data), (self.m, states[i]["m"]), (self.v, states[i]["v"])):
                buf[lo:hi] = src.reshape(-1)
            p.data = self.param[lo:hi].reshape(p.shape)
            states[i]["m"] = self.m[lo:hi].reshape(p.shape)
            states[i]["v"] = self.v[lo:hi].reshape(p.shape)
            self.grad_views.append(self.grad[lo:hi].reshape(p.shape))
        self.views = [(p.data, st["m"], st["v"]) for p, st in zip(params, states)]

    def intact(self) -> bool:
        """Whether every parameter's data and moments are still these buffers' views (nothing replaced them)."""
        return all(p.data is d and st.get("m") is m and st.get("v") is v
                   for p, st, (d, m, v) in zip(self.params, self.states, self.views))


def _grad_into(node, view):
    leaf, (g,), (o,) = node.leaf, node.ins, node.outs

    def run(buf):
        np.copyto(view, buf[g])
        leaf.grad = Tensor._make(view)
        buf[o] = view
    return run


def _flat_step(opt, flat: _FlatState):
    from minivae.kernels._cpu_adam import adam_step_flat

    def run(buf):
        if not flat.intact():  # a load_state_dict or .to() replaced arrays: the optimizer's own loop
            return opt._step()
        opt.step_count += 1
        steps = []
        for st in opt.state:
            st["step"] += 1
            steps.append(st["step"])
        d = opt.defaults
        adam_step_flat(flat.param, flat.grad, flat.m, flat.v, flat.segments, d["lr"], d["betas"][0], d["betas"][1],
                       d["eps"], steps)
    return run
