"""Gradient checks of ops against finite differences, with the errors measured: the catalogue behind
``minivae gradcheck``, and :func:`check_op` to run the same check on your own op.

:func:`minivae.gradcheck` answers pass/fail; this module also reports *how far* the backward is from
the finite differences: the largest absolute and relative error over every Jacobian entry (full mode) or
every random projection (fast mode). The pass/fail rule is gradcheck's: every entry must satisfy
``|analytic - numeric| <= atol + rtol * |numeric|``, and two backward passes must agree bitwise.

Check your own :class:`~minivae.autograd.function.Function`::

    import numpy as np
    from minivae import Function
    from minivae.opcheck import check_op, format_table

    class Cube(Function):
        def forward(self, x):               # arrays
            self.save_for_backward(x)
            return x ** 3
        def backward(self, gy):             # Tensors: written with ops, so it can be differentiated again
            (x,) = self.saved_tensors
            return gy * 3.0 * x ** 2
        def jvp(self, dx):                  # forward mode
            (x,) = self.saved_tensors
            return dx * 3.0 * x ** 2

    r = check_op(Cube, [np.random.default_rng(0).standard_normal((3, 4))])
    print(r.passed, r.max_abs_error, r.max_rel_error)   # True 1e-10 ...
    check_op(Cube, [...], order=2)                      # second derivatives (gradgradcheck)
    check_op(Cube, [...], forward_ad=True)              # the JVP
    print(format_table([r]))

or a built-in op by name with its keyword arguments (``op_kwargs``), or any function of Tensors::

    check_op("conv2d", [x, w, b], op_kwargs={"stride": 2, "padding": 1})
    check_op(lambda a, b: (a * b).sum(), [a, b])

Inputs are copied to float64 (as :func:`minivae.gradcheck` does); arrays and Tensors with
``requires_grad=True`` are checked, Tensors without it (and integer arrays) are held fixed: pass random
noise such as ``eps`` that way. Full mode costs one backward per output element and two forwards per
input element: keep the shapes small.
"""
from __future__ import annotations

import importlib
import math
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.opcheck_api_cases import add_cases as add_api_cases

# the modules, not the functions of the same names that minivae.autograd re-exports
_gc = importlib.import_module("minivae.autograd.gradcheck")
_fd = importlib.import_module("minivae.autograd.finite_diff")

__all__ = ["OpCase", "OpCheckResult", "CASES", "op_names", "cases", "check_op", "check_case", "check_all",
           "format_table"]


# ---------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class OpCheckResult:
    """The outcome of one gradient check.

    Attributes:
        op: the op's name (e.g. "conv2d", or the class / function name of a user op).
        settings: its non-array arguments as text (e.g. "stride=2, padding=1"), "" if none.
        shapes: the input shapes, tuples of ints, in argument order.
        mode: "full" (whole Jacobian) or "fast" (random projections).
        max_abs_error: largest ``|analytic - numeric|`` over the compared numbers (float64; nan on error).
        max_rel_error: largest ``|analytic - numeric| / max(|analytic|, |numeric|)`` over the compared
            numbers whose magnitude exceeds ``atol`` (0.0 when none does; nan on error).
        passed: True when every compared number is within ``atol + rtol * |numeric|`` and backward is reentrant.
        message: why it failed (worst element, analytic and numeric values), or "" when it passed.
    """

    op: str
    settings: str
    shapes: tuple
    mode: str
    max_abs_error: float
    max_rel_error: float
    passed: bool
    message: str = ""


@dataclass(frozen=True)
class OpCase:
    """One catalogue entry: an op of :mod:`minivae.functional`, its settings and how to make inputs.

    Attributes:
        op: the name in ``minivae.functional`` (what ``--op`` selects).
        settings: the setting as text, e.g. "stride=2, padding=1" or "(2,3) + (3,)".
        fn: callable taking Tensors and returning a Tensor or a tuple of Tensors.
        make_inputs: ``make_inputs(rng) -> list`` of float64 arrays (checked) or Tensors without grad (fixed).
    """

    op: str
    settings: str
    fn: Callable
    make_inputs: Callable = field(repr=False)


