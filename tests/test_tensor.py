"""Tensor and autograd: operators, methods, shape ops, broadcasting, accumulation, no_grad, conversions.

Gradients here are compared with closed forms written out in NumPy; finite-difference checks of every op
live in test_ops_gradcheck.py.
"""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae.ops.broadcast import sum_to_array as sum_to


def leaf(a, dtype=np.float64):
    return mv.Tensor(np.asarray(a, dtype=dtype), requires_grad=True)


# --------------------------------------------------------------------------- operators and dtypes

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b, g: (g, g)),
    "sub": (lambda a, b: a - b, lambda a, b, g: (g, -g)),
    "mul": (lambda a, b: a * b, lambda a, b, g: (g * b, g * a)),
    "div": (lambda a, b: a / b, lambda a, b, g: (g / b, -g * a / b ** 2)),
    "pow": (lambda a, b: a ** b, lambda a, b, g: (g * b * a ** (b - 1), g * a ** b * np.log(a))),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_operator_values_and_grads(name, rng):
    op, vjp = BINARY[name]
    a_np = rng.uniform(0.5, 2.0, (3, 4))
    b_np = rng.uniform(0.5, 2.0, (3, 4))
    a, b = leaf(a_np), leaf(b_np)
    y = op(a, b)
    np.testing.assert_allclose(y.detach().numpy(), op(a_np, b_np), rtol=1e-12)
    g = rng.standard_normal((3, 4))
    y.backward(g)
    ga, gb = vjp(a_np, b_np, g)
    np.testing.assert_allclose(a.grad.detach().numpy(), ga, rtol=1e-10)
    np.testing.assert_allclose(b.grad.detach().numpy(), gb, rtol=1e-10)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("scalar_left", [False, True])
def test_python_scalar_operand_keeps_float32(name, scalar_left):
    op, vjp = BINARY[name]
    x_np = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    x = leaf(x_np, np.float32)
    y = op(2.0, x) if scalar_left else op(x, 2.0)
    assert y.dtype == np.float32
    expected = op(np.float32(2.0), x_np) if scalar_left else op(x_np, np.float32(2.0))
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-6)
    y.backward(np.ones(3, np.float32))
    assert x.grad.dtype == np.float32
    ga, gb = vjp(np.float64(2.0), x_np.astype(np.float64), np.ones(3)) if scalar_left else \
        vjp(x_np.astype(np.float64), np.float64(2.0), np.ones(3))
    np.testing.assert_allclose(x.grad.detach().numpy(), gb if scalar_left else ga, rtol=1e-5)


def test_int_scalar_operand_keeps_float32():
    x = leaf([1.0, 2.0], np.float32)
    for y in (x * 3, 3 * x, x + 1, 1 - x, x ** 2, x / 4):
        assert y.dtype == np.float32


def test_float_scalar_with_int_tensor_is_not_truncated():
    i = mv.Tensor(np.array([1, 2, 3]))
    np.testing.assert_array_equal((i * 2.5).detach().numpy(), [2.5, 5.0, 7.5])
    np.testing.assert_array_equal((0.5 + i).detach().numpy(), [1.5, 2.5, 3.5])
    np.testing.assert_allclose((i ** 0.5).detach().numpy(), np.sqrt([1, 2, 3]))
    assert (i * 2.5).dtype.kind == "f"
    assert (i * 2).dtype == i.dtype  # an int scalar keeps the int dtype
    np.testing.assert_array_equal((i * 2).detach().numpy(), [2, 4, 6])
    np.testing.assert_array_equal((mv.Tensor(np.array([True, False])) * 0.5).detach().numpy(), [0.5, 0.0])


def test_neg_and_matmul(rng):
    a_np, b_np = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    a, b = leaf(a_np), leaf(b_np)
    y = -(a @ b)
    np.testing.assert_allclose(y.detach().numpy(), -(a_np @ b_np))
    g = rng.standard_normal((2, 4))
    y.backward(g)
    np.testing.assert_allclose(a.grad.detach().numpy(), -g @ b_np.T)
    np.testing.assert_allclose(b.grad.detach().numpy(), -a_np.T @ g)


def test_matmul_with_array_on_either_side(rng):
    a_np, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 3))
    a = leaf(a_np)
    left = a @ w
    right = w.T @ a.T  # ndarray @ Tensor goes through Tensor.__rmatmul__
    assert isinstance(right, mv.Tensor)
    np.testing.assert_allclose(right.detach().numpy(), left.detach().numpy().T)
    right.sum().backward()
    np.testing.assert_allclose(a.grad.detach().numpy(), np.ones((3, 2)).T @ w.T)


