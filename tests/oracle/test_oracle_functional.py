"""minivae.autograd.functional (vjp, jvp, jacobian, hessian, hvp, vhp) against torch.autograd.functional, on
scalar and vector functions of 0-d and 1-d inputs through the ops whose second derivatives on 0-d tensors were
once wrong (exp, tanh, sigmoid, pow, div), in float64 to 1e-10; both of minivae's jacobian/hessian strategies."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.autograd.functional as TAF
from oracle_harness import MV, TORCH, _host, assert_same

import minivae as mv
import minivae.autograd.functional as MAF

R = np.random.default_rng(11)

# f(L, x, y) -> a scalar (0-d) tensor; g(L, x, y) -> a vector
SCALAR = {
    "exp": lambda L, x, y: (x.exp() * y).sum(),
    "tanh": lambda L, x, y: (x.tanh() * y.tanh()).sum(),
    "sigmoid": lambda L, x, y: (x.sigmoid() + y.sigmoid() * x).sum(),
    "pow": lambda L, x, y: (x ** 3 + y.abs() ** x).sum(),
    "div": lambda L, x, y: (x / (y * y + 1.0)).sum(),
    "log_softmax": lambda L, x, y: L.F.log_softmax(x.reshape(-1) * y.sum(), dim=0).sum(),
}
VECTOR = {
    "exp_tanh": lambda L, x, y: (x.exp() * y.tanh()).reshape(-1),
    "pow_div": lambda L, x, y: (x ** 2 / (y.abs() + 1.0)).reshape(-1),
}
SHAPES = {"0d": (), "1d": (3,)}


def _inputs(shape):
    return R.standard_normal(shape) * 0.7, R.standard_normal(shape) * 0.7 + 0.3


def _pair(L, arrays, requires_grad=False):
    return tuple(L.tensor(np.array(a), requires_grad=requires_grad) for a in arrays)


def _same(got, want):
    flat = lambda r: [t for x in (r if isinstance(r, tuple) else (r,))  # noqa: E731
                      for t in (x if isinstance(x, tuple) else (x,))]
    assert_same("functional", flat(got), flat(want), "float64", rand={"u": [], "t": [_host(t) for t in flat(want)]})


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
@pytest.mark.parametrize("name", SCALAR, ids=list(SCALAR))
def test_hessian_hvp_vhp_of_scalar_functions(name, shape):
    f = SCALAR[name]
    arrays = _inputs(SHAPES[shape])
    v = tuple(R.standard_normal(SHAPES[shape]) for _ in range(2))
    mx, tx = _pair(MV, arrays), _pair(TORCH, arrays)
    mv_f = lambda *xs: f(MV, *xs)  # noqa: E731
    t_f = lambda *xs: f(TORCH, *xs)  # noqa: E731
    _same(MAF.hvp(mv_f, mx, _pair(MV, v))[1], TAF.hvp(t_f, tx, _pair(TORCH, v))[1])
    _same(MAF.vhp(mv_f, mx, _pair(MV, v))[1], TAF.vhp(t_f, tx, _pair(TORCH, v))[1])
    want = TAF.hessian(t_f, tx)
    for strategy in ("reverse-mode", "forward-mode"):
        _same(MAF.hessian(mv_f, mx, outer_jacobian_strategy=strategy), want)
    _same(MAF.vjp(mv_f, mx)[1], TAF.vjp(t_f, tx)[1])


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
@pytest.mark.parametrize("name", VECTOR, ids=list(VECTOR))
def test_jacobian_jvp_vjp_of_vector_functions(name, shape):
    g = VECTOR[name]
    arrays = _inputs(SHAPES[shape])
    n = int(np.prod(SHAPES[shape], dtype=int))
    mx, tx = _pair(MV, arrays), _pair(TORCH, arrays)
    mv_g = lambda *xs: g(MV, *xs)  # noqa: E731
    t_g = lambda *xs: g(TORCH, *xs)  # noqa: E731
    want = TAF.jacobian(t_g, tx)
    for strategy in ("reverse-mode", "forward-mode"):
        _same(MAF.jacobian(mv_g, mx, strategy=strategy), want)
    t = tuple(R.standard_normal(SHAPES[shape]) for _ in range(2))
    u = R.standard_normal((n,))
    _same(MAF.jvp(mv_g, mx, _pair(MV, t))[1], TAF.jvp(t_g, tx, _pair(TORCH, t))[1])
    _same(MAF.vjp(mv_g, mx, mv.tensor(u))[1], TAF.vjp(t_g, tx, torch.tensor(u))[1])
