"""The oracle's table, part 3: softmax and the losses, linear and the convolutions, the VAE ops (checked
against their formulas written with PyTorch), casts, factories and in-place ops."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from oracle_harness import Case
from oracle_inputs import shapes, values
from oracle_rows import FIRST, FORWARD, Row

REDUCTION = st.sampled_from([{}, {"reduction": "mean"}, {"reduction": "sum"}, {"reduction": "none"}])


@st.composite
def _softmax_case(draw):
    shape = draw(shapes(0, 3, 0, 4))
    n = max(len(shape), 1)
    return Case((values(draw, shape, "wide"),), {"dim": draw(st.integers(-n, n - 1))})


@st.composite
def _class_case(draw, probs=False, log_probs=False):
    """Logits ``(N, C)`` or ``(C,)`` and class indices ``(N,)`` / ``()`` (or class probabilities)."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batched = draw(st.booleans())
    shape = (n, c) if batched else (c,)
    x = values(draw, shape)
    if log_probs:
        x = x - np.log(np.exp(x).sum(-1, keepdims=True))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    if probs:
        p = rng.random(shape) + 0.1
        target = p / p.sum(-1, keepdims=True)
    else:
        target = rng.integers(0, c, shape[:-1]).astype(np.int64)
    return Case((x, target), draw(REDUCTION), (0,))


@st.composite
def _pair_case(draw, domain_a="real", domain_b="real", gap=False, min_dims=0, reductions=REDUCTION, diff=(0, 1)):
    shape = draw(shapes(min_dims, 3, 0 if min_dims == 0 else 1, 4))
    a = values(draw, shape, domain_a)
    b = a + values(draw, shape, "away0") if gap else values(draw, shape, domain_b)
    return Case((a, b), draw(reductions), diff)


_KL_RED = st.sampled_from([{}, {"reduction": "sum"}, {"reduction": "none"}, {"reduction": "batchmean"},
                           {"reduction": "mean", "log_target": True}, {"reduction": "batchmean", "log_target": True}])


@st.composite
def _kl_case(draw):
    shape = draw(shapes(1, 3, 1, 4))
    logq = values(draw, shape)
    kw = draw(_KL_RED)
    p = values(draw, shape, "unit")
    return Case((logq, np.log(p) if kw.get("log_target") else p), kw, (0, 1))


LOSSES = [
    Row("F.softmax", lambda L, x, dim: L.F.softmax(x, dim=dim), _softmax_case(), covers=("F.softmax",)),
    Row("F.log_softmax", lambda L, x, dim: L.F.log_softmax(x, dim=dim), _softmax_case(), covers=("F.log_softmax",)),
    Row("Tensor.softmax", lambda L, x, dim: x.softmax(dim), _softmax_case(), covers=("Tensor.softmax",)),
    Row("Tensor.log_softmax", lambda L, x, dim: x.log_softmax(dim), _softmax_case(), covers=("Tensor.log_softmax",)),
    Row("F.cross_entropy", lambda L, x, t, **k: L.F.cross_entropy(x, t, **k), _class_case(),
        covers=("F.cross_entropy",)),
    Row("F.cross_entropy.probs", lambda L, x, t, **k: L.F.cross_entropy(x, t, **k), _class_case(probs=True),
        covers=("F.cross_entropy",)),
    Row("F.nll_loss", lambda L, x, t, **k: L.F.nll_loss(x, t, **k), _class_case(log_probs=True),
        covers=("F.nll_loss",)),
    Row("F.mse_loss", lambda L, a, b, **k: L.F.mse_loss(a, b, **k), _pair_case(), covers=("F.mse_loss",)),
    Row("F.l1_loss", lambda L, a, b, **k: L.F.l1_loss(a, b, **k), _pair_case(gap=True), covers=("F.l1_loss",)),
    Row("F.kl_div", lambda L, a, b, **k: L.F.kl_div(a, b, **k), _kl_case(), covers=("F.kl_div",)),
    Row("F.binary_cross_entropy", lambda L, p, t, **k: L.F.binary_cross_entropy(p, t, **k),
        _pair_case("unit", "unit"), covers=("F.binary_cross_entropy",)),
    Row("F.binary_cross_entropy_with_logits", lambda L, x, t, **k: L.F.binary_cross_entropy_with_logits(x, t, **k),
        _pair_case("wide", "unit"), covers=("F.binary_cross_entropy_with_logits",)),
]


# --------------------------------------------------------------------------- VAE ops, against their formulas
def _gaussian_nll_torch(L, x, t, sigma=1.0):
    d = int(np.prod(x.shape[1:]))
    return ((t - x) ** 2).reshape(x.shape[0], -1).sum(1) * (0.5 / sigma ** 2) + 0.5 * d * math.log(
        2 * math.pi * sigma ** 2)


def _kl_torch(L, mu, logvar):
    return 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(1)