def test_float32_matmul_stays_float32():
    a = leaf(np.ones((2, 3)), np.float32)
    assert (a @ leaf(np.ones((3, 2)), np.float32)).dtype == np.float32


def test_exp_log_and_methods(rng):
    x_np = rng.uniform(0.5, 2.0, (5,))
    for method, f, df in [
        ("exp", np.exp, np.exp),
        ("log", np.log, lambda v: 1 / v),
        ("relu", lambda v: np.maximum(v - 1.0, 0), lambda v: (v > 1.0).astype(float)),
        ("tanh", np.tanh, lambda v: 1 - np.tanh(v) ** 2),
        ("sigmoid", lambda v: 1 / (1 + np.exp(-v)), lambda v: np.exp(-v) / (1 + np.exp(-v)) ** 2),
    ]:
        x = leaf(x_np)
        if method == "relu":  # shift so that both branches are exercised
            y = (x - 1.0).relu()
        else:
            y = getattr(x, method)()
        np.testing.assert_allclose(y.detach().numpy(), f(x_np), rtol=1e-12, err_msg=method)
        y.sum().backward()
        np.testing.assert_allclose(x.grad.detach().numpy(), df(x_np), rtol=1e-10, err_msg=method)


def test_relu_gradient_is_zero_at_zero():
    x = leaf([-1.0, 0.0, 2.0])
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.detach().numpy(), [0.0, 0.0, 1.0])


# --------------------------------------------------------------------------- reductions


@pytest.mark.parametrize("axis", [None, 0, 1, -1, -2, (0, 2), (-1, 0)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_and_mean(axis, keepdims, rng):
    x_np = rng.standard_normal((2, 3, 4))
    for fn, ref in [(F.sum, np.sum), (F.mean, np.mean)]:
        x = leaf(x_np)
        y = fn(x, axis=axis, keepdims=keepdims)
        expected = ref(x_np, axis=axis, keepdims=keepdims)
        assert y.shape == np.shape(expected)
        np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-12)
        g = rng.standard_normal(y.shape)
        y.backward(g)
        count = x_np.size / max(np.size(expected), 1)
        g_full = g if keepdims else np.expand_dims(g, axis) if axis is not None else g
        want = np.broadcast_to(g_full, x_np.shape) * (1.0 if fn is F.sum else 1.0 / count)
        np.testing.assert_allclose(x.grad.detach().numpy(), want, rtol=1e-12)


def test_sum_mean_methods():
    x = leaf(np.arange(6.0).reshape(2, 3))
    assert x.sum().item() == 15.0
    assert x.mean(axis=0).detach().numpy().tolist() == [1.5, 2.5, 3.5]
    assert x.sum(axis=-1, keepdims=True).shape == (2, 1)


def test_reductions_of_a_0d_tensor():
    s = leaf(3.0)
    for fn in (F.sum, F.mean):
        for axis in (None, 0, -1):
            y = fn(s, axis=axis)
            assert y.shape == () and y.item() == 3.0
    F.sum(s, axis=0).backward()
    assert s.grad.item() == 1.0
    with pytest.raises(IndexError, match="out of range"):
        F.sum(s, axis=1)


def test_sum_bad_axis():
    with pytest.raises(IndexError, match="sum: dim 2 is out of range for a tensor with 2 dimensions"):
        F.sum(leaf(np.ones((2, 3))), axis=2)


# --------------------------------------------------------------------------- shape ops


def test_reshape_and_transpose(rng):
    x_np = rng.standard_normal((2, 3, 4))
    x = leaf(x_np)
    y = x.reshape(4, -1).transpose(1, 0)
    assert y.shape == (6, 4)
    np.testing.assert_array_equal(y.detach().numpy(), x_np.reshape(4, 6).T)
    g = rng.standard_normal((6, 4))
    y.backward(g)
    np.testing.assert_array_equal(x.grad.detach().numpy(), g.T.reshape(2, 3, 4))


def test_transpose_permutation_and_T(rng):
    x_np = rng.standard_normal((2, 3, 4))
    x = leaf(x_np)
    y = F.permute(x, (2, 0, 1))
    np.testing.assert_array_equal(y.detach().numpy(), x_np.transpose(2, 0, 1))
    g = rng.standard_normal(y.shape)
    y.backward(g)
    np.testing.assert_array_equal(x.grad.detach().numpy(), g.transpose(1, 2, 0))
    m = leaf(np.arange(6.0).reshape(2, 3))
    assert m.T.shape == (3, 2)
    with pytest.raises(ValueError, match="not a permutation"):
        F.permute(x, (0, 0, 1))


def test_concatenate(rng):
    a_np, b_np = rng.standard_normal((2, 3)), rng.standard_normal((2, 5))
    a, b = leaf(a_np), leaf(b_np)
    y = F.concatenate([a, b], axis=1)
    np.testing.assert_array_equal(y.detach().numpy(), np.concatenate([a_np, b_np], axis=1))
    g = rng.standard_normal((2, 8))
    y.backward(g)
    np.testing.assert_array_equal(a.grad.detach().numpy(), g[:, :3])
    np.testing.assert_array_equal(b.grad.detach().numpy(), g[:, 3:])


@pytest.mark.parametrize("sections, sizes", [(2, [2, 2, 1]), ([1, 4], [1, 4]), (5, [5])])
def test_split(sections, sizes, rng):
    x_np = rng.standard_normal((3, 5))
    x = leaf(x_np)
    parts = x.split(sections, axis=1)
    assert [p.shape[1] for p in parts] == sizes
    np.testing.assert_array_equal(np.concatenate([p.detach().numpy() for p in parts], axis=1), x_np)
    # only use some outputs: the unused ones contribute zero gradient
    weights = [float(k + 1) for k in range(len(parts))]
    total = None
    for w, p in zip(weights[:1] + weights[2:], parts[:1] + parts[2:]):
        term = (p * w).sum()
        total = term if total is None else total + term
    total.backward()
    want = np.concatenate([np.full((3, s), 0.0 if k == 1 else weights[k]) for k, s in enumerate(sizes)], axis=1)
    np.testing.assert_array_equal(x.grad.detach().numpy(), want)


def test_split_sizes_must_add_up():
    with pytest.raises(ValueError, match="add up to 4"):
        F.split(leaf(np.ones((2, 5))), [1, 3], axis=1)


def test_basic_slicing(rng):
    x_np = rng.standard_normal((4, 5))
    x = leaf(x_np)
    y = x[1:3, ::2]
    np.testing.assert_array_equal(y.detach().numpy(), x_np[1:3, ::2])
    y.sum().backward()
    want = np.zeros((4, 5))
    want[1:3, ::2] = 1
    np.testing.assert_array_equal(x.grad.detach().numpy(), want)


def test_integer_array_indexing_accumulates_repeats(rng):
    x_np = rng.standard_normal((4, 3))
    x = leaf(x_np)
    idx = np.array([2, 0, 2, 2])
    y = x[idx]
    np.testing.assert_array_equal(y.detach().numpy(), x_np[idx])
    g = rng.standard_normal((4, 3))
    y.backward(g)
    want = np.zeros((4, 3))
    want[0] = g[1]
    want[2] = g[0] + g[2] + g[3]
    np.testing.assert_allclose(x.grad.detach().numpy(), want, rtol=1e-12)


def test_indexing_with_a_tensor_index():
    x = leaf(np.arange(5.0))
    y = x[mv.Tensor(np.array([4, 4, 1]))]
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.detach().numpy(), [0, 1, 0, 0, 2])


