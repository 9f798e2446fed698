"""Finite-difference derivative checks in float64 with central differences: one measuring routine,
:func:`measure`, behind :func:`gradcheck` (raises on failure), :func:`gradgradcheck` (second derivatives) and
:mod:`minivae.opcheck` (tabulates).

Modes, as PyTorch's ``torch.autograd.gradcheck``:

* full (default): whole Jacobians. Reverse mode row by row (one backward per output element), forward mode
  column by column (one JVP per input element, with ``check_forward_ad``), central differences column by column.
* fast (``fast_mode=True``): along random directions (PyTorch's fast mode, Chainer's ``check_backward``): with
  unit vectors ``u`` over the inputs and ``v`` over the outputs, compare ``v . J u`` from backward (``(J^T v) . u``),
  from forward mode (``v . (J u)``) and from ``(v . f(x + eps u) - v . f(x - eps u)) / (2 eps)``; forward and
  reverse mode must also satisfy the adjoint identity ``<v, J u> = <J^T v, u>``. On failure it falls back to the
  full Jacobian of that input to name the worst element. Fast mode can pass a Jacobian that is wrong where a
  random projection does not look: use full mode for small ops.

Every check first verifies that backward is reentrant (two backward passes give bitwise-equal gradients) and that
the inputs and outputs hold no NaN. Pass rule for every compared number: ``|a - n| <= atol + rtol |n|``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from minivae.autograd import finite_diff as fd
from minivae.autograd.tensor import Tensor
from minivae.backend import get_array_module

__all__ = ["GradcheckError", "CheckReport", "measure", "gradcheck", "gradgradcheck", "index_text"]


class GradcheckError(AssertionError):
    """A derivative check failed; the message names the input, the worst element and both values."""


@dataclass(frozen=True)
class CheckReport:
    """What :func:`measure` found.

    Attributes:
        mode: "full" or "fast".
        max_abs_error: largest ``|analytic - numeric|`` over the compared numbers (nan when the check could not run).
        max_rel_error: largest ``|a - n| / max(|a|, |n|)`` over the numbers whose magnitude exceeds atol.
        passed: every number within ``atol + rtol |numeric|``, backward reentrant, no NaN.
        message: why it failed (input, worst element, both values), "" when it passed.
        worst: ``(input index, element index tuple, analytic, numeric)`` of the worst number, or None.
    """

    mode: str
    max_abs_error: float
    max_rel_error: float
    passed: bool
    message: str = ""
    worst: tuple | None = None


def index_text(where) -> str:
    """``[i, j, ...]``: an element index as gradcheck's messages print it."""
    return "[" + ", ".join(str(int(i)) for i in where) + "]"


class _Tally:
    """Running maxima of the errors and the number that exceeds its tolerance by the most."""

    def __init__(self, atol, rtol, label):
        self.atol, self.rtol, self.label = atol, rtol, label
        self.max_abs = self.max_rel = 0.0
        self.excess, self.message, self.worst = -math.inf, "", None

    def add(self, analytic, numeric, describe, what="analytic"):
        """Compare arrays; ``describe(flat_index) -> (input index, name, where-text, element index)``."""
        a, n = np.asarray(analytic, np.float64).ravel(), np.asarray(numeric, np.float64).ravel()
        if a.size == 0:
            return
        err = np.where(np.isfinite(a) & np.isfinite(n), np.abs(a - n), np.inf)
        self.max_abs = max(self.max_abs, float(err.max()))
        scale = np.maximum(np.abs(a), np.abs(n))
        mask = scale > self.atol
        if mask.any():
            self.max_rel = max(self.max_rel, float((err[mask] / scale[mask]).max()))
        excess = err - (self.atol + self.rtol * np.abs(n))
        k = int(np.argmax(excess))
        if excess[k] > 0 and excess[k] > self.excess:
            self.excess = float(excess[k])
            i, name, where, element = describe(k)
            self.worst = (i, element, float(a[k]), float(n[k]))
            self.message = (f"{self.label} failed for input {i} ({name}): worst element {where} {what}={a[k]:.8g} "
                            f"numeric={n[k]:.8g} (|diff|={err[k]:.3g}, atol={self.atol}, rtol={self.rtol})")

    def report(self, mode):
        return CheckReport(mode, self.max_abs, self.max_rel, not self.message, self.message, self.worst)


def _failed(mode, message) -> CheckReport:
    return CheckReport(mode, math.nan, math.nan, False, message)


