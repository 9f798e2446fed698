"""The pieces every derivative check is made of: float64 inputs, Jacobians three ways (reverse mode row by row,
forward mode column by column, central differences column by column) and projections along directions.

Used by :mod:`minivae.autograd.gradcheck` (``gradcheck``, ``gradgradcheck``) and, through it, by
:mod:`minivae.opcheck` and ``minivae gradcheck``.
"""
from __future__ import annotations

import numpy as np

from minivae.autograd import forward_ad
from minivae.autograd.tensor import Tensor
from minivae.backend import get_array_module


def prepare(inputs):
    """float64 copies of the inputs; which of them are checked (floating and requiring grad, or arrays)."""
    tensors, checked = [], []
    for x in inputs:
        data = x.data if isinstance(x, Tensor) else x
        wants = x.requires_grad if isinstance(x, Tensor) else True
        data = get_array_module(data).asarray(data)
        if data.dtype.kind == "f":
            tensors.append(Tensor(data.astype(np.float64, copy=True), requires_grad=wants))
            checked.append(wants)
        else:
            tensors.append(Tensor(data))
            checked.append(False)
    if not any(checked):
        raise ValueError("gradcheck: no floating-point input requires grad, nothing to check")
    return tensors, checked


def outputs(fn, tensors) -> tuple:
    """``fn(*tensors)`` as a tuple of floating Tensors (non-Tensor outputs dropped)."""
    out = fn(*tensors)
    out = out if isinstance(out, (tuple, list)) else (out,)
    out = tuple(o for o in out if isinstance(o, Tensor))
    if not out:
        raise TypeError("gradcheck: fn must return a Tensor or a tuple of Tensors")
    for o in out:
        if o.dtype.kind != "f":
            raise TypeError(f"gradcheck: outputs must be floating point, got {o.dtype}")
    return out


def flat_outputs(fn, tensors):
    """All outputs of ``fn`` raveled into one float64 vector. Grad mode stays as it is: ``fn`` may itself
    differentiate (a gradient function under gradgradcheck), which ``no_grad`` would forbid."""
    outs = outputs(fn, tensors)
    xp = get_array_module(outs[0].data)
    return xp.concatenate([o.data.astype(np.float64).ravel() for o in outs])


def split_like(flat, outs) -> list:
    """A flat vector over all outputs cut into arrays of the outputs' shapes."""
    parts, start = [], 0
    for o in outs:
        parts.append(flat[start:start + o.numel()].reshape(o.shape))
        start += o.numel()
    return parts


def vjp(fn, tensors, checked, seeds) -> list:
    """Gradients (arrays) of ``sum_k <seed_k, out_k>`` w.r.t. the checked inputs: one forward + backward."""
    from minivae.autograd.engine import grad

    xs = [t for t, c in zip(tensors, checked) if c]
    outs = outputs(fn, tensors)
    live = [(o, s) for o, s in zip(outs, seeds) if o.requires_grad]
    xp = get_array_module(tensors[0].data)
    if not live:
        return [xp.zeros(x.shape) for x in xs]
    grads = grad([o for o, _ in live], xs, grad_outputs=[Tensor(s) for _, s in live], allow_unused=True)
    return [xp.zeros(x.shape) if g is None else g.data for x, g in zip(xs, grads)]


def jvp(fn, tensors, checked, directions) -> object:
    """``J u`` (a flat float64 vector over all outputs) by forward mode, ``u`` = one direction per checked
    input (arrays of the inputs' shapes)."""
    with forward_ad.dual_level():
        duals, k = [], 0
        for t, c in zip(tensors, checked):
            if c:
                duals.append(forward_ad.make_dual(Tensor(t.data), Tensor(directions[k])))
                k += 1
            else:
                duals.append(t)
        outs = outputs(fn, duals)
        xp = get_array_module(outs[0].data)
        parts = []
        for o in outs:
            tangent = forward_ad.unpack_dual(o).tangent
            parts.append(xp.zeros(o.numel()) if tangent is None else tangent.data.astype(np.float64).ravel())
    return xp.concatenate(parts)


def central_difference(fn, tensors, i, direction, eps):
    """``(f(x_i + eps d) - f(x_i - eps d)) / (2 eps)`` (flat, all outputs) with the other inputs held fixed;
    ``direction`` is an array of input i's shape, or an int: the flat index of one element."""
    x = tensors[i].data
    orig = x.copy()
    step = direction if not isinstance(direction, (int, np.integer)) else None
    if step is None:
        flat = x.reshape(-1)
        flat[direction] += eps
        plus = flat_outputs(fn, tensors)
        flat[direction] = orig.reshape(-1)[direction] - eps
        minus = flat_outputs(fn, tensors)
    else:
        x += eps * step
        plus = flat_outputs(fn, tensors)
        x[...] = orig - eps * step
        minus = flat_outputs(fn, tensors)
    x[...] = orig
    return (plus - minus) / (2 * eps)


def one_hot_rows(outs, xp):
    """For each output element r, the seeds (one array per output) of the one-hot vector e_r."""
    n = sum(o.numel() for o in outs)
    for r in range(n):
        onehot = xp.zeros(n)
        onehot[r] = 1.0
        yield r, split_like(onehot, outs)


def host(a):
    """A NumPy copy of a NumPy or CuPy array."""
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)