# --------------------------------------------------------------------------- broadcasting


@pytest.mark.parametrize("shape, grad_shape", [
    ((3,), (2, 3)), ((1, 3), (2, 3)), ((2, 1), (2, 3)), ((), (2, 3)), ((1,), (4, 2, 3)),
    ((2, 1, 3), (5, 2, 4, 3)), ((2, 3), (2, 3)),
])
def test_sum_to(shape, grad_shape, rng):
    g = rng.standard_normal(grad_shape)
    out = sum_to(g, shape)
    assert out.shape == shape
    # reference: sum_to is the adjoint of broadcast_to, <sum_to(g), v> == <g, broadcast_to(v)>
    v = rng.standard_normal(shape)
    np.testing.assert_allclose((out * v).sum(), (g * np.broadcast_to(v, grad_shape)).sum(), rtol=1e-12)


def test_broadcasting_gradients_are_summed(rng):
    a_np, b_np, c_np = rng.standard_normal((2, 3)), rng.standard_normal((3,)), rng.standard_normal((2, 1))
    a, b, c = leaf(a_np), leaf(b_np), leaf(c_np)
    y = (a * b + c) / (c * c + 1.0)
    g = rng.standard_normal((2, 3))
    y.backward(g)
    d = c_np ** 2 + 1
    np.testing.assert_allclose(a.grad.detach().numpy(), g * b_np / d)
    np.testing.assert_allclose(b.grad.detach().numpy(), (g * a_np / d).sum(axis=0))
    dc = g * (1 / d - (a_np * b_np + c_np) * 2 * c_np / d ** 2)
    np.testing.assert_allclose(c.grad.detach().numpy(), dc.sum(axis=1, keepdims=True))
    assert b.grad.shape == (3,) and c.grad.shape == (2, 1)