@st.composite
def _latent_case(draw, n_args=2, sigma=False):
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)))
    kw = {"sigma": draw(st.sampled_from([1.0, 0.5]))} if sigma else {}
    return Case(tuple(values(draw, shape) for _ in range(n_args)), kw, tuple(range(n_args)))


@st.composite
def _image_pair(draw):
    shape = (draw(st.integers(1, 3)),) + draw(shapes(1, 3, 1, 3))
    return Case((values(draw, shape), values(draw, shape)), {"sigma": draw(st.sampled_from([1.0, 0.5]))}, (0, 1))


VAE = [
    Row("F.gaussian_nll", lambda L, x, t, **k: L.F.gaussian_nll(x, t, **k), _image_pair(), covers=("F.gaussian_nll",),
        torch_fn=_gaussian_nll_torch),
    Row("F.kl_normal", lambda L, mu, lv: L.F.kl_normal(mu, lv), _latent_case(), covers=("F.kl_normal",),
        torch_fn=_kl_torch),
    Row("F.reparameterize_kl", lambda L, mu, lv, eps: L.F.reparameterize_kl(mu, lv, eps), _latent_case(3),
        covers=("F.reparameterize_kl",),
        torch_fn=lambda L, mu, lv, eps: (mu + (0.5 * lv).exp() * eps, _kl_torch(L, mu, lv))),
]


# --------------------------------------------------------------------------- linear and convolutions
@st.composite
def _linear_case(draw):
    batch = draw(shapes(0, 2, 0, 3))
    i, o = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    args = (values(draw, batch + (i,)), values(draw, (o, i)))
    if draw(st.booleans()):
        args += (values(draw, (o,)),)
    return Case(args, {}, tuple(range(len(args))))


@st.composite
def _conv_case(draw, transpose=False):
    n, ci, co = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.sampled_from([1, 2, (2, 1)]))
    padding = draw(st.sampled_from([0, 1, (1, 0)]))
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    h = draw(st.integers(max(1, kh - 2 * ph), 5))
    w = draw(st.integers(max(1, kw - 2 * pw), 5))
    kwargs = {"stride": stride, "padding": padding}
    if transpose:
        op = draw(st.sampled_from([0, (sh - 1, sw - 1)]))
        oh, ow = (op, op) if isinstance(op, int) else op
        if (h - 1) * sh - 2 * ph + kh + oh < 1 or (w - 1) * sw - 2 * pw + kw + ow < 1:
            kwargs["padding"] = 0
        kwargs["output_padding"] = op
        weight = (ci, co, kh, kw)
    else:
        weight = (co, ci, kh, kw)
    args = (values(draw, (n, ci, h, w)), values(draw, weight))
    if draw(st.booleans()):
        args += (values(draw, (co,)),)
    return Case(args, kwargs, tuple(range(len(args))))


LAYERS = [
    Row("F.linear", lambda L, *a: L.F.linear(*a), _linear_case(), covers=("F.linear",)),
    Row("F.conv2d", lambda L, *a, **k: L.F.conv2d(*a, **k), _conv_case(), covers=("F.conv2d",), examples=4),
    Row("F.conv_transpose2d", lambda L, *a, **k: L.F.conv_transpose2d(*a, **k), _conv_case(transpose=True),
        covers=("F.conv_transpose2d",), examples=4),
]


# --------------------------------------------------------------------------- casts
@st.composite
def _cast_case(draw):
    shape = draw(shapes(0, 3, 0, 3))
    return Case((values(draw, shape), draw(st.sampled_from(["float32", "float64"]))), {})


CASTS = [
    Row("F.cast", lambda L, x, dt: L.F.cast(x, dt), _cast_case(), covers=("F.cast",),
        torch_fn=lambda L, x, dt: x.to(getattr(L.T, dt))),
    Row("Tensor.astype", lambda L, x, dt: x.astype(dt), _cast_case(), covers=("Tensor.astype",),
        torch_fn=lambda L, x, dt: x.to(getattr(L.T, dt))),
    Row("Tensor.to.dtype", lambda L, x, dt: x.to(getattr(L, dt)), _cast_case(), covers=("Tensor.to",)),
    Row("Tensor.float", lambda L, x: x.float(), _softmax_case().map(lambda c: Case(c.args, {})),
        covers=("Tensor.float",)),
    Row("Tensor.double", lambda L, x: x.double(), _softmax_case().map(lambda c: Case(c.args, {})),
        covers=("Tensor.double",)),
]


# --------------------------------------------------------------------------- factories (no tensor input)
def _factory(name, *calls):
    """Rows of ``L.T.name(*args, **kwargs)`` over fixed calls; a kwarg ``dtype`` is a dtype's name."""
    def fn(L, args, kw):
        kw = dict(kw)
        if "dtype" in kw:
            kw["dtype"] = getattr(L, kw["dtype"])
        return getattr(L.T, name)(*args, **kw)
    return Row(f"mv.{name}", fn, st.sampled_from([Case((a, k), {}, ()) for a, k in calls]), covers=(f"mv.{name}",),
               modes=FORWARD, dtypes=("float64",))


