"""Property tests (hypothesis) for the engine: broadcasting and ``sum_to``, reshape/transpose round trips,
gradient accumulation, and that no op of ``minivae.functional`` mutates its inputs or its upstream gradient.

References are computed independently of the engine: a broadcast gradient is a ``np.bincount`` of the
upstream gradient over the index of the input element each output element came from.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minivae as mv
import minivae.functional as F
from minivae import kernels
from minivae.ops.broadcast import sum_to

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def leaf(a):
    return mv.Tensor(np.array(a, dtype=np.float64), requires_grad=True)


# --------------------------------------------------------------------------- strategies


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast together: each drops some leading axes of a common shape and sets some
    of its remaining axes to 1."""
    full = draw(st.lists(st.integers(1, 4), min_size=0, max_size=4))

    def derive():
        drop = draw(st.integers(0, len(full)))
        kept = full[drop:]
        ones = draw(st.lists(st.booleans(), min_size=len(kept), max_size=len(kept)))
        return tuple(1 if o else n for n, o in zip(kept, ones))

    return derive(), derive()


def broadcast_grad_reference(g, shape):
    """``sum_to(g, shape)`` computed independently: every element of ``g`` is added to the element of the
    ``shape`` array that broadcasting copied into its position."""
    size = int(np.prod(shape, dtype=np.int64))
    source = np.broadcast_to(np.arange(size).reshape(shape), g.shape)
    return np.bincount(source.ravel(), weights=g.ravel(), minlength=size).reshape(shape)


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)
seeds = st.integers(0, 2 ** 32 - 1)


# --------------------------------------------------------------------------- broadcasting and sum_to