# ---------------------------------------------------------------------------------------- the check
def _shape_text(shape) -> str:
    return "x".join(str(int(n)) for n in shape) if len(shape) else "()"


def _op_name(op) -> str:
    if isinstance(op, str):
        return op
    if isinstance(op, type):
        return op.__name__
    return getattr(op, "__name__", type(op).__name__)


def _resolve(op, op_kwargs) -> Callable:
    """A callable on Tensors from a functional name, a Function subclass or a callable."""
    kwargs = dict(op_kwargs or {})
    if isinstance(op, str):
        import minivae.functional as F

        if op not in F.__all__:
            raise ValueError(f"unknown op {op!r}; minivae.functional has: {', '.join(sorted(F.__all__))}")
        target = getattr(F, op)
    elif isinstance(op, type) and issubclass(op, Function):
        target = op.apply
    elif callable(op):
        target = op
    else:
        raise TypeError(f"check_op: expected an op name, a Function subclass or a callable, got {type(op).__name__}")
    return (lambda *xs: target(*xs, **kwargs)) if kwargs else target


def _message(report, names, atol, rtol) -> str:
    """The failure as ``input i (name): worst element d out[r] / d x[...]: analytic=... numeric=...``."""
    if report.passed:
        return ""
    if report.worst is not None and len(report.worst[1]) > 1:
        i, (r, *where), a, n = report.worst
        return (f"input {i} ({names[i]}): worst element d out[{r}] / d x{_gc.index_text(where)}: "
                f"analytic={a:.8g} numeric={n:.8g} (|diff|={abs(a - n):.3g}, atol={atol}, rtol={rtol})")
    text = report.message
    for prefix in ("gradcheck failed for ", "gradgradcheck failed for ", "gradcheck: ", "gradgradcheck: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def check_op(op, inputs, *, op_kwargs: dict | None = None, name: str | None = None, settings: str | None = None,
             eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, fast: bool = False,
             n_directions: int = 4, seed: int = 0, names=None, order: int = 1,
             forward_ad: bool = False) -> OpCheckResult:
    """Check the derivatives of one op against central finite differences and measure the errors.

    Args:
        op: a name in :mod:`minivae.functional` ("conv2d"), a :class:`~minivae.autograd.function.Function`
            subclass (its ``apply`` is called), or a callable taking Tensors and returning a Tensor or a
            tuple of Tensors.
        inputs: arrays or Tensors, in argument order. Floating ones are copied to float64; arrays and
            Tensors with ``requires_grad=True`` are checked, the others held fixed.
        op_kwargs: keyword arguments passed to the op (e.g. ``{"stride": 2}``).
        name, settings: what the result and the table call the op (default: its name; op_kwargs as text).
        eps: finite-difference step. atol, rtol: the pass rule ``|a - n| <= atol + rtol |n|``.
        fast: compare ``n_directions`` random projections ``v . J u`` instead of whole Jacobians.
        order: 1 checks the VJPs (backward), 2 the second derivatives (:func:`minivae.gradgradcheck`).
        forward_ad: check the JVPs (forward mode) instead of the VJPs, and in fast mode the adjoint identity.
        seed: seeds the random projections. names: optional input names for the message.
    Returns:
        :class:`OpCheckResult` (the measurement of :func:`minivae.autograd.gradcheck.measure`). An exception
        raised by the op is reported as a failure (its type and message in ``message``), not raised.
    Raises:
        ValueError: unknown op name, bad order, or no input to check. TypeError: ``op`` is not an op.
    """
    if order not in (1, 2):
        raise ValueError(f"check_op: order must be 1 or 2, got {order}")
    fn = _resolve(op, op_kwargs)
    label = name or _op_name(op)
    if settings is None:
        settings = ", ".join(f"{k}={v}" for k, v in (op_kwargs or {}).items())
    tensors, _ = _fd.prepare(inputs)  # raises ValueError when nothing is checked
    shapes = tuple(tuple(t.shape) for t in tensors)
    names = list(names) if names is not None else [f"arg {i}" for i in range(len(tensors))]
    mode = "fast" if fast else "full"
    try:
        if order == 2:
            report = _gc.gradgradcheck(fn, tensors, eps=eps, atol=atol, rtol=rtol, fast_mode=fast,
                                       n_directions=n_directions, seed=seed, names=names, report=True)
        else:
            report = _gc.measure(fn, tensors, eps=eps, atol=atol, rtol=rtol, fast_mode=fast,
                                 n_directions=n_directions, seed=seed, names=names,
                                 check_backward=not forward_ad, check_forward_ad=forward_ad)
        message = _message(report, names, atol, rtol)
        return OpCheckResult(op=label, settings=settings, shapes=shapes, mode=mode,
                             max_abs_error=report.max_abs_error, max_rel_error=report.max_rel_error,
                             passed=report.passed, message=message)
    except Exception as err:  # an op that raises fails its check; the table says why
        return OpCheckResult(op=label, settings=settings, shapes=shapes, mode=mode, max_abs_error=math.nan,
                             max_rel_error=math.nan, passed=False, message=f"{type(err).__name__}: {err}")


