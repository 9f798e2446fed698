"""``minivae.autograd.functional`` against closed forms, with torch.autograd.functional's argument and result
shapes; ``forward_ad`` dual tensors and their misuse."""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
import minivae.autograd.forward_ad as fwAD
import minivae.functional as F
from minivae.autograd import functional as AF

A = np.array([[2.0, 1.0, 0.5], [1.0, 3.0, -1.0], [0.5, -1.0, 4.0]])
B = np.array([[1.0, -2.0, 0.0], [0.5, 1.0, 3.0]])  # R^3 -> R^2


def quad(x):  # 0.5 x^T A x + sum(exp(x)): gradient A x + exp(x), Hessian A + diag(exp(x))
    xa = F.matmul(F.reshape(x, (1, 3)), F.matmul(mv.Tensor(A), F.reshape(x, (3, 1))))
    return F.sum(xa) * 0.5 + F.sum(F.exp(x))


def lin_tanh(x):  # tanh(B x): Jacobian diag(1 - tanh^2) B
    return F.tanh(F.reshape(F.matmul(mv.Tensor(B), F.reshape(x, (3, 1))), (2,)))


X0 = np.array([0.3, -0.7, 1.1])


def jac_lin_tanh(x):
    t = np.tanh(B @ x)
    return (1 - t ** 2)[:, None] * B


def test_vjp_and_jvp_against_the_closed_form_jacobian():
    u, v = np.array([1.0, -2.0]), np.array([0.5, 0.1, -0.3])
    out, vjp = AF.vjp(lin_tanh, mv.Tensor(X0), mv.Tensor(u))
    np.testing.assert_allclose(out.data, np.tanh(B @ X0))
    np.testing.assert_allclose(vjp.data, u @ jac_lin_tanh(X0), rtol=1e-12)
    out, jvp = AF.jvp(lin_tanh, mv.Tensor(X0), mv.Tensor(v))
    np.testing.assert_allclose(jvp.data, jac_lin_tanh(X0) @ v, rtol=1e-12)
    assert not jvp.requires_grad and not out.requires_grad


@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
def test_jacobian_both_strategies(strategy):
    j = AF.jacobian(lin_tanh, mv.Tensor(X0), strategy=strategy)
    assert j.shape == (2, 3)
    np.testing.assert_allclose(j.data, jac_lin_tanh(X0), rtol=1e-12)


def test_jacobian_nesting_for_tuples_follows_pytorch():
    def f(a, b):
        return a * b, F.sum(a)
    a, b = mv.Tensor(np.array([1.0, 2.0])), mv.Tensor(np.array([3.0, 4.0]))
    (jaa, jab), (jsa, jsb) = AF.jacobian(f, (a, b))
    np.testing.assert_allclose(jaa.data, np.diag(b.data))
    np.testing.assert_allclose(jab.data, np.diag(a.data))
    np.testing.assert_allclose(jsa.data, [1.0, 1.0])
    np.testing.assert_allclose(jsb.data, [0.0, 0.0])
    assert jsa.shape == (2,)


@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
def test_hessian_both_strategies(strategy):
    h = AF.hessian(quad, mv.Tensor(X0), outer_jacobian_strategy=strategy)
    np.testing.assert_allclose(h.data, A + np.diag(np.exp(X0)), rtol=1e-12)


def test_hvp_and_vhp():
    v = np.array([1.0, 0.5, -2.0])
    out, hv = AF.hvp(quad, mv.Tensor(X0), mv.Tensor(v))
    np.testing.assert_allclose(out.data, 0.5 * X0 @ A @ X0 + np.exp(X0).sum())
    np.testing.assert_allclose(hv.data, (A + np.diag(np.exp(X0))) @ v, rtol=1e-12)
    out, vh = AF.vhp(quad, mv.Tensor(X0), mv.Tensor(v))
    np.testing.assert_allclose(vh.data, v @ (A + np.diag(np.exp(X0))), rtol=1e-12)


