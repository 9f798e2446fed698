"""The oracle's table, part 1: the ``Row`` record and the elementwise ops and operators.

A row is one op: ``fn(L, *args, **kwargs)`` written once for both libraries (``L`` is minivae's or
PyTorch's namespace, see ``oracle_harness``), the inputs' strategy, the derivative modes that apply (all six
for a differentiable op, ``forward`` for comparisons and integer results), the dtypes, the public names it
covers (``Tensor.exp``, ``F.softmax``, ``mv.cat``) and expected failures: ``xfail`` maps a mode, a dtype,
a ``(mode, dtype)`` pair or ``"*"`` to a reason (a disagreement with PyTorch, or
``NYI`` for an op main does not have yet); the marks are strict, so a fixed op fails until its mark goes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from hypothesis import strategies as st
from oracle_harness import DTYPES, LAYOUTS, MODES, Case
from oracle_inputs import binary, shapes, unary, unary_kw, values, with_scalar

NYI = "not yet implemented"
FORWARD = ("forward",)
FIRST = ("forward", "vjp", "jvp")


@dataclass
class Row:
    name: str  # the test id
    fn: Callable  # fn(L, *args, **kwargs) on both libraries
    gen: object  # a hypothesis strategy of Case
    covers: tuple = ()  # the public names checked ("Tensor.sum", "F.softmax", "mv.cat")
    modes: tuple = MODES
    dtypes: tuple = DTYPES
    torch_fn: Callable | None = None  # PyTorch's side where minivae's name has no twin
    layouts: tuple = LAYOUTS
    xfail: dict = field(default_factory=dict)  # "*" | mode | dtype | (mode, dtype) -> reason
    rtol: dict = field(default_factory=dict)  # dtype -> tolerance, where an op's rounding needs more
    examples: int | None = None  # hypothesis examples (default: see test_oracle_ops.py)

    def __post_init__(self):
        if self.torch_fn is None:
            self.torch_fn = self.fn

    def xfail_reason(self, mode, dtype):
        for key in ((mode, dtype), mode, dtype, "*"):
            if key in self.xfail:
                return self.xfail[key]
        return None


def method(name, *args, **kwargs):
    """``lambda L, x: x.name(*args, **kwargs)``."""
    return lambda L, x: getattr(x, name)(*args, **kwargs)


def functional(name):
    return lambda L, *a, **k: getattr(L.F, name)(*a, **k)


# --------------------------------------------------------------------------- unary elementwise
# name, domain, functional twin in minivae.functional (when it has one)
UNARY = [
    ("abs", "away0"), ("neg", "real"), ("sqrt", "positive"), ("rsqrt", "positive"), ("reciprocal", "away0"),
    ("exp", "real"), ("log", "positive"), ("log1p", "positive"), ("expm1", "real"), ("sin", "real"),
    ("cos", "real"), ("tanh", "real"), ("sigmoid", "wide"), ("relu", "away0"), ("erf", "real"), ("clone", "real"),
]


def _unary_rows():
    rows = []
    for name, domain in UNARY:
        rows.append(Row(f"Tensor.{name}", method(name), unary(domain), covers=(f"Tensor.{name}",)))
        rows.append(Row(f"F.{name}", functional(name), unary(domain), covers=(f"F.{name}",)))
    rows.append(Row("Tensor.__neg__", lambda L, x: -x, unary(), covers=("Tensor.__neg__",)))
    rows.append(Row("Tensor.__abs__", lambda L, x: abs(x), unary("away0"), covers=("Tensor.__abs__",)))
    rows.append(Row("Tensor.softplus", method("softplus"), unary("wide"), covers=("Tensor.softplus",),
                    torch_fn=lambda L, x: L.F.softplus(x)))
    return rows


ACTIVATIONS = [
    Row("F.leaky_relu", lambda L, x, **k: L.F.leaky_relu(x, **k),
        unary_kw(st.sampled_from([{}, {"negative_slope": 0.2}, {"negative_slope": 1.5}]), "away0"),
        covers=("F.leaky_relu",)),
    Row("F.gelu", lambda L, x, **k: L.F.gelu(x, **k),
        unary_kw(st.sampled_from([{}, {"approximate": "none"}, {"approximate": "tanh"}]), "wide"),
        covers=("F.gelu",)),
    Row("F.softplus", lambda L, x, **k: L.F.softplus(x, **k),
        unary_kw(st.sampled_from([{}, {"beta": 2.0}, {"beta": 0.5, "threshold": 1.0}]), "wide"),
        covers=("F.softplus",)),
    Row("Tensor.clamp", lambda L, x, **k: x.clamp(**k),
        unary_kw(st.sampled_from([{"min": -0.5}, {"max": 0.3}, {"min": -0.7, "max": 0.6}])),
        covers=("Tensor.clamp",)),
    Row("mv.clamp", lambda L, x, **k: L.T.clamp(x, **k),
        unary_kw(st.sampled_from([{"min": -0.5}, {"max": 0.3}, {"min": -0.7, "max": 0.6}])),
        covers=("mv.clamp",)),
]


# --------------------------------------------------------------------------- binary ops and operators
@st.composite
def _ints_pair(draw):
    """Two broadcasting tensors of small integers (as floats): comparisons see equal elements too."""
    case = draw(binary())
    return Case(tuple(np.round(2 * a) for a in case.args), {}, (0, 1))


def _binary_rows():
    rows = []
    ops = [("add", "__add__", lambda a, b: a + b, "real"), ("sub", "__sub__", lambda a, b: a - b, "real"),
           ("mul", "__mul__", lambda a, b: a * b, "real"), ("div", "__truediv__", lambda a, b: a / b, "away0")]
    for name, dunder, op, dom_b in ops:
        rows.append(Row(f"Tensor.{dunder}", lambda L, a, b, op=op: op(a, b), binary("real", dom_b),
                        covers=(f"Tensor.{dunder}",)))
        rows.append(Row(f"F.{name}", functional(name), binary("real", dom_b), covers=(f"F.{name}",)))
        rows.append(Row(f"Tensor.{name}", lambda L, a, b, name=name: getattr(a, name)(b), binary("real", dom_b),
                        covers=(f"Tensor.{name}",)))
    scalars = st.sampled_from([2.5, -1.0, 3, 0.5])
    rops = [("__radd__", lambda s, x: s + x, "real"), ("__rsub__", lambda s, x: s - x, "real"),
            ("__rmul__", lambda s, x: s * x, "real"), ("__rtruediv__", lambda s, x: s / x, "away0"),
            ("__rpow__", lambda s, x: abs(s) ** x, "real")]
    for dunder, op, dom in rops:
        rows.append(Row(f"Tensor.{dunder}", lambda L, x, s, op=op: op(s, x), with_scalar(scalars, dom),
                        covers=(f"Tensor.{dunder}",)))
    rows += [
        Row("Tensor.__pow__.tensor", lambda L, a, b: a ** b, binary("positive", "real"), covers=("Tensor.__pow__",)),
        Row("Tensor.__pow__.int", lambda L, x, s: x ** s, with_scalar(st.sampled_from([0, 1, 2, 3, -1, -2]), "away0"),
            covers=("Tensor.__pow__",)),
        Row("Tensor.__pow__.float", lambda L, x, s: x ** s, with_scalar(st.sampled_from([0.5, -1.5, 2.0, 1.3]),
                                                                         "positive"), covers=("Tensor.__pow__",)),
        Row("Tensor.pow", lambda L, x, s: x.pow(s), with_scalar(st.sampled_from([2, 3, 0.5, -1.0]), "positive"),
            covers=("Tensor.pow",)),
        Row("F.pow", lambda L, a, b: L.F.pow(a, b), binary("positive", "real"), covers=("F.pow",)),
        Row("mv.maximum", lambda L, a, b: L.T.maximum(a, b), binary(), covers=("mv.maximum",)),
        Row("mv.minimum", lambda L, a, b: L.T.minimum(a, b), binary(), covers=("mv.minimum",)),
        Row("Tensor.maximum", lambda L, a, b: a.maximum(b), binary(), covers=("Tensor.maximum",)),
        Row("Tensor.minimum", lambda L, a, b: a.minimum(b), binary(), covers=("Tensor.minimum",)),
        Row("mv.where", lambda L, c, a, b: L.T.where(c, a, b), _where_case(), covers=("mv.where",)),
    ]
    comparisons = [("__lt__", lambda a, b: a < b), ("__le__", lambda a, b: a <= b), ("__gt__", lambda a, b: a > b),
                   ("__ge__", lambda a, b: a >= b), ("__eq__", lambda a, b: a == b), ("__ne__", lambda a, b: a != b)]
    for dunder, op in comparisons:
        rows.append(Row(f"Tensor.{dunder}", lambda L, a, b, op=op: op(a, b), _ints_pair(), covers=(f"Tensor.{dunder}",),
                        modes=FORWARD))
        rows.append(Row(f"Tensor.{dunder}.scalar", lambda L, a, s, op=op: op(a, s),
                        with_scalar(st.sampled_from([0.0, 1, -0.5])), covers=(f"Tensor.{dunder}",), modes=FORWARD))
    return rows


@st.composite
def _where_case(draw):
    from hypothesis.extra import numpy as hnp

    bs = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, min_side=0, max_side=3))
    c, a, b = bs.input_shapes
    return Case((values(draw, c) > 0, values(draw, a), values(draw, b)), {}, (1, 2))


# --------------------------------------------------------------------------- matmul
@st.composite
def matmul_case(draw):
    """1-D x 1-D, 2-D x 1-D, 1-D x 2-D, 2-D x 2-D and broadcast batches (size-0 dims included)."""
    n, k, m = draw(st.integers(0, 3)), draw(st.integers(1, 3)), draw(st.integers(0, 3))
    kind = draw(st.sampled_from(["vv", "mv", "vm", "mm", "batched"]))
    if kind == "vv":
        a, b = (k,), (k,)
    elif kind == "mv":
        a, b = (n, k), (k,)
    elif kind == "vm":
        a, b = (k,), (k, m)
    elif kind == "mm":
        a, b = (n, k), (k, m)
    else:
        batch = draw(shapes(1, 2, 1, 3))
        other = tuple(1 if draw(st.booleans()) else s for s in batch)[draw(st.integers(0, len(batch))):]
        a, b = (batch + (n, k), other + (k, m)) if draw(st.booleans()) else (other + (n, k), batch + (k, m))
    return Case((values(draw, a), values(draw, b)), {}, (0, 1))


MATMUL = [
    Row("Tensor.__matmul__", lambda L, a, b: a @ b, matmul_case(), covers=("Tensor.__matmul__",)),
    Row("Tensor.__rmatmul__", lambda L, a, b: b.__rmatmul__(a), matmul_case(), covers=("Tensor.__rmatmul__",)),
    Row("F.matmul", functional("matmul"), matmul_case(), covers=("F.matmul",)),
    Row("Tensor.matmul", lambda L, a, b: a.matmul(b), matmul_case(), covers=("Tensor.matmul",)),
]


def rows():
    return _unary_rows() + ACTIVATIONS + _binary_rows() + MATMUL