def _case_rng(seed: int, case: OpCase) -> np.random.Generator:
    """The same inputs for a case whether it runs alone (``--op``) or with the whole catalogue."""
    return np.random.default_rng([int(seed), zlib.crc32(f"{case.op}|{case.settings}".encode())])


def check_case(case: OpCase, seed: int = 0, **kwargs) -> OpCheckResult:
    """Run :func:`check_op` on one catalogue case with inputs drawn from ``seed`` (kwargs as check_op's)."""
    inputs = case.make_inputs(_case_rng(seed, case))
    return check_op(case.fn, inputs, name=case.op, settings=case.settings, seed=seed, **kwargs)


def check_all(ops=None, seed: int = 0, **kwargs) -> list[OpCheckResult]:
    """Check every catalogue case (or those of the op names in ``ops``). Raises ValueError on an unknown name."""
    return [check_case(c, seed=seed, **kwargs) for c in cases(ops)]


def format_table(results) -> str:
    """Results as an aligned text table: op, settings, input shapes, max abs error, max rel error, pass/FAIL."""
    header = ("op", "settings", "input shapes", "max abs err", "max rel err", "result")
    rows = [header]
    for r in results:
        rows.append((r.op, r.settings, ", ".join(_shape_text(s) for s in r.shapes),
                     f"{r.max_abs_error:.2e}", f"{r.max_rel_error:.2e}", "pass" if r.passed else "FAIL"))
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    right = {3, 4}

    def fmt(row):
        return "  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                         for c, (cell, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(row) for row in rows[1:]])


# ---------------------------------------------------------------------------------------- the catalogue
def _normal(*shape):
    """make_inputs for one standard-normal input of ``shape``."""
    return lambda rng: [rng.standard_normal(shape)]


def _away_from_zero(rng, shape, margin=0.1):
    """Normal values pushed at least ``margin`` away from 0 (for kinks such as relu's)."""
    x = rng.standard_normal(shape)
    return np.sign(x) * (np.abs(x) + margin) + (x == 0) * margin


def _positive(rng, shape, low=0.5, high=2.0):
    return rng.uniform(low, high, shape)


def _fixed(a):
    return Tensor(a)  # a constant: held fixed by the check