# --------------------------------------------------------------------------- accumulation


def test_tensor_used_twice_in_one_op():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.detach().numpy(), [2.0, -4.0, 6.0])


def test_tensor_used_in_two_branches():
    x = leaf([0.5, 1.5])
    a = x.exp()
    b = x * 3.0
    (a * b).sum().backward()
    xv = np.array([0.5, 1.5])
    np.testing.assert_allclose(x.grad.detach().numpy(), np.exp(xv) * 3 * xv + np.exp(xv) * 3)


def test_diamond_graph_shared_intermediate():
    x = leaf([2.0])
    h = x * x          # h used by two consumers
    y = h.exp() + h * h
    y.backward(np.ones(1))
    # dy/dx = (exp(h) + 2h) * 2x
    np.testing.assert_allclose(x.grad.detach().numpy(), (np.exp(4.0) + 8.0) * 4.0)


def test_grads_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.detach().numpy(), [5.0, 5.0])
    x.zero_grad()
    assert x.grad is None


def test_only_leaves_requiring_grad_get_grad():
    x = leaf([1.0])
    c = mv.Tensor(np.array([2.0]))
    h = x * c
    h.backward(np.ones(1))
    assert c.grad is None
    assert h.grad is None  # non-leaf without retain_grad
    assert not h.is_leaf and h.grad_fn is not None


def test_leaf_hook_sees_the_summed_gradient_once():
    x = leaf([1.0])
    calls = []

    def hook(g):
        calls.append(g.data.copy())
        return g * g  # nonlinear: applying it per use would give 2**2 + 3**2 instead of 5**2

    x.register_hook(hook)
    (x * 2.0 + x * 3.0).backward(np.ones(1))
    assert len(calls) == 1 and calls[0].tolist() == [5.0]
    np.testing.assert_array_equal(x.grad.detach().numpy(), [25.0])


def test_retain_grad_and_tensor_hook():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    h.retain_grad()
    h.register_hook(lambda g: g * 10)
    h.sum().backward()
    np.testing.assert_array_equal(x.grad.detach().numpy(), [30.0, 30.0])


# --------------------------------------------------------------------------- no_grad, detach, conversion


def test_no_grad_records_no_graph():
    x = leaf([1.0, 2.0])
    with mv.no_grad():
        assert not mv.is_grad_enabled()
        y = (x * 2.0).exp().sum()
        with mv.enable_grad():
            z = x * 2.0
    assert mv.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_restored_after_exception():
    with pytest.raises(KeyError):
        with mv.no_grad():
            raise KeyError("x")
    assert mv.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = leaf([1.0, 2.0])
    d = (x * 2.0).detach()
    assert d.is_leaf and not d.requires_grad
    y = d * x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.detach().numpy(), [2.0, 4.0])  # d treated as a constant


def test_numpy_item_device_and_attributes():
    x = mv.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert isinstance(x.detach().numpy(), np.ndarray)
    np.testing.assert_array_equal(x.detach().numpy(), np.arange(6).reshape(2, 3))
    assert x.device == "cpu"
    assert x.shape == (2, 3) and x.ndim == 2 and x.numel() == 6 and x.size() == (2, 3) and len(x) == 2
    assert x.dtype == np.float32
    assert x.sum().item() == 15.0
    assert isinstance(x.sum().item(), float)
    with pytest.raises(ValueError, match="one element"):
        x.item()


def test_python_floats_become_float32_and_numpy_keeps_dtype():
    assert mv.Tensor([1.0, 2.0]).dtype == np.float32
    assert mv.tensor(1.5).dtype == np.float32
    assert mv.Tensor(np.zeros(2, np.float64)).dtype == np.float64
    assert mv.Tensor([1, 2]).dtype.kind == "i"
    assert mv.Tensor(np.zeros(2), dtype=np.float32).dtype == np.float32


def test_requires_grad_on_int_tensor_raises():
    with pytest.raises(TypeError, match="floating-point"):
        mv.Tensor(np.array([1, 2, 3]), requires_grad=True)
    with pytest.raises(TypeError, match="floating-point"):
        mv.Tensor(np.array([1, 2])).requires_grad_()


def test_astype_is_differentiable():
    x = leaf([1.0, 2.0], np.float32)
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.detach().numpy(), [2.0, 4.0])


def test_repr_mentions_dtype_and_requires_grad():
    r = repr(leaf([1.0], np.float32))
    assert "float32" in r and "requires_grad=True" in r
