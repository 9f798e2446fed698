"""Finite-difference gradient checks in float64 with central differences.

Two modes, as PyTorch's ``torch.autograd.gradcheck``:

* full (default): the whole Jacobian of every output w.r.t. every checked input, numerically (one pair of
  forward calls per input element) and analytically (one backward per output element); for small inputs.
* fast (``fast_mode=True``): along random directions, as PyTorch's fast mode and Chainer's
  ``check_backward``: with random unit vectors ``u`` (inputs) and ``v`` (outputs), compare
  ``v . J u`` from backward with ``(v . f(x + eps u) - v . f(x - eps u)) / (2 eps)``. On failure it falls
  back to an element-by-element comparison to name the worst element.

Both also check that backward is reentrant (two backward passes give bitwise-equal gradients).
"""
from __future__ import annotations

import numpy as np

from minivae.autograd.grad_mode import no_grad
from minivae.autograd.tensor import Tensor
from minivae.backend import get_array_module


class GradcheckError(AssertionError):
    """A gradient check failed; the message names the input, the worst element and both values."""


def _prepare(inputs):
    """float64 copies of the inputs; which of them are checked (floating and requiring grad)."""
    tensors, checked = [], []
    for x in inputs:
        data = x.data if isinstance(x, Tensor) else x
        wants = x.requires_grad if isinstance(x, Tensor) else True
        xp = get_array_module(data)
        data = xp.asarray(data)
        if data.dtype.kind == "f":
            data = data.astype(np.float64, copy=True)
            tensors.append(Tensor(data, requires_grad=wants))
            checked.append(wants)
        else:
            tensors.append(Tensor(data))
            checked.append(False)
    if not any(checked):
        raise ValueError("gradcheck: no floating-point input requires grad, nothing to check")
    return tensors, checked


def _outputs(fn, tensors):
    out = fn(*tensors)
    out = out if isinstance(out, (tuple, list)) else (out,)
    out = tuple(o for o in out if isinstance(o, Tensor))
    if not out:
        raise TypeError("gradcheck: fn must return a Tensor or a tuple of Tensors")
    for o in out:
        if o.dtype.kind != "f":
            raise TypeError(f"gradcheck: outputs must be floating point, got {o.dtype}")
    return out


def _flat_outputs(fn, tensors):
    with no_grad():
        outs = _outputs(fn, tensors)
    xp = get_array_module(outs[0].data)
    return xp.concatenate([o.data.astype(np.float64).ravel() for o in outs])


def _vjp(fn, tensors, checked, seeds):
    """Gradients of ``sum_k <seed_k, out_k>`` w.r.t. the checked inputs (one fresh forward + backward)."""
    for t in tensors:
        t.grad = None
    outs = _outputs(fn, tensors)
    total = None
    for o, s in zip(outs, seeds):
        term = (o * Tensor(s)).sum()
        total = term if total is None else total + term
    if total.requires_grad:
        total.backward()
    xp = get_array_module(tensors[0].data)
    return [(t.grad.data if t.grad is not None else xp.zeros(t.shape)) for t, c in zip(tensors, checked) if c]


def _numeric_along(fn, tensors, i, direction, proj, eps):
    """``(proj . f(x_i + eps d) - proj . f(x_i - eps d)) / (2 eps)`` with the other inputs fixed."""
    x = tensors[i].data
    orig = x.copy()
    x += eps * direction
    plus = _flat_outputs(fn, tensors)
    x[...] = orig - eps * direction
    minus = _flat_outputs(fn, tensors)
    x[...] = orig
    return float(((plus - minus) * proj).sum() / (2 * eps))


def _fail(message, raise_exception):
    if raise_exception:
        raise GradcheckError(message)
    return False


def _compare(name, index, analytic, numeric, atol, rtol):
    """Return a failure message for the worst element of ``analytic`` vs ``numeric``, or None."""
    analytic, numeric = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if not np.isfinite(analytic).all():
        excess = np.where(np.isfinite(analytic), excess, np.inf)
    if analytic.size == 0 or excess.max() <= 0:
        return None
    flat = int(np.argmax(excess))
    where = np.unravel_index(flat, analytic.shape)
    return (f"gradcheck failed for input {index} ({name}): worst element {index_text(where)} "
            f"analytic={analytic[where]:.8g} numeric={numeric[where]:.8g} "
            f"(|diff|={abs(analytic[where] - numeric[where]):.3g}, atol={atol}, rtol={rtol})")


