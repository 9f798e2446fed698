"""The reverse-mode engine: ``backward`` (accumulate into ``.grad``) and ``grad`` (return the gradients).

Both walk the graph from the outputs in topological order (every node after all the nodes that consume its
outputs) and call each node's ``Function.backward`` on Tensors. With ``create_graph=False`` that runs under
``no_grad``: nothing is recorded and a step costs what the VJPs cost. With ``create_graph=True`` the VJPs,
written with minivae's own differentiable ops, record a graph of their own, which can be differentiated
again, to any order (Chainer's ``FunctionNode``, PyTorch's ``create_graph``).

Each node's backward runs under the kernel selection its forward ran under (``kernels.bound``), in
anomaly mode under the checks of :mod:`minivae.autograd.anomaly`.
"""
from __future__ import annotations

from minivae import kernels
from minivae.autograd import anomaly, grad_mode
from minivae.autograd import trace as _trace
from minivae.autograd.tensor import Tensor, _as_array
from minivae.backend import get_array_module

__all__ = ["backward", "grad"]


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _seeds(outputs, grad_outputs, caller: str) -> list:
    """One gradient Tensor per output: ones for a one-element output given None, else the given one."""
    grad_outputs = _as_tuple(grad_outputs) or (None,) * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"{caller}: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    seeds = []
    for k, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not isinstance(out, Tensor):
            raise TypeError(f"{caller}: output {k} is a {type(out).__name__}, not a Tensor")
        if not out.requires_grad:
            raise RuntimeError(f"{caller}: element {k} of the outputs does not require grad and has no grad_fn: "
                               "create the inputs with requires_grad=True (and not under no_grad)")
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(f"{caller}: grad can be implicitly created only for scalar outputs; output {k} "
                                   f"has shape {out.shape}: pass a gradient of that shape")
            g = Tensor._make(get_array_module(out.data).ones(out.shape, dtype=out.dtype))
        else:
            if not isinstance(g, Tensor):
                g = Tensor._make(_as_array(g))
            if g.shape != out.shape:
                what = "backward(gradient): gradient" if caller == "backward" else f"{caller}: grad for output {k}"
                raise ValueError(f"{what} has shape {g.shape}, expected {out.shape}")
            if g.dtype != out.dtype:
                g = g.astype(out.dtype)
        seeds.append(g)
    return seeds


def _topological_order(root_fns) -> list:
    """Functions reachable from ``root_fns``, each after every Function that consumes its outputs."""
    order, visited = [], set()
    stack = [(fn, False) for fn in root_fns]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        visited.add(id(fn))
        stack.append((fn, True))
        for t in fn.inputs:
            if t._ctx is not None and id(t._ctx) not in visited:
                stack.append((t._ctx, False))
    order.reverse()
    return order


def _prune(order, leaf_targets, node_targets) -> tuple[list, dict]:
    """The nodes on a path to a target, and for those whose backward must run (an input leads to a target) the
    ``needs_input_grad`` that asks only for those inputs (PyTorch prunes the same way: ``grad(loss, z)`` does
    not compute weight gradients). Nodes kept only because one of their outputs is a target are not run."""
    target_fns = {key[0] for key in node_targets}
    leads, runs = set(), {}
    for fn in reversed(order):  # producers first
        mask = tuple(need and (id(t) in leaf_targets if t._ctx is None else id(t._ctx) in leads)
                     for t, need in zip(fn.inputs, fn.needs_input_grad))
        if any(mask):
            runs[id(fn)] = mask
            leads.add(id(fn))
        elif id(fn) in target_fns:
            leads.add(id(fn))
    return [fn for fn in order if id(fn) in leads], runs


def _add(a, b):
    return b if a is None else a + b


def _targets(inputs, caller):
    """Where the gradients of ``inputs`` will be found: leaves by id, non-leaves by (node id, output index)."""
    leaf_targets: dict = {}
    node_targets: dict = {}
    for pos, t in enumerate(inputs or ()):
        if not isinstance(t, Tensor):
            raise TypeError(f"{caller}: input {pos} is a {type(t).__name__}, not a Tensor")
        if t._ctx is None:
            leaf_targets.setdefault(id(t), []).append(pos)
        else:
            node_targets.setdefault((id(t._ctx), t._output_index), []).append(pos)
    return leaf_targets, node_targets


