"""The oracle's table, part 5: the functional twins of Tensor methods (``F.var(x, dim=1)`` is ``x.var(dim=1)``),
methods that alias other ops (``clip``, ``eq``, ``view_as``, ``long``...), ``gather`` and ``index_put``.

A twin row reuses its method row's inputs and function: the tensor the method is called on is wrapped so that
``x.name(...)`` becomes ``L.F.name(x, ...)``. PyTorch keeps most twins in ``torch`` (``torch.var``); where it has
none (``view``, ``expand``, ``repeat``) the method is PyTorch's side.
"""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st
from oracle_harness import Case
from oracle_inputs import binary, shapes, tensors_along, unary, unary_kw, values
from oracle_rows import FORWARD, Row, _ints_pair, _where_case
from oracle_rows_shape import _perm_case

TWINS = ["var", "std", "prod", "norm", "max", "min", "amax", "amin", "argmax", "argmin", "logsumexp", "view", "t",
         "squeeze", "unsqueeze", "flatten", "unflatten", "expand", "repeat", "chunk"]


class _Via:
    """``x`` whose method ``name`` is called as the functional ``L.F.name(x, ...)``."""

    def __init__(self, L, x, name):
        self._L, self._x, self._name = L, x, name

    def __getattr__(self, attr):
        if attr != self._name:
            return getattr(self._x, attr)
        if self._L.name == "torch" and not hasattr(torch, attr):
            return getattr(self._x, attr)  # PyTorch has only the method (view, expand, repeat)
        return lambda *a, **k: getattr(self._L.F, attr)(self._x, *a, **k)


def twin_rows(method_rows):
    rows = []
    for row in method_rows:
        name = row.name.split(".")[1]
        if not row.name.startswith("Tensor.") or name not in TWINS:
            continue
        rows.append(Row(f"F.{row.name[len('Tensor.'):]}", lambda L, x, *a, _fn=row.fn, _n=name, **k:
                        _fn(L, _Via(L, x, _n), *a, **k), row.gen, covers=(f"F.{name}",), modes=row.modes,
                        layouts=row.layouts, examples=row.examples))
    return rows


@st.composite
def _gather_case(draw):
    shape = draw(shapes(1, 3, 1, 4))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    ishape = tuple(draw(st.integers(0, 3)) if d == dim % len(shape) else draw(st.integers(0, n))
                   for d, n in enumerate(shape))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    index = rng.integers(0, shape[dim], ishape).astype(np.int64)
    return Case((values(draw, shape), dim, index), {})


@st.composite
def _index_put_case(draw):
    """Distinct int64 indices on dim 0 (PyTorch's non-accumulating index_put is unordered on repeats)."""
    shape = draw(shapes(1, 3, 1, 4))
    k = draw(st.integers(0, shape[0]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    index = rng.permutation(shape[0])[:k].astype(np.int64)
    return Case((values(draw, shape), index, values(draw, (k,) + shape[1:])), {}, (0, 2))


_CLAMP = st.sampled_from([{"min": -0.5}, {"max": 0.3}, {"min": -0.7, "max": 0.6}])
_CASTS = [("long", "int64"), ("int", "int32"), ("bool", "bool"), ("half", "float16")]

OTHERS = [
    Row("F.clamp", lambda L, x, **k: L.F.clamp(x, **k), unary_kw(_CLAMP), covers=("F.clamp",)),
    Row("F.permute", lambda L, x, p: L.F.permute(x, p), _perm_case(), covers=("F.permute",)),
    Row("F.clip", lambda L, x, **k: L.F.clip(x, **k), unary_kw(_CLAMP), covers=("F.clip",)),
    Row("Tensor.clip", lambda L, x, **k: x.clip(**k), unary_kw(_CLAMP), covers=("Tensor.clip",)),
    Row("F.maximum", lambda L, a, b: L.F.maximum(a, b), binary(), covers=("F.maximum",)),
    Row("F.minimum", lambda L, a, b: L.F.minimum(a, b), binary(), covers=("F.minimum",)),
    Row("F.where", lambda L, c, a, b: L.F.where(c, a, b), _where_case(), covers=("F.where",)),
    Row("Tensor.where", lambda L, c, a, b: a.where(c, b), _where_case(), covers=("Tensor.where",)),
    Row("F.stack", lambda L, xs, dim: L.F.stack(xs, dim=dim),
        tensors_along(same_shape=True, min_dims=0),
        covers=("F.stack",)),
    Row("Tensor.__pos__", lambda L, x: +x, unary(), covers=("Tensor.__pos__",)),
    Row("Tensor.view_as", lambda L, x, o: x.view_as(o), unary().map(lambda c: Case(c.args + (np.zeros(
        c.args[0].size),), {}, (0,))), covers=("Tensor.view_as",), layouts=("C",)),
    Row("Tensor.reshape_as", lambda L, x, o: x.reshape_as(o), unary().map(lambda c: Case(c.args + (np.zeros(
        (c.args[0].size, 1)),), {}, (0,))), covers=("Tensor.reshape_as",)),
    Row("Tensor.type_as", lambda L, x, o: x.type_as(o), unary().map(lambda c: Case(c.args + (np.zeros(2, np.int64),),
                                                                               {}, (0,))),
        covers=("Tensor.type_as",), modes=FORWARD),
    Row("Tensor.any", lambda L, x, **k: (x > 0.5).any(**k), unary_kw(st.sampled_from([{}, {"dim": 0}])),
        covers=("Tensor.any",), modes=FORWARD),
    Row("Tensor.all", lambda L, x, **k: (x > -1.0).all(**k), unary_kw(st.sampled_from([{}, {"dim": 0}])),
        covers=("Tensor.all",), modes=FORWARD),
    Row("Tensor.gather", lambda L, x, d, i: x.gather(d, i), _gather_case(), covers=("Tensor.gather",)),
    Row("F.gather", lambda L, x, d, i: L.F.gather(x, d, i), _gather_case(), covers=("F.gather",)),
    Row("F.index_put", lambda L, x, i, v: L.F.index_put(x, i, v), _index_put_case(), covers=("F.index_put",),
        torch_fn=lambda L, x, i, v: torch.index_put(x, (i,), v)),
]
for _name, _dt in _CASTS:
    OTHERS.append(Row(f"Tensor.{_name}", lambda L, x, _n=_name: getattr(x, _n)(), unary("wide"),
                      covers=(f"Tensor.{_name}",), modes=FORWARD))
for _op in ("eq", "ne", "lt", "le", "gt", "ge"):
    OTHERS.append(Row(f"F.{_op}", lambda L, a, b, _op=_op: getattr(L.F, _op)(a, b), _ints_pair(),
                      covers=(f"F.{_op}",), modes=FORWARD))
    OTHERS.append(Row(f"Tensor.{_op}", lambda L, a, b, _op=_op: getattr(a, _op)(b), _ints_pair(),
                      covers=(f"Tensor.{_op}",), modes=FORWARD))


def rows(method_rows):
    return twin_rows(method_rows) + OTHERS