def measure(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, fast_mode: bool = False,
            n_directions: int = 2, seed: int = 0, names=None, check_backward: bool = True,
            check_forward_ad: bool = False, label: str = "gradcheck") -> CheckReport:
    """Measure how far the derivatives of ``fn`` are from central finite differences (see the module docstring).

    Args as :func:`gradcheck`; ``label`` starts the failure message. Returns a :class:`CheckReport`.
    Raises ValueError for bad arguments or nothing to check; TypeError for outputs that are not floating Tensors.
    """
    if not eps > 0:
        raise ValueError(f"{label}: eps must be > 0, got {eps}")
    if atol < 0 or rtol < 0:
        raise ValueError(f"{label}: atol and rtol must be >= 0, got atol={atol}, rtol={rtol}")
    for k, x in enumerate(inputs):
        dtype = getattr(x, "dtype", None)
        if dtype is not None and np.dtype(dtype).kind == "f" and np.dtype(dtype) != np.float64:
            warnings.warn(f"{label}: input {k} is {dtype}, not float64; it is checked in a float64 copy, but the "
                          "op's float32 path is not what is measured", UserWarning, stacklevel=3)
    mode = "fast" if fast_mode else "full"
    tensors, checked = fd.prepare(inputs)
    names = list(names) if names is not None else [f"input {i}" for i in range(len(tensors))]
    outs = fd.outputs(fn, tensors)
    xp = get_array_module(outs[0].data)
    if any(bool(xp.isnan(t.data).any()) for t in tensors if t.dtype.kind == "f") or \
            any(bool(xp.isnan(o.data).any()) for o in outs):
        return _failed(mode, f"{label}: NaN in the inputs or outputs: derivatives can't be compared there")
    rng = np.random.default_rng(seed)
    idx = [i for i, c in enumerate(checked) if c]
    proj = xp.asarray(rng.standard_normal(sum(o.numel() for o in outs)))
    grads = None
    if check_backward:
        grads = fd.vjp(fn, tensors, checked, fd.split_like(proj, outs))
        again = fd.vjp(fn, tensors, checked, fd.split_like(proj, outs))
        for k, (a, b) in enumerate(zip(grads, again)):
            if not bool((a == b).all()):
                return _failed(mode, f"{label}: backward is not reentrant: two backward passes gave different "
                                     f"gradients for checked input {idx[k]}")
    tally = _Tally(atol, rtol, label)
    if fast_mode:
        for _ in range(n_directions):
            dirs = []
            for i in idx:
                u = xp.asarray(rng.standard_normal(tensors[i].shape))
                dirs.append(u / max(float(xp.sqrt((u * u).sum())), 1e-12))
            numeric = sum(float((fd.central_difference(fn, tensors, i, u, eps) * proj).sum())
                          for i, u in zip(idx, dirs))
            along = lambda k, what: (idx[0], names[idx[0]], f"along a random direction ({what})", ())  # noqa: E731
            reverse = None
            if check_backward:
                reverse = sum(float((g * u).sum()) for g, u in zip(grads, dirs))
                tally.add([reverse], [numeric], lambda k: along(k, "reverse mode"))
            if check_forward_ad:
                forward = float((fd.jvp(fn, tensors, checked, dirs) * proj).sum())
                tally.add([forward], [numeric], lambda k: along(k, "forward mode"))
                if reverse is not None:
                    tally.add([forward], [reverse], lambda k: along(k, "adjoint identity <v, Ju> vs <J^T v, u>"),
                              what="forward")
        if tally.message and check_backward:  # name the worst element of the full Jacobian
            full = measure(fn, inputs, eps=eps, atol=atol, rtol=rtol, names=names, label=label,
                           check_backward=check_backward, check_forward_ad=check_forward_ad)
            if full.message:
                return CheckReport(mode, tally.max_abs, tally.max_rel, False, full.message, full.worst)
        return tally.report(mode)
    n_out = sum(o.numel() for o in outs)
    for k, i in enumerate(idx):
        shape = tensors[i].shape
        numeric = np.empty((n_out, tensors[i].numel()))
        for c in range(tensors[i].numel()):
            numeric[:, c] = fd.host(fd.central_difference(fn, tensors, i, c, eps))

        def describe(flat, i=i, shape=shape):
            r, c = divmod(flat, max(int(np.prod(shape, dtype=np.int64)), 1))
            where = np.unravel_index(c, shape)
            return i, names[i], "[output " + str(r) + (", " if where else "") + index_text(where)[1:], (r,) + where
        if check_backward:
            analytic = np.empty_like(numeric)
            for r, seeds in fd.one_hot_rows(outs, xp):
                analytic[r] = fd.host(fd.vjp(fn, tensors, checked, seeds)[k]).ravel()
            tally.add(analytic, numeric, describe)
        if check_forward_ad:
            forward = np.empty_like(numeric)
            for c in range(tensors[i].numel()):
                dirs = [xp.zeros(tensors[j].shape) for j in idx]
                dirs[k].reshape(-1)[c] = 1.0
                forward[:, c] = fd.host(fd.jvp(fn, tensors, checked, dirs))
            tally.add(forward, numeric, describe, what="forward")
    return tally.report(mode)


