"""``autograd.grad`` / ``backward(create_graph=True)``: derivatives of derivatives against closed forms, and the
bad inputs the engine refuses with a clear error."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae.autograd import grad


def leaf(values):
    return mv.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def test_tanh_first_four_derivatives_by_nested_grad():
    x0 = np.array([-1.3, -0.2, 0.0, 0.7, 2.1])
    x = leaf(x0)
    t = np.tanh(x0)
    closed = [1 - t ** 2, -2 * t * (1 - t ** 2), (1 - t ** 2) * (6 * t ** 2 - 2),
              (1 - t ** 2) * (16 * t - 24 * t ** 3)]  # d^k/dx^k tanh, k = 1..4
    y = F.tanh(x)
    for k in range(4):
        (y,) = grad(y.sum(), x, create_graph=True)
        np.testing.assert_allclose(y.data, closed[k], rtol=1e-12, atol=1e-12)


def test_grad_returns_a_tuple_and_leaves_dot_grad_alone():
    a, b = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    y = (a * a * b).sum()
    ga, gb = grad(y, [a, b])
    np.testing.assert_allclose(ga.data, 2 * a.data * b.data)
    np.testing.assert_allclose(gb.data, a.data ** 2)
    assert a.grad is None and b.grad is None
    assert not ga.requires_grad and ga.grad_fn is None


def test_grad_with_respect_to_an_intermediate_tensor():
    x = leaf([0.5, -1.0, 2.0])
    h = x * 3.0
    y = (h * h).sum()
    (gh,) = grad(y, h)
    np.testing.assert_allclose(gh.data, 2 * h.data)


def test_grad_outputs_weight_a_vector_output():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    v = np.array([[1.0, -1.0], [0.5, 2.0]])
    (g,) = grad(x * x, x, grad_outputs=v)
    np.testing.assert_allclose(g.data, 2 * x.data * v)


def test_backward_create_graph_gives_a_differentiable_grad_and_hessian_vector_product():
    a = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]])
    x = leaf([1.0, -2.0, 0.5])
    y = F.sum(F.matmul(x.reshape(1, 3), F.matmul(mv.Tensor(a), x.reshape(3, 1)))) * 0.5
    y.backward(create_graph=True)
    np.testing.assert_allclose(x.grad.data, a @ x.data)  # gradient of x^T A x / 2 with A symmetric
    assert x.grad.requires_grad
    v = np.array([0.3, 0.1, -1.0])
    (hv,) = grad((x.grad * mv.Tensor(v)).sum(), x)
    np.testing.assert_allclose(hv.data, a @ v)


def test_gradient_penalty_matches_its_closed_form():
    """d/dw of ||d/dx (w . x)^2||^2 = d/dw ||2 (w.x) w||^2 = 8 (w.x) (x (w.w) + (w.x) w)."""
    w0, x0 = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.3, -0.7])
    w, x = leaf(w0), leaf(x0)
    y = F.sum(w * x) ** 2
    (gx,) = grad(y, x, create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()
    s = w0 @ x0
    np.testing.assert_allclose(w.grad.data, 8 * s * (x0 * (w0 @ w0) + s * w0), rtol=1e-12)


def test_second_backward_through_conv_weights_matches_finite_differences():
    rng = np.random.default_rng(0)
    x, w = leaf(rng.standard_normal((1, 1, 5, 5))), leaf(rng.standard_normal((2, 1, 3, 3)))

    def penalty(wd):
        y = F.tanh(F.conv2d(x, wd, stride=2, padding=1)).sum()
        (gx,) = grad(y, x, create_graph=True)
        return (gx * gx).sum()

    p = penalty(w)
    (gw,) = grad(p, w)
    h, numeric = 1e-6, np.zeros(w.shape)
    for i in range(w.numel()):
        wp, wm = w.data.copy(), w.data.copy()
        wp.flat[i] += h
        wm.flat[i] -= h
        numeric.flat[i] = (penalty(leaf(wp)).item() - penalty(leaf(wm)).item()) / (2 * h)
    np.testing.assert_allclose(gw.data, numeric, rtol=1e-6, atol=1e-8)


def test_retain_graph_defaults_to_create_graph():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    grad(y, x, create_graph=True)
    grad(y, x)  # the graph was kept by create_graph=True
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        grad(y, x)


def test_hooks_see_tensors_and_can_be_differentiated_with_create_graph():
    x = leaf([1.0, 2.0])
    y = x * x
    y.register_hook(lambda g: g * x)  # the hook's product is part of the recorded backward
    (g,) = grad(y.sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, 2 * x.data * x.data)
    (gg,) = grad(g.sum(), x)
    np.testing.assert_allclose(gg.data, 4 * x.data)  # d/dx (x * 2x): the hook's factor x is differentiated too


# --------------------------------------------------------------------------- bad inputs: one clear error each
def test_grad_of_an_output_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        grad(mv.Tensor([1.0, 2.0]).sum(), leaf([1.0]))


def test_grad_of_an_input_not_in_the_graph():
    x, z = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="input 1 .* was not used .* allow_unused=True"):
        grad((x * 2.0).sum(), [x, z])
    gx, gz = grad((x * 2.0).sum(), [x, z], allow_unused=True)
    assert gz is None and gx.data[0] == 2.0


def test_second_backward_through_a_freed_graph():
    x = leaf([1.0, 2.0])
    y = (x.exp()).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time .* retain_graph=True"):
        y.backward()


def test_create_graph_under_no_grad():
    x = leaf([1.0])
    y = (x * x).sum()
    with mv.no_grad():
        with pytest.raises(RuntimeError, match="create_graph=True under no_grad"):
            grad(y, x, create_graph=True)


def test_grad_outputs_of_the_wrong_shape_or_count():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match="grad for output 0 has shape"):
        grad(x * 2.0, x, grad_outputs=np.ones(3))
    with pytest.raises(ValueError, match="got 2 grad_outputs for 1 outputs"):
        grad(x * 2.0, x, grad_outputs=[np.ones(2), np.ones(2)])
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        grad(x * 2.0, x)


def test_float32_double_backward_stays_float32():
    x = mv.Tensor(np.array([0.5, 1.5], dtype=np.float32), requires_grad=True)
    (g,) = grad((x ** 3.0).sum(), x, create_graph=True)
    (h,) = grad(g.sum(), x)
    assert g.dtype == np.float32 and h.dtype == np.float32
    np.testing.assert_allclose(h.data, 6 * x.data, rtol=1e-6)
    assert math.isclose(float(g.data[1]), 3 * 1.5 ** 2, rel_tol=1e-6)
