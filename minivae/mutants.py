"""Which derivative check catches which bug: known bugs ("mutants") injected into ops' VJP and JVP rules, and
the checks run against each (``minivae gradcheck --mutants``).

A mutant replaces one rule of one op class for the duration of a ``with`` block. The bugs are the classic ones:

* sign flip: the gradient (or tangent) of one input negated;
* factor on one element: one element scaled by 1.5;
* transposed index: the gradient of a square matrix transposed;
* missing broadcast reduction: the gradient of a broadcast operand taken from one row instead of summed
  (or, for a JVP, the tangent of the broadcast operand added to one row only);
* off-by-one padding in conv: the input gradient (or output tangent) shifted by one pixel, as a padding off by one.

The checks (each in float64, central differences, tolerances of :func:`minivae.gradcheck`):

* ``full``: whole Jacobians (reverse mode row by row, or forward mode column by column);
* ``fast 1`` and ``fast 4``: PyTorch-style fast mode along 1 or 4 random projections ``v . J u``;
* ``gradgradcheck``: second derivatives (the backward of the backward against finite differences of the backward);
* ``adjoint``: forward against reverse mode, ``<v, J u> = <J^T v, u>`` along 4 random pairs, no finite differences.

The lesson the table teaches: the full Jacobian catches everything; fast mode can miss a bug confined to one
element; ``gradgradcheck`` differentiates the (wrong) backward consistently and so does not see first-order bugs;
the adjoint identity catches a bug in either mode without any finite difference.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

import minivae.functional as F
from minivae.autograd import finite_diff as fd
from minivae.autograd.gradcheck import gradgradcheck, measure
from minivae.autograd.tensor import Tensor
from minivae.ops import activation, conv, elementwise, matmul

__all__ = ["Mutant", "MutantResult", "MUTANTS", "run", "run_all", "format_table", "CHECKS"]

CHECKS = ("full", "fast 1", "fast 4", "gradgradcheck", "adjoint")


def _one_element(g: Tensor) -> Tensor:
    scale = np.ones(g.shape, dtype=g.dtype)
    scale.reshape(-1)[0] = 1.5
    return g * Tensor(scale)


def _shift_w(g: Tensor) -> Tensor:
    """The map moved one pixel to the right along W (a zero column enters on the left)."""
    zeros = Tensor(np.zeros(g.shape[:3] + (1,), dtype=g.dtype))
    return F.concatenate([zeros, g[:, :, :, :-1]], axis=3)


def _first_rows_only(t: Tensor, shape) -> Tensor:
    """A ``(n,)`` tangent added to the first row of an ``(m, n)`` output only."""
    mask = np.zeros(shape, dtype=t.dtype)
    mask[0] = 1.0
    return F.broadcast_to(t, shape) * Tensor(mask)


def _patched(cls, rule, wrap):
    original = getattr(cls, rule)

    def mutated(self, *args):
        return wrap(self, original(self, *args), *args)

    return original, mutated


@dataclass(frozen=True)
class Mutant:
    """One injected bug: ``wrap(fn, result, *rule_args) -> mutated result`` around ``cls.<rule>``.

    Attributes: op (the functional name), rule ("backward" or "jvp"), bug (its description), cls (the Function
    class patched), fn (the function of Tensors checked), make_inputs (``rng -> list of arrays``).
    """

    op: str
    rule: str
    bug: str
    cls: type
    wrap: object = field(repr=False)
    fn: object = field(repr=False)
    make_inputs: object = field(repr=False)

    @contextlib.contextmanager
    def injected(self):
        """Context manager: the op with this bug swapped in, restored on exit."""
        original, mutated = _patched(self.cls, self.rule, self.wrap)
        setattr(self.cls, self.rule, mutated)
        try:
            yield
        finally:
            setattr(self.cls, self.rule, original)


def _first(change):
    """Apply ``change`` to the gradient of the first input (when there is one)."""
    return lambda fn, out, *a: (None if out[0] is None else change(out[0]),) + tuple(out[1:])


def _transpose_square(g: Tensor) -> Tensor:
    return g.T if g.ndim == 2 and g.shape[0] == g.shape[1] else g


MUTANTS = (
    Mutant("mul", "backward", "sign flip", elementwise.Mul, _first(lambda g: -g), F.mul,
           lambda r: [r.standard_normal((2, 3)), r.standard_normal((2, 3))]),
    Mutant("tanh", "backward", "factor on one element", activation.Tanh, lambda fn, g, gy: _one_element(g),
           F.tanh, lambda r: [r.standard_normal((3, 4))]),
    Mutant("matmul", "backward", "transposed index", matmul.MatMul, _first(_transpose_square), F.matmul,
           lambda r: [r.standard_normal((3, 3)), r.standard_normal((3, 2))]),
    Mutant("add", "backward", "missing broadcast reduction", elementwise.Add,
           lambda fn, out, gy: (out[0], gy[0] if fn.shapes[1] != gy.shape else out[1]), F.add,
           lambda r: [r.standard_normal((4, 3)), r.standard_normal(3)]),
    Mutant("conv2d", "backward", "off-by-one padding", conv.Conv2d,
           _first(_shift_w),
           lambda x, w: F.conv2d(x, w, stride=1, padding=1),
           lambda r: [r.standard_normal((1, 2, 4, 4)), r.standard_normal((2, 2, 3, 3))]),
    Mutant("mul", "jvp", "sign flip", elementwise.Mul, lambda fn, t, *d: -t, F.mul,
           lambda r: [r.standard_normal((2, 3)), r.standard_normal((2, 3))]),
    Mutant("tanh", "jvp", "factor on one element", activation.Tanh, lambda fn, t, *d: _one_element(t),
           F.tanh, lambda r: [r.standard_normal((3, 4))]),
    Mutant("matmul", "jvp", "transposed index", matmul.MatMul, lambda fn, t, *d: _transpose_square(t), F.matmul, lambda r: [r.standard_normal((3, 3)), r.standard_normal((3, 3))]),
    Mutant("add", "jvp", "missing broadcast reduction", elementwise.Add,
           lambda fn, t, da, db: (da if da is not None else 0.0) + _first_rows_only(db, t.shape) if db is not None
           and db.shape != t.shape else t, F.add, lambda r: [r.standard_normal((4, 3)), r.standard_normal(3)]),
    Mutant("conv2d", "jvp", "off-by-one padding", conv.Conv2d, lambda fn, t, *d: _shift_w(t),
           lambda x, w: F.conv2d(x, w, stride=1, padding=1),
           lambda r: [r.standard_normal((1, 2, 4, 4)), r.standard_normal((2, 2, 3, 3))]),
)


@dataclass(frozen=True)
class MutantResult:
    """The mutant and, per check in :data:`CHECKS`, whether it caught the bug (True), missed it (False)."""

    mutant: Mutant
    caught: dict


def _adjoint_caught(fn, inputs, rng, n=4, atol=1e-5, rtol=1e-3) -> bool:
    tensors, checked = fd.prepare(inputs)
    outs = fd.outputs(fn, tensors)
    for _ in range(n):
        v = rng.standard_normal(sum(o.numel() for o in outs))
        us = [rng.standard_normal(t.shape) for t, c in zip(tensors, checked) if c]
        forward = float(fd.jvp(fn, tensors, checked, us) @ v)
        reverse = sum(float((g * u).sum()) for g, u in zip(fd.vjp(fn, tensors, checked, fd.split_like(v, outs)), us))
        if abs(forward - reverse) > atol + rtol * abs(reverse):
            return True
    return False


def run(mutant: Mutant, seed: int = 0) -> MutantResult:
    """Inject ``mutant`` and run every check of :data:`CHECKS` on it."""
    rng = np.random.default_rng(seed)
    inputs = mutant.make_inputs(rng)
    reverse = mutant.rule == "backward"
    kw = dict(check_backward=reverse, check_forward_ad=not reverse)
    caught = {}
    with mutant.injected():
        caught["full"] = not measure(mutant.fn, inputs, **kw).passed
        caught["fast 1"] = not measure(mutant.fn, inputs, fast_mode=True, n_directions=1, seed=seed, **kw).passed
        caught["fast 4"] = not measure(mutant.fn, inputs, fast_mode=True, n_directions=4, seed=seed, **kw).passed
        caught["gradgradcheck"] = not gradgradcheck(mutant.fn, inputs, seed=seed, report=True).passed
        caught["adjoint"] = _adjoint_caught(mutant.fn, inputs, np.random.default_rng(seed + 1))
    return MutantResult(mutant, caught)


def run_all(seed: int = 0) -> list[MutantResult]:
    """Every mutant of :data:`MUTANTS`, checked."""
    return [run(m, seed) for m in MUTANTS]


def format_table(results) -> str:
    """A Markdown table: op, rule, bug, then "caught" / "missed" per check."""
    head = ["op", "rule", "bug", *CHECKS]
    rows = [head, ["---"] * len(head)]
    for r in results:
        m = r.mutant
        rows.append([m.op, "VJP" if m.rule == "backward" else "JVP", m.bug,
                     *("caught" if r.caught[c] else "missed" for c in CHECKS)])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