@PROPS
@given(broadcast_pair(), seeds)
def test_add_and_mul_gradients_are_summed_over_broadcast_axes(pair, seed):
    sa, sb = pair
    out_shape = np.broadcast_shapes(sa, sb)
    rng = np.random.default_rng(seed)
    a_np, b_np, w = rng.standard_normal(sa), rng.standard_normal(sb), rng.standard_normal(out_shape)
    for op in ("add", "mul"):
        a, b = leaf(a_np), leaf(b_np)
        y = getattr(F, op)(a, b)
        assert y.shape == out_shape
        (y * mv.Tensor(w)).sum().backward()
        assert a.grad.shape == sa and b.grad.shape == sb
        ga = w if op == "add" else w * np.broadcast_to(b_np, out_shape)
        gb = w if op == "add" else w * np.broadcast_to(a_np, out_shape)
        np.testing.assert_allclose(a.grad.detach().numpy(), broadcast_grad_reference(ga, sa), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(b.grad.detach().numpy(), broadcast_grad_reference(gb, sb), rtol=1e-12, atol=1e-12)


@PROPS
@given(broadcast_pair(), seeds)
def test_sum_to_is_the_adjoint_of_broadcasting(pair, seed):
    small, _ = pair
    big = np.broadcast_shapes(*pair)
    rng = np.random.default_rng(seed)
    # summing the broadcast of ones counts how many output elements each input element feeds
    ones = sum_to(np.ones(big), small)
    assert ones.shape == small
    np.testing.assert_array_equal(ones, np.full(small, np.prod(big) / np.prod(small)))
    np.testing.assert_array_equal(ones, broadcast_grad_reference(np.ones(big), small))
    g, v = rng.standard_normal(big), rng.standard_normal(small)
    out = sum_to(g, small)
    np.testing.assert_allclose(out, broadcast_grad_reference(g, small), rtol=1e-12, atol=1e-12)
    # <sum_to(g), v> == <g, broadcast_to(v)>
    np.testing.assert_allclose((out * v).sum(), (g * np.broadcast_to(v, big)).sum(), rtol=1e-10, atol=1e-12)
    # the differentiable broadcast_to has sum_to as its gradient
    x = leaf(v)
    F.broadcast_to(x, big).backward(g)
    np.testing.assert_allclose(x.grad.detach().numpy(), out, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- reshape / transpose


@st.composite
def shape_and_reshape(draw):
    shape = draw(shapes)
    dims = list(shape)
    kind = draw(st.sampled_from(["permute", "flatten", "merge", "unsqueeze"]))
    if kind == "permute":
        target = tuple(draw(st.permutations(dims)))
    elif kind == "flatten":
        target = (-1,)
    elif kind == "merge" and len(dims) > 1:
        i = draw(st.integers(0, len(dims) - 2))
        target = tuple(dims[:i] + [dims[i] * dims[i + 1]] + dims[i + 2:])
    else:
        i = draw(st.integers(0, len(dims)))
        target = tuple(dims[:i] + [1] + dims[i:])
    return shape, target


@PROPS
@given(shape_and_reshape(), seeds)
def test_reshape_round_trip_and_gradient(case, seed):
    shape, target = case
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(shape)
    y_shape = x_np.reshape(target).shape
    w = rng.standard_normal(y_shape)
    x = leaf(x_np)
    y = F.reshape(x, target)
    assert y.shape == y_shape
    np.testing.assert_array_equal(y.detach().numpy(), x_np.reshape(target))
    (y * mv.Tensor(w)).sum().backward()  # gradient of sum(w * reshape(x)) is reshape^T(w)
    np.testing.assert_array_equal(x.grad.detach().numpy(), w.reshape(shape))
    x2 = leaf(x_np)
    back = F.reshape(F.reshape(x2, target), shape)
    np.testing.assert_array_equal(back.detach().numpy(), x_np)
    w2 = rng.standard_normal(shape)
    (back * mv.Tensor(w2)).sum().backward()
    np.testing.assert_array_equal(x2.grad.detach().numpy(), w2)


@st.composite
def shape_and_permutation(draw):
    shape = draw(shapes)
    return shape, tuple(draw(st.permutations(range(len(shape)))))


@PROPS
@given(shape_and_permutation(), seeds)
def test_transpose_round_trip_and_gradient(case, seed):
    shape, perm = case
    inverse = tuple(int(i) for i in np.argsort(perm))
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(shape)
    w = rng.standard_normal(x_np.transpose(perm).shape)
    x = leaf(x_np)
    y = F.permute(x, perm)
    np.testing.assert_array_equal(y.detach().numpy(), x_np.transpose(perm))
    (y * mv.Tensor(w)).sum().backward()  # transpose^T(w) is w transposed by the inverse permutation
    np.testing.assert_array_equal(x.grad.detach().numpy(), w.transpose(inverse))
    x2 = leaf(x_np)
    back = F.permute(F.permute(x2, perm), inverse)
    np.testing.assert_array_equal(back.detach().numpy(), x_np)
    w2 = rng.standard_normal(shape)
    (back * mv.Tensor(w2)).sum().backward()
    np.testing.assert_array_equal(x2.grad.detach().numpy(), w2)
    # negative axes mean the same permutation
    x3 = leaf(x_np)
    y3 = F.permute(x3, tuple(p - len(perm) for p in perm))
    np.testing.assert_array_equal(y3.detach().numpy(), x_np.transpose(perm))


# --------------------------------------------------------------------------- gradient accumulation


@PROPS
@given(shapes, seeds, st.integers(2, 5))
def test_gradients_of_a_tensor_used_several_times_are_summed(shape, seed, k):
    rng = np.random.default_rng(seed)
    x_np, w = rng.standard_normal(shape), rng.standard_normal(shape)
    W = mv.Tensor(w)

    x = leaf(x_np)
    (x * x * W).sum().backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), 2 * x_np * w, rtol=1e-12)

    x = leaf(x_np)
    y = x
    for _ in range(k - 1):  # x + x + ... + x, k terms
        y = y + x
    (y * W).sum().backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), k * w, rtol=1e-12)

    x = leaf(x_np)  # two branches that meet again: y = exp(x) * sin-free polynomial branch
    a = x.exp()
    b = x * x * x
    (W * (a + b) + a * b).sum().backward()
    e = np.exp(x_np)
    expected = w * (e + 3 * x_np ** 2) + e * x_np ** 3 + e * 3 * x_np ** 2
    np.testing.assert_allclose(x.grad.detach().numpy(), expected, rtol=1e-10, atol=1e-12)

    x = leaf(x_np)  # a shared intermediate used by k consumers
    h = x * 2.0
    total = h
    for _ in range(k - 1):
        total = total + h * h
    (total * W).sum().backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), w * (2 + (k - 1) * 2 * (2 * x_np) * 2), rtol=1e-10, atol=1e-12)