def _catalogue() -> tuple[OpCase, ...]:
    import minivae.functional as F

    c = []

    def add(op, settings, fn, make):
        c.append(OpCase(op, settings, fn, make))

    # activations and elementwise maths
    add("relu", "", F.relu, lambda r: [_away_from_zero(r, (3, 4))])
    add("sigmoid", "", F.sigmoid, lambda r: [2 * r.standard_normal((3, 4))])
    add("softplus", "", F.softplus, lambda r: [2 * r.standard_normal((3, 4))])
    add("tanh", "", F.tanh, lambda r: [r.standard_normal((3, 4))])
    add("exp", "", F.exp, lambda r: [r.standard_normal((3, 4))])
    add("log", "", F.log, lambda r: [_positive(r, (3, 4))])
    add("neg", "", F.neg, _normal(3, 4))
    add("cast", "float64", lambda x: F.cast(x, np.float64), _normal(3, 4))
    # binary ops with broadcasting
    pairs = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1, 3), (4, 1)), ((2, 3), ())]
    for op, sym in (("add", "+"), ("sub", "-"), ("mul", "*")):
        for sa, sb in pairs:
            add(op, f"{_shape_text(sa)} {sym} {_shape_text(sb)}", getattr(F, op),
                lambda r, sa=sa, sb=sb: [r.standard_normal(sa), r.standard_normal(sb)])
    for sa, sb in pairs:
        add("div", f"{_shape_text(sa)} / {_shape_text(sb)}", F.div,
            lambda r, sa=sa, sb=sb: [r.standard_normal(sa), _away_from_zero(r, sb, 0.5)])
    for sa, sb in pairs[:3]:
        add("pow", f"{_shape_text(sa)} ** {_shape_text(sb)}", F.pow,
            lambda r, sa=sa, sb=sb: [_positive(r, sa), r.uniform(0.5, 2.0, sb)])
    add("pow", "x ** 3 (constant exponent)", lambda x: F.pow(x, 3.0), _normal(2, 3))
    # matrix products
    add("matmul", "3x4 @ 4x2", F.matmul, lambda r: [r.standard_normal((3, 4)), r.standard_normal((4, 2))])
    add("matmul", "2x3x4 @ 4x5 (batched)", F.matmul,
        lambda r: [r.standard_normal((2, 3, 4)), r.standard_normal((4, 5))])
    add("linear", "bias", F.linear,
        lambda r: [r.standard_normal((4, 5)), r.standard_normal((3, 5)), r.standard_normal(3)])
    add("linear", "no bias", F.linear, lambda r: [r.standard_normal((4, 5)), r.standard_normal((3, 5))])
    # reductions
    add("sum", "all", F.sum, _normal(2, 3, 4))
    add("sum", "axis=1", lambda x: F.sum(x, axis=1), _normal(2, 3, 4))
    add("sum", "axis=(0, 2), keepdims", lambda x: F.sum(x, axis=(0, 2), keepdims=True), _normal(2, 3, 4))
    add("mean", "all", F.mean, _normal(2, 3, 4))
    add("mean", "axis=-1, keepdims", lambda x: F.mean(x, axis=-1, keepdims=True), _normal(2, 3, 4))
    # shapes
    add("reshape", "-> 6x4", lambda x: F.reshape(x, (6, 4)), _normal(2, 3, 4))
    add("permute", "dims=(2, 0, 1)", lambda x: F.permute(x, (2, 0, 1)), _normal(2, 3, 4))
    add("transpose", "dims 0, 2", lambda x: F.transpose(x, 0, 2), _normal(2, 3, 4))
    add("t", "matrix", F.t, _normal(3, 4))
    add("broadcast_to", "3x1 -> 2x3x4", lambda x: F.broadcast_to(x, (2, 3, 4)), _normal(3, 1))
    add("concatenate", "axis=1", lambda a, b: F.concatenate([a, b], axis=1),
        lambda r: [r.standard_normal((2, 3)), r.standard_normal((2, 2))])
    add("split", "[2, 3], axis=0", lambda x: F.split(x, [2, 3], axis=0), _normal(5, 4))
    add("split", "size 3, axis=1", lambda x: F.split(x, 3, axis=1), _normal(2, 7))
    add("getitem", "[:, 1:3]", lambda x: F.getitem(x, (slice(None), slice(1, 3))), _normal(3, 4))
    add("getitem", "[::-2, 1]", lambda x: F.getitem(x, (slice(None, None, -2), 1)), _normal(5, 3))
    add("getitem", "[[0, 2, 2]] (repeats)", lambda x: F.getitem(x, np.array([0, 2, 2])), _normal(4, 3))
    # convolutions
    for settings, xs, ws, kw in [
        ("stride=1, padding=0", (2, 2, 5, 5), (3, 2, 3, 3), dict(stride=1, padding=0)),
        ("stride=2, padding=1", (2, 2, 5, 5), (3, 2, 3, 3), dict(stride=2, padding=1)),
        ("stride=(1, 2), padding=(1, 0), 2x3 kernel", (1, 2, 5, 6), (2, 2, 2, 3), dict(stride=(1, 2), padding=(1, 0))),
    ]:
        add("conv2d", settings, lambda x, w, b, kw=kw: F.conv2d(x, w, b, **kw),
            lambda r, xs=xs, ws=ws: [r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[0])])
    add("conv2d", "no bias, padding=1", lambda x, w: F.conv2d(x, w, padding=1),
        lambda r: [r.standard_normal((1, 1, 4, 4)), r.standard_normal((2, 1, 3, 3))])
    for settings, xs, ws, kw in [
        ("stride=1, padding=0", (2, 2, 3, 3), (2, 3, 3, 3), dict(stride=1, padding=0)),
        ("stride=2, padding=1, output_padding=1", (2, 2, 3, 3), (2, 3, 3, 3),
         dict(stride=2, padding=1, output_padding=1)),
        ("stride=2, padding=0, output_padding=0", (1, 2, 3, 3), (2, 2, 4, 4), dict(stride=2, padding=0)),
        ("stride=(2, 3), padding=(1, 0), output_padding=(1, 2)", (1, 2, 3, 2), (2, 2, 3, 3),
         dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2))),
    ]:
        add("conv_transpose2d", settings, lambda x, w, b, kw=kw: F.conv_transpose2d(x, w, b, **kw),
            lambda r, xs=xs, ws=ws: [r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[1])])
    add("conv_transpose2d", "no bias", lambda x, w: F.conv_transpose2d(x, w),
        lambda r: [r.standard_normal((1, 2, 3, 3)), r.standard_normal((2, 1, 2, 2))])
    # losses and VAE terms
    for red in ("sum", "none"):
        add("binary_cross_entropy_with_logits", f"reduction={red}",
            lambda x, t, red=red: F.binary_cross_entropy_with_logits(x, t, reduction=red),
            lambda r: [2 * r.standard_normal((3, 4)), r.uniform(0, 1, (3, 4))])
    for red in ("mean", "sum"):
        add("mse_loss", f"reduction={red}", lambda x, t, red=red: F.mse_loss(x, t, reduction=red),
            lambda r: [r.standard_normal((3, 4)), r.standard_normal((3, 4))])
    add("gaussian_nll", "sigma=0.5", lambda x, t: F.gaussian_nll(x, t, sigma=0.5),
        lambda r: [r.standard_normal((2, 3, 2)), r.standard_normal((2, 3, 2))])
    add("kl_normal", "", F.kl_normal, lambda r: [r.standard_normal((3, 2)), 0.5 * r.standard_normal((3, 2))])
    add("reparameterize_kl", "eps fixed", F.reparameterize_kl,
        lambda r: [r.standard_normal((3, 2)), 0.5 * r.standard_normal((3, 2)), _fixed(r.standard_normal((3, 2)))])
    add("reparameterize_kl", "eps checked", F.reparameterize_kl,
        lambda r: [r.standard_normal((2, 3)), 0.5 * r.standard_normal((2, 3)), r.standard_normal((2, 3))])
    add_api_cases(add, _normal, _away_from_zero, _positive, _fixed)
    return tuple(c)


#: Every catalogue case, in table order.
CASES: tuple[OpCase, ...] = _catalogue()


def op_names() -> list[str]:
    """The op names the catalogue covers, in table order."""
    seen: dict[str, None] = {}
    for c in CASES:
        seen.setdefault(c.op, None)
    return list(seen)


def cases(ops=None) -> list[OpCase]:
    """The catalogue cases of the op names in ``ops`` (a name or a list of names; all when None).

    Raises:
        ValueError: a name the catalogue does not cover (the message lists the known ones).
    """
    if ops is None:
        return list(CASES)
    ops = [ops] if isinstance(ops, str) else list(ops)
    unknown = [o for o in ops if o not in op_names()]
    if unknown:
        raise ValueError(f"unknown op {', '.join(map(repr, unknown))}; known ops: {', '.join(op_names())}")
    return [c for c in CASES if c.op in ops]