def _output_grads(fn, pending, create_graph, node_targets, captured):
    """The gradients of ``fn``'s outputs (summed over their consumers, through the outputs' hooks; zeros for an
    output nobody used), or None when no gradient reaches ``fn`` at all."""
    grads = [pending.pop((id(fn), i), None) for i in range(len(fn.output_meta))]
    if all(g is None for g in grads):
        return None
    if fn.freed:
        raise RuntimeError(
            f"Trying to backward through the graph a second time (through {fn.name}): its saved tensors "
            "were freed by the first backward. Pass retain_graph=True to the first backward() call.")
    for i, g in enumerate(grads):
        out = fn._outputs[i]()
        if g is not None and out is not None and (out._hooks or out._retain_grad):
            g = grads[i] = out._apply_hooks(g, create_graph)
        for pos in node_targets.get((id(fn), i), ()) if node_targets else ():
            captured[pos] = g
        if g is None:
            shape, dtype, xp = fn.output_meta[i]
            grads[i] = Tensor._make(xp.zeros(shape, dtype=dtype))
    return grads


def _call_vjp(fn, grads_out, needs, tracer, checking) -> tuple:
    """``fn.backward(*grads_out)`` under the kernels its forward used, asking only for the inputs in ``needs``."""
    if checking:
        anomaly.check_saved(fn)
    saved_needs, fn.needs_input_grad = fn.needs_input_grad, needs
    try:
        with kernels.bound(fn.kernel_selection):
            grads_in = fn.backward(*grads_out) if tracer is None else tracer.run(fn, grads_out)
    finally:
        fn.needs_input_grad = saved_needs
    if not isinstance(grads_in, tuple):
        grads_in = (grads_in,)
    if len(grads_in) != len(fn.inputs):
        raise RuntimeError(f"{fn.name}.backward returned {len(grads_in)} gradients for {len(fn.inputs)} inputs")
    if checking:
        anomaly.check_grads(fn, grads_in)
    return grads_in


def _checked(fn, t, g) -> Tensor:
    """A VJP's gradient for input ``t``, as a Tensor of ``t``'s shape and dtype."""
    if not isinstance(g, Tensor):  # a VJP written on arrays: first order only
        g = Tensor._make(_as_array(g))
    if g.data.shape != t.data.shape:
        raise RuntimeError(f"{fn.name}.backward returned a gradient of shape {g.shape} for an input of shape {t.shape}")
    return g if g.data.dtype == t.data.dtype else g.astype(t.dtype)


def _run(outputs, seeds, retain_graph, create_graph, inputs=None, allow_unused=False, caller="backward"):
    """The walk shared by :func:`backward` (``inputs`` None: accumulate into the leaves' ``.grad``) and
    :func:`grad` (return the gradients of ``inputs``)."""
    if create_graph and not grad_mode.is_grad_enabled():
        raise RuntimeError(f"{caller}: create_graph=True under no_grad: the backward pass can't be recorded; "
                           "leave the no_grad block (or wrap the call in enable_grad())")
    retain_graph = create_graph if retain_graph is None else retain_graph
    leaf_targets, node_targets = _targets(inputs, caller)
    captured = [None] * len(inputs or ())
    leaves: dict = {}  # id(leaf) -> [leaf, summed gradient]: hooks then see the total, once
    pending: dict = {}  # (id(node), output index) -> summed gradient of that output so far
    for out, g in zip(outputs, seeds):
        if out._ctx is None:
            entry = leaves.setdefault(id(out), [out, None])
            entry[1] = _add(entry[1], g)
        else:
            key = (id(out._ctx), out._output_index)
            pending[key] = _add(pending.get(key), g)
    order = _topological_order([o._ctx for o in outputs if o._ctx is not None])
    runs = None  # grad(): the nodes whose VJP must run, each with the inputs it is asked for
    if inputs is not None:
        order, runs = _prune(order, leaf_targets, node_targets)
    tracer, checking = _trace.active(), anomaly.is_enabled()
    with (grad_mode.enable_grad() if create_graph else grad_mode.no_grad()):
        for fn in order:
            grads_out = _output_grads(fn, pending, create_graph, node_targets, captured)
            if grads_out is None or (runs is not None and id(fn) not in runs):
                continue  # nothing flows through this node, or only its outputs were asked for
            needs = fn.needs_input_grad if runs is None else runs[id(fn)]
            for t, g, needed in zip(fn.inputs, _call_vjp(fn, grads_out, needs, tracer, checking), needs):
                if not needed or g is None:
                    continue
                g = _checked(fn, t, g)
                if t._ctx is not None:
                    key = (id(t._ctx), t._output_index)
                    pending[key] = _add(pending.get(key), g)
                elif inputs is None or id(t) in leaf_targets:
                    entry = leaves.setdefault(id(t), [t, None])
                    entry[1] = _add(entry[1], g)
            if not retain_graph:
                fn.release()
        for leaf, g in leaves.values():
            if leaf._hooks:
                g = leaf._apply_hooks(g, create_graph)
            if inputs is None:
                if leaf.requires_grad:
                    leaf._store_grad(g, create_graph)
            else:
                for pos in leaf_targets.get(id(leaf), ()):
                    captured[pos] = g
    return None if inputs is None else _results(inputs, captured, allow_unused, create_graph, caller)