@PROPS
@given(broadcast_pair(), seeds)
def test_accumulation_through_broadcasting_and_two_backward_calls(pair, seed):
    sa, sb = pair
    out_shape = np.broadcast_shapes(sa, sb)
    rng = np.random.default_rng(seed)
    a_np, w = rng.standard_normal(sa), rng.standard_normal(out_shape)
    a = leaf(a_np)
    b = mv.Tensor(rng.standard_normal(sb))
    y = a * b + a  # a reaches y twice, both times broadcast
    y.backward(w, retain_graph=True)
    expected = broadcast_grad_reference(w * np.broadcast_to(b.data, out_shape) + w, sa)
    np.testing.assert_allclose(a.grad.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    y.backward(w)  # a second backward adds to .grad
    np.testing.assert_allclose(a.grad.detach().numpy(), 2 * expected, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- no op mutates its inputs


def _pos(rng, shape, dtype):
    return (rng.random(shape) + 0.5).astype(dtype)


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


#: op name -> (make(rng, dtype) -> list of input arrays, call(tensors) -> Tensor or tuple of Tensors).
#: Non-tensor arguments (an index array, sizes) are returned as extra inputs and checked too.
CASES = {
    "relu": (lambda r, d: [_rand(r, (3, 4), d)], lambda t: F.relu(t[0])),
    "sigmoid": (lambda r, d: [_rand(r, (3, 4), d)], lambda t: F.sigmoid(t[0])),
    "softplus": (lambda r, d: [_rand(r, (3, 4), d)], lambda t: F.softplus(t[0])),
    "tanh": (lambda r, d: [_rand(r, (3, 4), d)], lambda t: F.tanh(t[0])),
    "conv2d": (lambda r, d: [_rand(r, (2, 3, 7, 6), d), _rand(r, (4, 3, 3, 3), d), _rand(r, (4,), d)],
               lambda t: F.conv2d(t[0], t[1], t[2], stride=2, padding=1)),
    "conv_transpose2d": (lambda r, d: [_rand(r, (2, 3, 4, 5), d), _rand(r, (3, 2, 3, 3), d), _rand(r, (2,), d)],
                         lambda t: F.conv_transpose2d(t[0], t[1], t[2], stride=2, padding=1, output_padding=1)),
    "add": (lambda r, d: [_rand(r, (3, 4), d), _rand(r, (4,), d)], lambda t: F.add(t[0], t[1])),
    "sub": (lambda r, d: [_rand(r, (3, 1), d), _rand(r, (3, 4), d)], lambda t: F.sub(t[0], t[1])),
    "mul": (lambda r, d: [_rand(r, (3, 4), d), _rand(r, (1, 4), d)], lambda t: F.mul(t[0], t[1])),
    "div": (lambda r, d: [_rand(r, (3, 4), d), _pos(r, (4,), d)], lambda t: F.div(t[0], t[1])),
    "pow": (lambda r, d: [_pos(r, (3, 4), d), _rand(r, (3, 4), d)], lambda t: F.pow(t[0], t[1])),
    "neg": (lambda r, d: [_rand(r, (3, 4), d)], lambda t: F.neg(t[0])),
    "exp": (lambda r, d: [_rand(r, (3, 4), d)], lambda t: F.exp(t[0])),
    "log": (lambda r, d: [_pos(r, (3, 4), d)], lambda t: F.log(t[0])),
    "cast": (lambda r, d: [_rand(r, (3, 4), d)],
             lambda t: F.cast(t[0], np.float64 if t[0].dtype == np.float32 else np.float32)),
    "linear": (lambda r, d: [_rand(r, (5, 3), d), _rand(r, (4, 3), d), _rand(r, (4,), d)],
               lambda t: F.linear(t[0], t[1], t[2])),
    "binary_cross_entropy_with_logits": (
        lambda r, d: [_rand(r, (3, 5), d), r.random((3, 5)).astype(d)],
        lambda t: F.binary_cross_entropy_with_logits(t[0], t[1], reduction="none")),
    "gaussian_nll": (lambda r, d: [_rand(r, (3, 2, 2), d), _rand(r, (3, 2, 2), d)],
                     lambda t: F.gaussian_nll(t[0], t[1], sigma=0.5)),
    "mse_loss": (lambda r, d: [_rand(r, (3, 5), d), _rand(r, (3, 5), d)],
                 lambda t: F.mse_loss(t[0], t[1], reduction="none")),
    "matmul": (lambda r, d: [_rand(r, (2, 3, 4), d), _rand(r, (4, 5), d)], lambda t: F.matmul(t[0], t[1])),
    "mean": (lambda r, d: [_rand(r, (3, 4), d)], lambda t: F.mean(t[0], axis=1)),
    "sum": (lambda r, d: [_rand(r, (3, 4), d)], lambda t: F.sum(t[0], axis=0, keepdims=True)),
    "broadcast_to": (lambda r, d: [_rand(r, (1, 4), d)], lambda t: F.broadcast_to(t[0], (3, 4))),
    "cat": (lambda r, d: [_rand(r, (2, 3), d), _rand(r, (1, 3), d)], lambda t: F.cat([t[0], t[1]], axis=0)),
    "concatenate": (lambda r, d: [_rand(r, (2, 3), d), _rand(r, (2, 1), d)],
                    lambda t: F.concatenate([t[0], t[1]], axis=1)),
    "getitem": (lambda r, d: [_rand(r, (5, 3), d), np.array([4, 0, 4, 2])], lambda t: F.getitem(t[0], t[1])),
    "reshape": (lambda r, d: [_rand(r, (3, 4), d)], lambda t: F.reshape(t[0], (2, 6))),
    "split": (lambda r, d: [_rand(r, (5, 3), d)], lambda t: F.split(t[0], [2, 3], axis=0)),
    "transpose": (lambda r, d: [_rand(r, (2, 3, 4), d)], lambda t: F.permute(t[0], (2, 0, 1))),
    "kl_normal": (lambda r, d: [_rand(r, (3, 2), d), _rand(r, (3, 2), d)], lambda t: F.kl_normal(t[0], t[1])),
    "reparameterize_kl": (lambda r, d: [_rand(r, (3, 2), d), _rand(r, (3, 2), d), _rand(r, (3, 2), d)],
                          lambda t: F.reparameterize_kl(t[0], t[1], t[2])),
}


def _one(*shape, positive=False):
    """make_inputs of one array of ``shape`` (in (0.5, 1.5) when ``positive``)."""
    if positive:
        return lambda r, d: [(np.abs(_rand(r, shape, d)) + 0.5).astype(d)]
    return lambda r, d: [_rand(r, shape, d)]


def _two(sa, sb):
    return lambda r, d: [_rand(r, sa, d), _rand(r, sb, d)]


_INDEX = np.array([[0, 2, 2], [1, 0, 1]])
CASES.update({  # the PyTorch-API ops (issue 21)
    "leaky_relu": (_one(3, 4), lambda t: F.leaky_relu(t[0], 0.1)),
    "gelu": (_one(3, 4), lambda t: F.gelu(t[0])),
    "clone": (_one(2, 3), lambda t: F.clone(t[0])),
    "abs": (_one(2, 3), lambda t: F.abs(t[0])),
    "sqrt": (_one(2, 3, positive=True), lambda t: F.sqrt(t[0])),
    "rsqrt": (_one(2, 3, positive=True), lambda t: F.rsqrt(t[0])),
    "reciprocal": (_one(2, 3, positive=True), lambda t: F.reciprocal(t[0])),
    "log1p": (_one(2, 3, positive=True), lambda t: F.log1p(t[0])),
    "expm1": (_one(2, 3), lambda t: F.expm1(t[0])),
    "sin": (_one(2, 3), lambda t: F.sin(t[0])),
    "cos": (_one(2, 3), lambda t: F.cos(t[0])),
    "erf": (_one(2, 3), lambda t: F.erf(t[0])),
    "maximum": (_two((2, 3), (3,)), lambda t: F.maximum(t[0], t[1])),
    "minimum": (_two((2, 3), (3,)), lambda t: F.minimum(t[0], t[1])),
    "clamp": (_one(3, 4), lambda t: F.clamp(t[0], -0.5, 0.5)),
    "clip": (_one(3, 4), lambda t: F.clip(t[0], min=0.0)),
    "where": (_two((2, 3), (3,)), lambda t: F.where(t[0] > 0, t[0], t[1])),
    "var": (_one(3, 4), lambda t: F.var(t[0], dim=1)),
    "std": (_one(3, 4), lambda t: F.std(t[0])),
    "prod": (_one(3, 4, positive=True), lambda t: F.prod(t[0], dim=1)),
    "norm": (_one(3, 4), lambda t: F.norm(t[0], dim=0)),
    "max": (_one(3, 4), lambda t: F.max(t[0], 1).values),
    "min": (_one(3, 4), lambda t: F.min(t[0])),
    "amax": (_one(3, 4), lambda t: F.amax(t[0], 0)),
    "amin": (_one(3, 4), lambda t: F.amin(t[0], 1, keepdim=True)),
    "logsumexp": (_one(3, 4), lambda t: F.logsumexp(t[0], 1)),
    "softmax": (_one(3, 4), lambda t: F.softmax(t[0], 1)),
    "log_softmax": (_one(3, 4), lambda t: F.log_softmax(t[0], 0)),
    "view": (_one(3, 4), lambda t: F.view(t[0], 4, 3)),
    "permute": (_one(2, 3, 4), lambda t: F.permute(t[0], 1, 2, 0)),
    "t": (_one(3, 4), lambda t: F.t(t[0])),
    "squeeze": (_one(3, 1, 4), lambda t: F.squeeze(t[0], 1)),
    "unsqueeze": (_one(3, 4), lambda t: F.unsqueeze(t[0], 0)),
    "flatten": (_one(2, 3, 4), lambda t: F.flatten(t[0], 1)),
    "unflatten": (_one(2, 6), lambda t: F.unflatten(t[0], 1, (2, 3))),
    "expand": (_one(3, 1), lambda t: F.expand(t[0], 2, 3, 4)),
    "stack": (_two((2, 3), (2, 3)), lambda t: F.stack([t[0], t[1]], 1)),
    "chunk": (_one(2, 5), lambda t: F.chunk(t[0], 2, 1)),
    "repeat": (_one(2, 3), lambda t: F.repeat(t[0], 2, 2)),
    "gather": (_one(2, 3), lambda t: F.gather(t[0], 1, _INDEX)),
    "index_put": (_two((3, 4), (3, 1)), lambda t: F.index_put(t[0], (slice(None), np.array([0, 2])), t[1])),
    "cross_entropy": (_one(3, 4), lambda t: F.cross_entropy(t[0], np.array([0, 3, 1]))),
    "nll_loss": (_one(3, 4), lambda t: F.nll_loss(t[0], np.array([0, 3, 1]))),
    "kl_div": (lambda r, d: [_rand(r, (3, 4), d), (np.abs(_rand(r, (3, 4), d)) + 0.1).astype(d)],
               lambda t: F.kl_div(t[0], t[1], reduction="batchmean")),
    "binary_cross_entropy": (lambda r, d: [r.uniform(0.1, 0.9, (2, 3)).astype(d), r.uniform(0, 1, (2, 3)).astype(d)],
                             lambda t: F.binary_cross_entropy(t[0], t[1])),
    "l1_loss": (_two((2, 3), (2, 3)), lambda t: F.l1_loss(t[0], t[1])),
    "div": CASES.get("div") or (_two((2, 3), (2, 3)), lambda t: F.div(t[0], t[1])),
})

#: functional ops without a gradient (comparisons, indices): no mutation-through-backward case
NOT_DIFFERENTIABLE = {"eq", "ne", "lt", "le", "gt", "ge", "argmax", "argmin"}


def test_every_functional_op_has_a_mutation_case():
    assert set(CASES) == set(F.__all__) - NOT_DIFFERENTIABLE


@pytest.mark.parametrize("impl", ["reference", "numba"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
@FEW
@given(seed=seeds)
def test_no_op_mutates_its_inputs_or_its_upstream_gradient(name, dtype, impl, seed):
    make, call = CASES[name]
    rng = np.random.default_rng(seed)
    arrays = make(rng, dtype)
    before = [a.copy() for a in arrays]
    with kernels.use(impl):
        tensors = [mv.Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        for t, a in zip(tensors, arrays):
            assert t.data is a  # the op sees the caller's arrays themselves, not copies
        outs = call(tensors)
        outs = outs if isinstance(outs, tuple) else (outs,)
        # each output's upstream gradient is an array we own: a hook hands it to the op's backward
        upstream = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs]
        upstream_before = [g.copy() for g in upstream]
        for o, g in zip(outs, upstream):
            o.register_hook(lambda _grad, g=g: g)
        loss = outs[0].sum()
        for o in outs[1:]:
            loss = loss + o.sum().astype(loss.dtype)
        loss.backward()
    for i, (a, b) in enumerate(zip(arrays, before)):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b), f"{name} changed input {i}"
    for i, (g, b) in enumerate(zip(upstream, upstream_before)):
        assert np.array_equal(g, b), f"{name} changed the upstream gradient of output {i}"
    for t in tensors:
        if t.requires_grad:
            assert t.grad is not None and t.grad.shape == t.shape and np.isfinite(t.grad.detach().numpy()).all()
