"""Tensor.register_hook and retain_grad: what a hook sees, what it changes, and when it runs."""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F


def _leaf(values):
    return mv.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def test_hook_on_a_leaf_sees_the_analytic_gradient_and_scaling_changes_grad():
    x = _leaf([1.0, -2.0, 3.0])
    seen = []

    def double(g):
        seen.append(g.data.copy())
        return 2.0 * g

    x.register_hook(double)
    F.sum(F.pow(x, 3.0)).backward()  # x used once; d/dx sum(x^3) = 3 x^2
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 3 * x.data ** 2)
    np.testing.assert_allclose(x.grad.data, 6 * x.data ** 2)


def test_hook_returning_none_leaves_the_gradient_unchanged():
    x = _leaf([0.5, 1.5])
    calls = []
    x.register_hook(lambda g: calls.append(1))
    F.sum(F.exp(x)).backward()
    assert calls == [1]
    np.testing.assert_allclose(x.grad.data, np.exp(x.data))


def test_hooks_run_in_registration_order_each_seeing_the_previous_result():
    x = _leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: (seen.append(("first", g.data.copy())), g + 1.0)[1])
    x.register_hook(lambda g: (seen.append(("second", g.data.copy())), g * 10.0)[1])
    F.sum(x * 3.0).backward()
    assert [name for name, _ in seen] == ["first", "second"]
    np.testing.assert_allclose(seen[1][1], [4.0, 4.0])
    np.testing.assert_allclose(x.grad.data, [40.0, 40.0])


def test_hook_on_an_intermediate_changes_the_gradient_flowing_to_the_leaves():
    x = _leaf([1.0, 2.0, 3.0])
    y = x * x  # dy/dx = 2x
    seen = []
    y.register_hook(lambda g: (seen.append(g.data.copy()), 0.5 * g)[1])
    F.sum(F.exp(y)).backward()
    np.testing.assert_allclose(seen[0], np.exp(x.data ** 2))  # dL/dy
    np.testing.assert_allclose(x.grad.data, 0.5 * np.exp(x.data ** 2) * 2 * x.data)


def test_zeroing_hook_on_an_intermediate_cuts_only_that_path():
    x = _leaf([1.0, 2.0])
    a = x * 2.0
    a.register_hook(lambda g: np.zeros_like(g))
    F.sum(a + x * 5.0).backward()
    np.testing.assert_allclose(x.grad.data, [5.0, 5.0])


def test_hook_on_the_root_sees_the_seed():
    x = _leaf([1.0, 2.0])
    loss = F.sum(x * x)
    seen = []
    loss.register_hook(lambda g: (seen.append(g.data.copy()), 3.0 * g)[1])
    loss.backward()
    assert seen[0].shape == () and float(seen[0]) == 1.0
    np.testing.assert_allclose(x.grad.data, 3.0 * 2 * x.data)


def test_retain_grad_keeps_the_analytic_gradient_of_intermediates(rng):
    xs, ws = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))
    x, w = _leaf(xs), _leaf(ws)
    h = F.linear(x, w)           # (2, 4)
    a = F.tanh(h)
    loss = F.sum(a * a)
    for t in (h, a):
        t.retain_grad()
    loss.backward()
    ga = 2 * np.tanh(xs @ ws.T)
    gh = ga * (1 - np.tanh(xs @ ws.T) ** 2)
    np.testing.assert_allclose(a.grad.data, ga, rtol=1e-12)
    np.testing.assert_allclose(h.grad.data, gh, rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, gh @ ws, rtol=1e-12)


def test_intermediates_without_retain_grad_keep_no_grad():
    x = _leaf([1.0, 2.0])
    y = x * 2.0
    F.sum(y * y).backward()
    assert y.grad is None and x.grad is not None


def test_retained_gradient_is_the_hooked_one():
    x = _leaf([1.0, 2.0])
    y = x * 1.0
    y.retain_grad()
    y.register_hook(lambda g: 4.0 * g)
    F.sum(y).backward()
    np.testing.assert_allclose(y.grad.data, [4.0, 4.0])
    np.testing.assert_allclose(x.grad.data, [4.0, 4.0])


def test_retained_gradients_accumulate_over_two_backward_passes():
    x = _leaf([1.0, 2.0])
    y = x * 3.0
    y.retain_grad()
    loss = F.sum(y * y)
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(y.grad.data, 2 * (2 * y.data))
    np.testing.assert_allclose(x.grad.data, 2 * (2 * y.data * 3.0))


def test_hook_on_an_intermediate_used_twice_runs_once_with_the_accumulated_gradient():
    x = _leaf([1.0, -2.0])
    y = x * 2.0
    seen = []
    y.register_hook(lambda g: seen.append(g.data.copy()))
    y.retain_grad()
    F.sum(y * y + y).backward()  # dL/dy = 2y + 1, arriving along two paths
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 * y.data + 1)
    np.testing.assert_allclose(y.grad.data, 2 * y.data + 1)
    np.testing.assert_allclose(x.grad.data, 2 * (2 * y.data + 1))


def test_hook_on_a_leaf_used_twice_runs_once_with_the_accumulated_gradient():
    x = _leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.data.copy()))
    F.sum(x * x).backward()  # x enters Mul twice: dL/dx = 2x
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 * x.data)


def test_clipping_hook_on_a_leaf_used_twice_clips_the_total():
    x = _leaf([1.0])
    x.register_hook(lambda g: np.minimum(g, 1.5))
    F.sum(x + x).backward()  # the total gradient is 2, clipped to 1.5
    np.testing.assert_allclose(x.grad.data, [1.5])


def test_retained_gradients_do_not_share_memory():
    x = _leaf([1.0, 2.0])
    a, b = x * 2.0, x * 3.0
    a.retain_grad()
    b.retain_grad()
    F.sum(a + b).backward()
    assert not np.shares_memory(a.grad.data, b.grad.data)


def test_hook_on_one_output_of_a_multi_output_op():
    x = _leaf(np.arange(6.0).reshape(3, 2))
    top, rest = F.split(x, [1, 2], axis=0)
    seen = []
    rest.register_hook(lambda g: (seen.append(g.data.copy()), -g)[1])
    (F.sum(top * 2.0) + F.sum(rest)).backward()
    np.testing.assert_allclose(seen[0], np.ones((2, 2)))
    np.testing.assert_allclose(x.grad.data, [[2.0, 2.0], [-1.0, -1.0], [-1.0, -1.0]])


def test_register_hook_needs_requires_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mv.Tensor(np.ones(2)).register_hook(lambda g: g)