def test_create_graph_keeps_results_differentiable():
    x = mv.Tensor(X0, requires_grad=True)
    _, vjp = AF.vjp(lambda t: F.sum(t ** 3.0), x, create_graph=True)
    assert vjp.requires_grad


def test_bad_inputs():
    with pytest.raises(RuntimeError, match="hessian: func must return a single Tensor with one element"):
        AF.hessian(lin_tanh, mv.Tensor(X0))
    with pytest.raises(ValueError, match="v can be omitted only"):
        AF.vjp(lin_tanh, mv.Tensor(X0))
    with pytest.raises(ValueError, match="entry 0 of v has shape"):
        AF.jvp(lin_tanh, mv.Tensor(X0), mv.Tensor(np.ones(2)))
    with pytest.raises(ValueError, match="strategy"):
        AF.jacobian(lin_tanh, mv.Tensor(X0), strategy="sideways")


# --------------------------------------------------------------------------- forward_ad
def test_dual_tensor_tangent_is_the_directional_derivative():
    v = np.array([0.2, -1.0, 0.4])
    with fwAD.dual_level():
        x = fwAD.make_dual(mv.Tensor(X0), mv.Tensor(v))
        y = lin_tanh(x)
        primal, tangent = fwAD.unpack_dual(y)
        assert fwAD.unpack_dual(mv.Tensor(X0)).tangent is None  # no tangent: zero
    np.testing.assert_allclose(primal.data, np.tanh(B @ X0))
    np.testing.assert_allclose(tangent.data, jac_lin_tanh(X0) @ v, rtol=1e-12)


def test_reverse_over_forward():
    """d/dx of the JVP <grad f, v> is H v."""
    x = mv.Tensor(X0, requires_grad=True)
    v = np.array([1.0, 0.0, 2.0])
    with fwAD.dual_level():
        y = quad(fwAD.make_dual(x, mv.Tensor(v)))
        t = fwAD.unpack_dual(y).tangent
    (hv,) = mv.autograd.grad(t, x)
    np.testing.assert_allclose(hv.data, (A + np.diag(np.exp(X0))) @ v, rtol=1e-12)


def test_dual_misuse_gives_clear_errors():
    with pytest.raises(RuntimeError, match="inside `with forward_ad.dual_level"):
        fwAD.make_dual(mv.Tensor(X0), mv.Tensor(X0))
    with pytest.raises(RuntimeError, match="unpack_dual must be called inside"):
        fwAD.unpack_dual(mv.Tensor(X0))
    with fwAD.dual_level():
        with pytest.raises(ValueError, match=r"tangent shape \(2,\) does not match the primal's \(3,\)"):
            fwAD.make_dual(mv.Tensor(X0), mv.Tensor(np.ones(2)))
        with pytest.raises(TypeError, match="tangent dtype float32 does not match"):
            fwAD.make_dual(mv.Tensor(X0), mv.Tensor(np.ones(3, dtype=np.float32)))
        with pytest.raises(RuntimeError, match="nested dual levels are not supported"):
            with fwAD.dual_level():
                pass


def test_tangents_do_not_outlive_their_level():
    with fwAD.dual_level():
        y = F.exp(fwAD.make_dual(mv.Tensor(X0), mv.Tensor(np.ones(3))))
    with fwAD.dual_level():
        assert fwAD.unpack_dual(y).tangent is None


def test_unpacked_primal_carries_no_tangent_but_keeps_the_reverse_graph():
    x = mv.Tensor(X0, requires_grad=True)
    with fwAD.dual_level():
        d = fwAD.make_dual(x, mv.Tensor(np.ones(3)))
        primal, tangent = fwAD.unpack_dual(d)
        assert fwAD.unpack_dual(primal).tangent is None
        np.testing.assert_array_equal(primal.data, X0)
        (g,) = mv.autograd.grad(F.sum(primal * primal), x)
    np.testing.assert_allclose(g.data, 2 * X0)