def index_text(where) -> str:
    return "[" + ", ".join(str(int(i)) for i in where) + "]"


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, fast_mode: bool = False,
              n_directions: int = 2, seed: int = 0, raise_exception: bool = True, names=None) -> bool:
    """Check the backward of ``fn`` against central finite differences, in float64.

    Args:
        fn: callable taking Tensors and returning a Tensor or a tuple of Tensors.
        inputs: Tensors or arrays. Floating ones are copied to float64; Tensors with
            ``requires_grad=False`` (and all non-floating inputs) are held fixed; arrays are checked.
        eps: finite-difference step. atol, rtol: pass if ``|analytic - numeric| <= atol + rtol * |numeric|``.
        fast_mode: compare along ``n_directions`` random projections instead of the full Jacobian.
        names: optional names of the inputs for the error message.
    Returns:
        True if the check passes (False on failure when ``raise_exception=False``).
    Raises:
        GradcheckError (an AssertionError) naming the input and the worst element (index, analytic,
        numeric); or, if backward is not reentrant, saying so.
    """
    tensors, checked = _prepare(inputs)
    names = list(names) if names is not None else [f"input {i}" for i in range(len(tensors))]
    rng = np.random.default_rng(seed)
    with no_grad():
        outs = _outputs(fn, tensors)
    xp = get_array_module(outs[0].data)
    shapes = [o.shape for o in outs]
    sizes = [int(np.prod(s)) for s in shapes]

    def unflatten(flat):
        parts, start = [], 0
        for s, n in zip(shapes, sizes):
            parts.append(flat[start:start + n].reshape(s))
            start += n
        return parts

    # reentrancy: the same backward twice must give bitwise-equal results
    proj = xp.asarray(rng.standard_normal(sum(sizes)))
    g1 = _vjp(fn, tensors, checked, unflatten(proj))
    g2 = _vjp(fn, tensors, checked, unflatten(proj))
    for k, (a, b) in enumerate(zip(g1, g2)):
        if not bool((a == b).all()):
            return _fail(f"gradcheck: backward is not reentrant: two backward passes gave different "
                         f"gradients for checked input {k}", raise_exception)

    checked_idx = [i for i, c in enumerate(checked) if c]
    if fast_mode:
        grads = g1
        for _ in range(n_directions):
            total_analytic, total_numeric = 0.0, 0.0
            for k, i in enumerate(checked_idx):
                u = xp.asarray(rng.standard_normal(tensors[i].shape))
                u /= max(float(xp.sqrt((u * u).sum())), 1e-12)
                total_analytic = float((grads[k] * u).sum())
                total_numeric = _numeric_along(fn, tensors, i, u, proj, eps)
                ok = abs(total_analytic - total_numeric) <= atol + rtol * abs(total_numeric)
                if not ok:  # find the worst element of this input
                    numeric = _numeric_gradient(fn, tensors, i, proj, eps, xp)
                    msg = _compare(names[i], i, _host(grads[k]), numeric, atol, rtol)
                    return _fail(msg or (f"gradcheck failed for input {i} ({names[i]}) along a random direction: "
                                         f"analytic={total_analytic:.8g} numeric={total_numeric:.8g}"),
                                 raise_exception)
        return True

    # full Jacobian: rows by backward (one per output element), columns by finite differences
    for (analytic, numeric), i in zip(jacobians(fn, tensors, checked, eps), checked_idx):
        shape = (analytic.shape[0],) + tensors[i].shape
        msg = _compare(names[i], i, analytic.reshape(shape), numeric.reshape(shape), atol, rtol)
        if msg:
            return _fail(msg.replace("worst element [", "worst element [output ", 1), raise_exception)
    return True


def _central_difference(fn, tensors, i, c, eps):
    """``(f(x_i + eps e_c) - f(x_i - eps e_c)) / (2 eps)``: all outputs flattened, element c of input i moved."""
    flat = tensors[i].data.reshape(-1)
    orig = float(flat[c])
    flat[c] = orig + eps
    plus = _flat_outputs(fn, tensors)
    flat[c] = orig - eps
    minus = _flat_outputs(fn, tensors)
    flat[c] = orig
    return (plus - minus) / (2 * eps)


def jacobians(fn, tensors, checked, eps: float = 1e-6) -> list:
    """Analytic and numeric Jacobians ``(n_outputs, n_elements)`` (host float64) of each checked input.

    Row r of every analytic Jacobian comes from one backward with a one-hot output gradient; column c of a
    numeric one from central differences on element c. ``tensors`` are float64 Tensors (see ``_prepare``).
    """
    with no_grad():
        outs = _outputs(fn, tensors)
    xp = get_array_module(outs[0].data)
    shapes = [o.shape for o in outs]
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    n_out = sum(sizes)
    idx = [i for i, c in enumerate(checked) if c]
    analytic = [np.empty((n_out, tensors[i].size)) for i in idx]
    for r in range(n_out):
        onehot = xp.zeros(n_out)
        onehot[r] = 1.0
        seeds, start = [], 0
        for shape, n in zip(shapes, sizes):
            seeds.append(onehot[start:start + n].reshape(shape))
            start += n
        for k, g in enumerate(_vjp(fn, tensors, checked, seeds)):
            analytic[k][r] = _host(g).ravel()
    result = []
    for k, i in enumerate(idx):
        numeric = np.empty_like(analytic[k])
        for c in range(tensors[i].size):
            numeric[:, c] = _host(_central_difference(fn, tensors, i, c, eps))
        result.append((analytic[k], numeric))
    return result


def _numeric_gradient(fn, tensors, i, proj, eps, xp):
    """Element-by-element finite-difference gradient of ``proj . f`` w.r.t. input ``i``."""
    x = tensors[i].data
    return np.array([float((_central_difference(fn, tensors, i, c, eps) * proj).sum())
                     for c in range(x.size)]).reshape(x.shape)


def _host(a):
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)