def _raise_or_false(report: CheckReport, raise_exception: bool) -> bool:
    if report.passed:
        return True
    if raise_exception:
        raise GradcheckError(report.message)
    return False


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, fast_mode: bool = False,
              n_directions: int = 2, seed: int = 0, raise_exception: bool = True, names=None,
              check_forward_ad: bool = False, check_backward_ad: bool = True) -> bool:
    """Check the derivatives of ``fn`` against central finite differences, in float64.

    Args:
        fn: callable taking Tensors and returning a Tensor or a tuple of Tensors.
        inputs: Tensors or arrays. Floating ones are copied to float64 (a warning says so for other dtypes);
            Tensors with ``requires_grad=False`` (and all non-floating inputs) are held fixed; arrays are checked.
        eps: finite-difference step (> 0). atol, rtol (>= 0): pass if ``|analytic - numeric| <= atol + rtol |numeric|``.
        fast_mode: compare along ``n_directions`` random projections instead of the full Jacobian.
        check_forward_ad: also check every JVP (forward mode) against the finite differences and, in fast mode,
            the adjoint identity between forward and reverse mode. check_backward_ad: check the VJPs (default).
        names: optional names of the inputs for the error message.
    Returns:
        True if the check passes (False on failure when ``raise_exception=False``).
    Raises:
        GradcheckError (an AssertionError) naming the input, the worst element and both values; or saying that
        backward is not reentrant, or that the inputs or outputs hold NaN. ValueError: ``eps <= 0``, negative
        tolerances, nothing to check.
    """
    report = measure(fn, inputs, eps=eps, atol=atol, rtol=rtol, fast_mode=fast_mode, n_directions=n_directions,
                     seed=seed, names=names, check_backward=check_backward_ad, check_forward_ad=check_forward_ad)
    return _raise_or_false(report, raise_exception)


def second_order_function(fn, n_inputs: int, checked: list):
    """``g(*inputs, *grad_outputs) = autograd.grad(fn(*inputs), checked inputs, grad_outputs, create_graph=True)``:
    the function whose first derivatives are ``fn``'s second derivatives (PyTorch's gradgradcheck construction)."""
    from minivae.autograd.engine import grad
    from minivae.autograd.grad_mode import enable_grad

    def g(*args):
        xs, vs = args[:n_inputs], args[n_inputs:]
        if not any(x.requires_grad for x in xs):  # finite differences call g with constants: differentiate anyway
            xs = tuple(Tensor._make(x.data, c) if x.dtype.kind == "f" else x for x, c in zip(xs, checked))
        with enable_grad():
            return _gradients(xs, vs)

    def _gradients(xs, vs):
        outs = fd.outputs(fn, xs)
        wrt = [x for x, c in zip(xs, checked) if c]
        live = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
        if not live:
            return tuple(x * 0.0 for x in wrt)
        grads = grad([o for o, _ in live], wrt, grad_outputs=[v for _, v in live], create_graph=True,
                     allow_unused=True)
        return tuple(x * 0.0 if gx is None else gx for x, gx in zip(wrt, grads))

    return g


def gradgradcheck(fn, inputs, grad_outputs=None, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  fast_mode: bool = False, n_directions: int = 2, seed: int = 0, raise_exception: bool = True,
                  names=None, report: bool = False):
    """Check second derivatives: the backward of ``fn``'s backward (built with ``create_graph=True``) against
    central differences of the first derivatives, in float64 (PyTorch's ``gradgradcheck``).

    The checked function is ``(inputs, v) -> J_fn(inputs)^T v``; ``v`` (``grad_outputs``, random normal by
    default, drawn from ``seed``) is checked too, so both the Hessian-vector terms and the VJP's linearity in
    ``v`` are compared. Full mode compares the whole Jacobian of that function.

    Args:
        grad_outputs: arrays or Tensors of the outputs' shapes (held fixed when they are Tensors without
            ``requires_grad``); the others as :func:`gradcheck`. ``report=True`` returns the
            :class:`CheckReport` instead.
    Returns:
        True on success (False with ``raise_exception=False``), or the report.
    Raises:
        GradcheckError naming the input (``grad_output k`` for the v's), the worst element and both values.
    """
    tensors, checked = fd.prepare(inputs)
    outs = fd.outputs(fn, tensors)
    if grad_outputs is None:
        rng = np.random.default_rng([seed, 1])
        xp = get_array_module(outs[0].data)
        grad_outputs = [xp.asarray(rng.standard_normal(o.shape)) for o in outs]
    grad_outputs = list(grad_outputs) if isinstance(grad_outputs, (list, tuple)) else [grad_outputs]
    if len(grad_outputs) != len(outs):
        raise ValueError(f"gradgradcheck: got {len(grad_outputs)} grad_outputs for {len(outs)} outputs")
    all_inputs = [Tensor(t.data, requires_grad=c) if t.dtype.kind == "f" else t for t, c in zip(tensors, checked)]
    all_inputs += list(grad_outputs)
    labels = list(names) if names is not None else [f"input {i}" for i in range(len(tensors))]
    labels += [f"grad_output {k}" for k in range(len(grad_outputs))]
    result = measure(second_order_function(fn, len(tensors), checked), all_inputs, eps=eps, atol=atol, rtol=rtol,
                     fast_mode=fast_mode, n_directions=n_directions, seed=seed, names=labels,
                     label="gradgradcheck")
    return result if report else _raise_or_false(result, raise_exception)
