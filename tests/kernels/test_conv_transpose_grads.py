"""conv_transpose2d's two gradients have one route in every grad mode (issue 21): the op ConvTranspose2dGrads on
the kernel ``conv_transpose2d_backward``, differentiable again in reverse and forward mode. Checked on the
reference and the Numba kernels: gradcheck and gradgradcheck, and a Hessian-vector product by forward-over-reverse
(forward-mode tangents flowing through a plain backward) against the double-backward HVP and PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
import minivae.autograd.forward_ad as fwAD
import minivae.functional as F
from minivae import kernels
from minivae.ops.conv import ConvTranspose2dGrads

SETS = ["reference", "numba"]
CONV = dict(stride=2, padding=1, output_padding=1)


def _case(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, 2, 2))
    w = rng.standard_normal((3, 4, 3, 3)) * 0.3  # C_out*kH*kW = 36 >= 32: the Numba set's shared-im2col path
    return x, w, rng.standard_normal(x.shape), rng.standard_normal(w.shape)


def _loss(x, w):
    return F.sum(F.tanh(F.conv_transpose2d(x, w, **CONV)))


@pytest.mark.parametrize("impl", SETS)
def test_the_gradients_op_passes_gradcheck_and_gradgradcheck(impl):
    x, w, _, _ = _case()
    gy = np.random.default_rng(1).standard_normal((2, 4, 4, 4))
    ins = [mv.Tensor(a, requires_grad=True) for a in (gy, x, w)]

    def both(g, xx, ww):
        return ConvTranspose2dGrads.apply(g, xx, ww, stride=(2, 2), padding=(1, 1))

    with kernels.use(impl):
        assert mv.gradcheck(both, ins, check_forward_ad=True)
        assert mv.gradgradcheck(both, ins, fast_mode=True)
        assert mv.gradgradcheck(lambda xx, ww: F.conv_transpose2d(xx, ww, **CONV),
                                [mv.Tensor(x, requires_grad=True), mv.Tensor(w, requires_grad=True)], fast_mode=True)


@pytest.mark.parametrize("impl", SETS)
def test_hvp_forward_over_reverse_equals_double_backward_and_torch(impl):
    x0, w0, vx, vw = _case()
    with kernels.use(impl):
        with fwAD.dual_level():  # forward-over-reverse: tangents through a plain (create_graph=False) backward
            xd = fwAD.make_dual(mv.Tensor(x0, requires_grad=True), mv.Tensor(vx))
            wd = fwAD.make_dual(mv.Tensor(w0, requires_grad=True), mv.Tensor(vw))
            gx, gw = mv.autograd.grad(_loss(xd, wd), (xd, wd))
            fwd = [fwAD.unpack_dual(g).tangent for g in (gx, gw)]
        assert all(t is not None for t in fwd), "a tangent was dropped in backward"
        x, w = mv.Tensor(x0, requires_grad=True), mv.Tensor(w0, requires_grad=True)  # reverse-over-reverse
        gx, gw = mv.autograd.grad(_loss(x, w), (x, w), create_graph=True)
        rev = mv.autograd.grad(F.sum(gx * mv.Tensor(vx)) + F.sum(gw * mv.Tensor(vw)), (x, w))
    for a, b in zip(fwd, rev):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-10, atol=1e-12)
    torch = pytest.importorskip("torch")
    from torch.func import grad, jvp  # (torch's own double backward rejects output_padding here)

    def tloss(a, b):
        return torch.tanh(torch.nn.functional.conv_transpose2d(a, b, **CONV)).sum()

    t = [torch.tensor(a) for a in (x0, w0, vx, vw)]
    _, (hx, hw) = jvp(grad(tloss, argnums=(0, 1)), (t[0], t[1]), (t[2], t[3]))
    np.testing.assert_allclose(fwd[0].data, hx.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(fwd[1].data, hw.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("impl", SETS)
def test_one_gradient_needed_takes_its_own_op(impl):
    """Only gx (a frozen weight) or only gW (a constant input): the single-gradient ops, the same values."""
    x0, w0, _, _ = _case()
    with kernels.use(impl):
        x, w = mv.Tensor(x0, requires_grad=True), mv.Tensor(w0, requires_grad=True)
        gx, gw = mv.autograd.grad(_loss(x, w), (x, w))
        (gx_only,) = mv.autograd.grad(_loss(x, mv.Tensor(w0)), (x,))
        (gw_only,) = mv.autograd.grad(_loss(mv.Tensor(x0), w), (w,))
    np.testing.assert_allclose(gx_only.data, gx.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gw_only.data, gw.data, rtol=1e-12, atol=1e-14)