def _results(inputs, captured, allow_unused, create_graph, caller) -> tuple:
    out = []
    for pos, (t, g) in enumerate(zip(inputs, captured)):
        if g is None and not allow_unused:
            raise RuntimeError(f"{caller}: input {pos} (shape {t.shape}) was not used to compute the outputs, so "
                               "it has no gradient; pass allow_unused=True to get None for it")
        out.append(g if g is None or create_graph or (not g.requires_grad and g._ctx is None)
                   else Tensor._make(g.data))
    return tuple(out)


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None, create_graph: bool = False,
             inputs=None) -> None:
    """Accumulate the gradients of ``tensors`` (weighted by ``grad_tensors``) into ``.grad``
    (``torch.autograd.backward``): of every leaf that requires grad, or only of ``inputs`` when given (leaves or
    intermediate tensors). See :meth:`Tensor.backward`, which calls this with one tensor.

    Raises RuntimeError / ValueError as that method does.
    """
    outputs = _as_tuple(tensors)
    seeds = _seeds(outputs, grad_tensors, "backward")
    if inputs is None:
        _run(outputs, seeds, retain_graph, create_graph)
        return
    ins = _as_tuple(inputs)
    if not ins:
        raise RuntimeError("backward: inputs= was given but is empty; pass the tensors whose .grad to fill")
    grads = _run(outputs, seeds, retain_graph, create_graph, inputs=ins, allow_unused=True, caller="backward")
    for t, g in zip(ins, grads):
        if g is not None:
            t._store_grad(g, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple:
    """Gradients of ``outputs`` with respect to ``inputs``, returned, not accumulated (``torch.autograd.grad``).

    Args:
        outputs: a Tensor or a sequence of Tensors (each requiring grad).
        inputs: a Tensor or a sequence of Tensors (leaves or intermediate results) in the graph of ``outputs``.
        grad_outputs: the vector of the vector-Jacobian product, one per output (same shapes); may be None
            for one-element outputs (then 1).
        retain_graph: keep the graph for another backward (default: ``create_graph``).
        create_graph: record the backward pass so that the result can be differentiated again.
        allow_unused: return None for an input the outputs do not depend on, instead of raising.
    Returns:
        a tuple of Tensors, one per input, of the inputs' shapes and dtypes (None for unused inputs when
        ``allow_unused``). ``.grad`` of every tensor is left untouched.
    Raises:
        RuntimeError: an output does not require grad; an input is not in the graph (``allow_unused=False``);
            a non-scalar output without ``grad_outputs``; a freed graph; ``create_graph=True`` under ``no_grad``.
        ValueError: ``grad_outputs`` of the wrong number or shape. TypeError: a non-Tensor output or input.
    """
    outs = _as_tuple(outputs)
    ins = _as_tuple(inputs)
    if not ins:
        raise ValueError("grad: inputs is empty; pass the tensors to differentiate with respect to")
    seeds = _seeds(outs, grad_outputs, "grad")
    return _run(outs, seeds, retain_graph, create_graph, inputs=ins, allow_unused=allow_unused, caller="grad")
