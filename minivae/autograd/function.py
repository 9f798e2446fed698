"""``Function``: one differentiable operation on arrays, and the reverse-mode backward pass.

A Function sees arrays, never Tensors. ``forward`` computes outputs from input arrays and saves what
``backward`` needs; ``backward`` maps the gradients of the outputs to the gradients of the inputs (a
vector-Jacobian product, VJP). :meth:`Function.apply` wraps the arrays in Tensors and links the graph.
"""
from __future__ import annotations

import weakref

from minivae.autograd import trace as _trace
from minivae.autograd.grad_mode import is_grad_enabled
from minivae.backend import check_same_device, get_array_module


class Function:
    """Base class of differentiable operations.

    Subclasses implement ``forward(self, *arrays) -> array | tuple[array, ...]`` and
    ``backward(self, *grad_outputs) -> array | None | tuple`` (one entry per input, None where an input
    needs no gradient; ``self.needs_input_grad[i]`` tells which do). Non-array parameters (stride, axis,
    ...) are passed to the constructor through ``apply(..., name=value)``.
    """

    def __init__(self, **params):
        self.__dict__.update(params)
        self.saved: tuple = ()
        self.inputs: tuple = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self._outputs: tuple = ()  # weak references to the output Tensors
        self.output_meta: tuple = ()  # (shape, dtype, array module) of each output
        self.freed = False

    @property
    def name(self) -> str:
        return type(self).__name__

    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays

    def forward(self, *arrays):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grad_outputs):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors (or arrays / Python scalars) and link the result into the graph.

        Returns a Tensor, or a tuple of Tensors for ops with several outputs.
        Raises:
            DeviceMismatchError: inputs live on different devices.
        """
        from minivae.autograd.tensor import Tensor, as_tensor

        fn = cls(**params)
        tensors = tuple(as_tensor(x) for x in inputs)
        arrays = tuple(t.data for t in tensors)
        check_same_device(*arrays, op=fn.name)
        outputs = fn.forward(*arrays)
        single = not isinstance(outputs, tuple)
        if single:
            outputs = (outputs,)
        needs = tuple(t.requires_grad for t in tensors)
        record = is_grad_enabled() and any(needs)
        results = tuple(Tensor(y, requires_grad=record) for y in outputs)
        if record:
            fn.inputs = tensors
            fn.needs_input_grad = needs
            fn.output_meta = tuple((y.shape, y.dtype, get_array_module(y)) for y in outputs)
            fn._outputs = tuple(weakref.ref(r) for r in results)
            for i, r in enumerate(results):
                r._ctx, r._output_index = fn, i
        else:
            fn.saved = ()
        return results[0] if single else results


def _topological_order(root_fn: Function) -> list[Function]:
    """Functions reachable from ``root_fn``, each after every Function that consumes its outputs."""
    order, visited = [], set()
    stack = [(root_fn, False)]
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


def _accumulate(store: dict, key, grad):
    store[key] = grad if key not in store else store[key] + grad


def backward(tensor, grad, retain_graph: bool = False) -> None:
    """Reverse-mode backward from ``tensor`` with output gradient ``grad`` (an array of its shape).

    Gradients of leaf tensors that require grad are accumulated into ``.grad``; tensors used several
    times get the sum of their gradients. The graph's saved arrays are freed unless ``retain_graph``.
    """
    if tensor._ctx is None:  # a leaf: its gradient is the seed itself
        tensor._accumulate_grad(grad)
        return
    pending: dict = {(id(tensor._ctx), tensor._output_index): grad}
    leaves: dict = {}  # id(leaf) -> (leaf, summed gradient): hooks then see the total, once
    for fn in _topological_order(tensor._ctx):
        if fn.freed:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (through {fn.name}): its saved arrays "
                "were freed by the first backward. Pass retain_graph=True to the first backward() call."
            )
        grads_out = []
        for i, (shape, dtype, xp) in enumerate(fn.output_meta):
            g = pending.pop((id(fn), i), None)
            out = fn._outputs[i]()
            if g is not None and out is not None:
                g = out._apply_hooks(g)
            if g is None:
                g = xp.zeros(shape, dtype=dtype)
            grads_out.append(g)
        tracer = _trace.active()  # a `with minivae.autograd.trace():` block records each VJP
        grads_in = fn.backward(*grads_out) if tracer is None else tracer.run(fn, grads_out)
        if not isinstance(grads_in, tuple):
            grads_in = (grads_in,)
        if len(grads_in) != len(fn.inputs):
            raise RuntimeError(f"{fn.name}.backward returned {len(grads_in)} gradients for {len(fn.inputs)} inputs")
        for t, g, needed in zip(fn.inputs, grads_in, fn.needs_input_grad):
            if not needed or g is None:
                continue
            if g.shape != t.shape:
                raise RuntimeError(f"{fn.name}.backward returned a gradient of shape {g.shape} "
                                   f"for an input of shape {t.shape}")
            if g.dtype != t.dtype:
                g = g.astype(t.dtype)
            if t._ctx is None:
                previous = leaves.get(id(t))
                leaves[id(t)] = (t, g if previous is None else previous[1] + g)
            else:
                _accumulate(pending, (id(t._ctx), t._output_index), g)
        if not retain_graph:
            fn.saved = ()
            fn.freed = True
    for leaf, g in leaves.values():
        leaf._accumulate_grad(g)