def _like(name, *extra):
    return Row(f"mv.{name}", lambda L, x, *a: getattr(L.T, name)(x, *a),
               st.builds(lambda s, v: Case((np.zeros(s),) + extra, {}, ()), shapes(0, 3, 0, 3), st.just(0)),
               covers=(f"mv.{name}",), modes=FORWARD)


FACTORIES = [
    _factory("tensor", (([1.0, 2.5],), {}), (([1, 2],), {}), ((3.5,), {}), ((True,), {}),
             (([[1.0, 2.0]],), {"dtype": "float64"}), ((2,), {"dtype": "float32"})),
    _factory("zeros", ((2, 3), {}), (((2, 3),), {}), ((0,), {}), (((),), {}), (((2,),), {"dtype": "float64"})),
    _factory("ones", ((2, 3), {}), (((1, 4),), {"dtype": "float64"}), ((0, 2), {})),
    _factory("full", (((2, 2), 1.5), {}), (((3,), 7), {}), (((2,), True), {}), (((2,), 2.0), {"dtype": "float64"})),
    _factory("arange", ((5,), {}), ((1, 4), {}), ((0, 1, 0.25), {}), ((0.0, 1.0, 0.3), {"dtype": "float64"}),
             ((5, 0, -2), {})),
    _factory("linspace", ((0, 1, 5), {}), ((-1.0, 1.0, 1), {}), ((2, 3, 4), {"dtype": "float64"})),
    _factory("eye", ((3,), {}), ((2, 3), {}), ((2,), {"dtype": "float64"})),
    _like("zeros_like"), _like("ones_like"), _like("full_like", 2.5),
]


# --------------------------------------------------------------------------- in-place ops
@st.composite
def _inplace_pair(draw, domain_b="real"):
    """``x`` and a ``y`` that broadcasts to ``x``'s shape (in-place results keep ``x``'s shape)."""
    shape = draw(shapes(0, 3, 0, 3))
    k = draw(st.integers(0, len(shape)))
    other = tuple(1 if draw(st.booleans()) else n for n in shape[k:])
    return Case((values(draw, shape), values(draw, other, domain_b)), {}, (0, 1))


def _inplace(op):
    def fn(L, x, *a):
        y = x * 1.0  # a non-leaf copy: in-place on it is differentiable, as in PyTorch
        out = op(y, *a)
        assert out is y, "an in-place op returns the tensor it modified"
        return y
    return fn


def _iop(op):
    def fn(L, x, *a):
        y = x * 1.0
        y = op(y, *a)
        return y
    return fn


def _iadd(y, b):
    y += b
    return y


def _isub(y, b):
    y -= b
    return y


def _imul(y, b):
    y *= b
    return y


def _idiv(y, b):
    y /= b
    return y


INPLACE = [
    Row("Tensor.add_", _inplace(lambda y, b: y.add_(b)), _inplace_pair(), covers=("Tensor.add_",), modes=FIRST),
    Row("Tensor.sub_", _inplace(lambda y, b: y.sub_(b)), _inplace_pair(), covers=("Tensor.sub_",), modes=FIRST),
    Row("Tensor.mul_", _inplace(lambda y, b: y.mul_(b)), _inplace_pair(), covers=("Tensor.mul_",), modes=FIRST),
    Row("Tensor.div_", _inplace(lambda y, b: y.div_(b)), _inplace_pair("away0"), covers=("Tensor.div_",),
        modes=FIRST),
    Row("Tensor.copy_", _inplace(lambda y, b: y.copy_(b)), _inplace_pair(), covers=("Tensor.copy_",), modes=FIRST),
    Row("Tensor.zero_", _inplace(lambda y: y.zero_()), _softmax_case().map(lambda c: Case(c.args, {})),
        covers=("Tensor.zero_",), modes=FIRST),
    Row("Tensor.fill_", _inplace(lambda y, v: y.fill_(v)),
        _softmax_case().map(lambda c: Case(c.args + (1.25,), {})), covers=("Tensor.fill_",), modes=FIRST),
    Row("Tensor.clamp_", _inplace(lambda y, lo, hi: y.clamp_(lo, hi)),
        _softmax_case().map(lambda c: Case(c.args + (-0.5, 0.7), {})), covers=("Tensor.clamp_",), modes=FIRST),
    Row("Tensor.__iadd__", _iop(_iadd), _inplace_pair(), covers=("Tensor.__iadd__",), modes=FIRST),
    Row("Tensor.__isub__", _iop(_isub), _inplace_pair(), covers=("Tensor.__isub__",), modes=FIRST),
    Row("Tensor.__imul__", _iop(_imul), _inplace_pair(), covers=("Tensor.__imul__",), modes=FIRST),
    Row("Tensor.__itruediv__", _iop(_idiv), _inplace_pair("away0"), covers=("Tensor.__itruediv__",), modes=FIRST),
]


def rows():
    return LOSSES + VAE + LAYERS + CASTS + FACTORIES + INPLACE
