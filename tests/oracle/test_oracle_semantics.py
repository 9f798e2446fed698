"""PyTorch's semantics beyond values, each written once and run on both libraries: what requires grad, in-place
updates under ``no_grad``, the version counter, ``backward``'s arguments, factories' dtypes and flags, errors
PyTorch raises. Where PyTorch raises, minivae must raise too (any exception type of the same family)."""
from __future__ import annotations

import numpy as np
import pytest
from oracle_harness import MV, TORCH

LIBS = [MV, TORCH]
IDS = ["minivae", "torch"]


def both(fn):
    """``fn(L)`` on both libraries; returns (minivae's, PyTorch's) results, or the exception each raised."""
    out = []
    for L in LIBS:
        try:
            out.append(fn(L))
        except Exception as e:  # noqa: BLE001 - the exception is the result compared
            out.append(e)
    return out


def same(fn):
    got, want = both(fn)
    if isinstance(want, Exception):
        assert isinstance(got, Exception), f"PyTorch raises {type(want).__name__}: {want}; minivae returned {got!r}"
        return
    assert not isinstance(got, Exception), f"minivae raised {type(got).__name__}: {got}; PyTorch gives {want!r}"
    assert _plain(got) == _plain(want), f"minivae {got!r}, PyTorch {want!r}"


def _plain(v):
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "detach"):
        v = v.detach().numpy()
    if isinstance(v, np.ndarray):
        return (v.shape, str(v.dtype), np.round(v.astype(np.float64), 10).tolist())
    if hasattr(v, "name") and not isinstance(v, str):
        return str(v).replace("torch.", "")
    if isinstance(v, np.dtype) or type(v).__module__ == "numpy" and "dtype" in type(v).__name__.lower():
        return str(v)
    return str(v).replace("torch.", "") if "dtype" in type(v).__name__.lower() else v


def _leaf(L, values=(1.0, -2.0, 3.0), dtype="float32"):
    return L.tensor(np.array(values, dtype=dtype), requires_grad=True)


def test_cast_to_an_integer_dtype_does_not_require_grad():
    same(lambda L: _leaf(L).to(L.int64).requires_grad)
    same(lambda L: (_leaf(L) > 0).requires_grad)
    same(lambda L: _leaf(L).argmax().requires_grad)


def test_sgd_update_under_no_grad_changes_the_parameter():
    def step(L):
        p = _leaf(L)
        (p * p).sum().backward()
        with L.T.no_grad():
            p -= 0.1 * p.grad
        return p.detach(), p.requires_grad, p.is_leaf
    same(step)


def test_in_place_change_of_a_saved_tensor_makes_backward_raise():
    def fn(L):
        x = _leaf(L)
        y = x.exp()  # exp saves its output
        y.add_(1.0)
        y.sum().backward()
        return x.grad
    same(fn)


def test_in_place_on_a_leaf_that_requires_grad_raises():
    same(lambda L: _leaf(L).add_(1.0))


def test_backward_gradient_and_inputs():
    def fn(L):
        a, b = _leaf(L), _leaf(L, (0.5, 0.25, 2.0))
        q = 3 * a ** 3 - b ** 2
        q.backward(gradient=L.tensor(np.array([1.0, 2.0, -1.0], np.float32)), inputs=[a])
        return a.grad, b.grad is None
    same(fn)


def test_backward_accumulates_and_a_freed_graph_raises():
    def accumulate(L):
        x = _leaf(L)
        (x * 2).sum().backward()
        (x * 3).sum().backward()
        return x.grad

    def twice(L):
        x = _leaf(L)
        y = (x.exp() * 2).sum()
        y.backward()
        y.backward()
        return x.grad
    same(accumulate)
    same(twice)


def test_non_scalar_backward_needs_a_gradient():
    same(lambda L: _leaf(L).exp().backward())


@pytest.mark.parametrize("call", [
    lambda L: L.T.tensor(1.5).dtype, lambda L: L.T.tensor([1, 2]).dtype, lambda L: L.T.tensor([True]).dtype,
    lambda L: L.T.zeros(2, 3).dtype, lambda L: L.T.ones(2, dtype=L.float64).dtype,
    lambda L: L.T.full((2,), 3).dtype, lambda L: L.T.arange(3).dtype, lambda L: L.T.arange(0.0, 1.0, 0.5).dtype,
    lambda L: L.T.linspace(0, 1, 3).dtype, lambda L: L.T.eye(2).dtype, lambda L: L.T.rand(2).dtype,
    lambda L: L.T.randn(2, 2).dtype, lambda L: L.T.randint(0, 5, (3,)).dtype,
    lambda L: L.T.zeros(2, requires_grad=True).requires_grad,
    lambda L: L.T.randn(2, requires_grad=True).is_leaf,
    lambda L: L.T.ones_like(L.T.zeros(2, dtype=L.float64)).dtype,
    lambda L: L.T.zeros_like(L.T.zeros(2), requires_grad=True).requires_grad,
    lambda L: L.T.tensor([1.0, 2.0], requires_grad=True).requires_grad,
    lambda L: L.T.zeros(2, 3).shape, lambda L: L.T.randn(2, 3).shape, lambda L: L.T.rand(0).shape,
], ids=[f"factory{i}" for i in range(21)])
def test_factories_dtypes_and_flags(call):
    same(call)


def test_random_factories_follow_manual_seed_and_their_ranges():
    import minivae as mv

    mv.manual_seed(3)
    a = (mv.rand(1000), mv.randn(1000), mv.randint(2, 5, (1000,)))
    mv.manual_seed(3)
    b = (mv.rand(1000), mv.randn(1000), mv.randint(2, 5, (1000,)))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    u, n, k = (t.numpy() for t in a)
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.05
    assert abs(n.mean()) < 0.15 and abs(n.std() - 1) < 0.1
    assert set(np.unique(k)) == {2, 3, 4}


@pytest.mark.parametrize("call", [
    lambda L: L.T.zeros(2, 3).view(-1, 4),  # a size mismatch
    lambda L: L.T.zeros(2, 3).transpose(0, 2),  # dim out of range
    lambda L: L.T.zeros(2, 3).sum(dim=2),
    lambda L: L.T.zeros(2, 3) + L.T.zeros(3, 2),  # shapes that do not broadcast
    lambda L: L.T.zeros(2, 3).permute(0, 0),
    lambda L: L.T.zeros(2, 3).unsqueeze(3),
    lambda L: L.T.cat([L.T.zeros(2, 3), L.T.zeros(3, 2)], dim=0),
    lambda L: L.T.zeros(2, 3).expand(3, 3),
    lambda L: L.T.zeros(2, 3)[2],
    lambda L: L.T.zeros(2, 3).max(dim=0).values.shape,
    lambda L: tuple(L.T.zeros(2, 3).split(2, dim=1)[1].shape),
], ids=[f"call{i}" for i in range(11)])
def test_errors_and_results_where_pytorch_has_them(call):
    same(call)
