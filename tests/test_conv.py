"""Convolution correctness against independent direct-loop definitions (float64), and the reference kernels.

The loops below follow PyTorch's definitions literally:

* conv2d (cross-correlation): ``y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] * x_pad[n, c, i*sh + p, j*sw + q]``;
* conv_transpose2d, as a scatter: every input pixel ``x[n,c,i,j]`` adds ``x[n,c,i,j] * w[c,o,p,q]`` to
  ``y_full[n, o, i*sh + p, j*sw + q]``; the output is ``y_full`` cropped by ``padding`` on each side (and
  extended by ``output_padding`` zeros at the bottom/right), plus the bias.

They share no code with minivae (no im2col, no tensordot).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae import kernels
from minivae.kernels import reference as ref

# --------------------------------------------------------------------------- direct loops


def direct_conv2d(x, w, b, stride, padding):
    n_, c_in, h, wd = x.shape
    c_out, c_in2, kh, kw = w.shape
    assert c_in == c_in2
    (sh, sw), (ph, pw) = stride, padding
    xp = np.zeros((n_, c_in, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    y = np.zeros((n_, c_out, ho, wo))
    for n in range(n_):
        for o in range(c_out):
            for i in range(ho):
                for j in range(wo):
                    acc = 0.0 if b is None else float(b[o])
                    for c in range(c_in):
                        for p in range(kh):
                            for q in range(kw):
                                acc += w[o, c, p, q] * xp[n, c, i * sh + p, j * sw + q]
                    y[n, o, i, j] = acc
    return y


def direct_conv_transpose2d(x, w, b, stride, padding, output_padding):
    n_, c_in, h, wd = x.shape
    c_in2, c_out, kh, kw = w.shape
    assert c_in == c_in2
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    full = np.zeros((n_, c_out, (h - 1) * sh + kh + oph, (wd - 1) * sw + kw + opw))
    for n in range(n_):
        for c in range(c_in):
            for i in range(h):
                for j in range(wd):
                    for o in range(c_out):
                        for p in range(kh):
                            for q in range(kw):
                                full[n, o, i * sh + p, j * sw + q] += x[n, c, i, j] * w[c, o, p, q]
    ho = (h - 1) * sh - 2 * ph + kh + oph
    wo = (wd - 1) * sw - 2 * pw + kw + opw
    y = full[:, :, ph:ph + ho, pw:pw + wo]
    assert y.shape[2:] == (ho, wo)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


def direct_conv2d_weight_grad(gy, x, kernel_size, stride, padding):
    n_, c_in, h, wd = x.shape
    _, c_out, ho, wo = gy.shape
    kh, kw = kernel_size
    (sh, sw), (ph, pw) = stride, padding
    xp = np.zeros((n_, c_in, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    gw = np.zeros((c_out, c_in, kh, kw))
    for o, c, p, q in itertools.product(range(c_out), range(c_in), range(kh), range(kw)):
        for n, i, j in itertools.product(range(n_), range(ho), range(wo)):
            gw[o, c, p, q] += gy[n, o, i, j] * xp[n, c, i * sh + p, j * sw + q]
    return gw


def direct_conv2d_input_grad(gy, w, input_size, stride, padding):
    """Scatter each output gradient back through the taps that read it (the chain rule, by loops)."""
    n_, c_out, ho, wo = gy.shape
    _, c_in, kh, kw = w.shape
    h, wd = input_size
    (sh, sw), (ph, pw) = stride, padding
    gxp = np.zeros((n_, c_in, h + 2 * ph, wd + 2 * pw))
    for n, o, i, j in itertools.product(range(n_), range(c_out), range(ho), range(wo)):
        for c, p, q in itertools.product(range(c_in), range(kh), range(kw)):
            gxp[n, c, i * sh + p, j * sw + q] += gy[n, o, i, j] * w[o, c, p, q]
    return gxp[:, :, ph:ph + h, pw:pw + wd]


# --------------------------------------------------------------------------- the grid

R = np.random.default_rng(7)

SHAPES = [
    # (N, C_in, C_out, H, W, kH, kW)
    (2, 2, 3, 5, 6, 3, 2),
    (1, 1, 2, 4, 4, 3, 3),
    (2, 3, 2, 6, 5, 2, 3),
    (1, 2, 1, 3, 3, 1, 1),
]
STRIDES = [(1, 1), (2, 2), (2, 1), (1, 3)]
PADDINGS = [(0, 0), (1, 1), (1, 0), (2, 1)]

CONV_CASES = [(s, st, pd) for s in SHAPES for st in STRIDES for pd in PADDINGS
              if s[5] <= s[3] + 2 * pd[0] and s[6] <= s[4] + 2 * pd[1]]
CONVT_CASES = [(s, st, pd, op) for s in SHAPES for st in STRIDES for pd in PADDINGS
               for op in itertools.product(range(st[0]), range(st[1]))
               if (s[3] - 1) * st[0] - 2 * pd[0] + s[5] + op[0] >= 1
               and (s[4] - 1) * st[1] - 2 * pd[1] + s[6] + op[1] >= 1]


def _id(case):
    s = case[0]
    return "N{}Ci{}Co{}_{}x{}_k{}x{}".format(*s) + "_s{}{}_p{}{}".format(*case[1], *case[2]) + \
        ("_op{}{}".format(*case[3]) if len(case) > 3 else "")


@pytest.fixture(params=["reference", "numba"])
def impl(request):
    """Every CPU kernel implementation registered in minivae.kernels must agree with the loops."""
    if request.param not in kernels.implementations("cpu"):
        pytest.fail(f"CPU implementation {request.param!r} is not registered")
    with kernels.use(request.param, device="cpu"):
        yield request.param


def test_grid_is_not_empty():
    assert len(CONV_CASES) > 40 and len(CONVT_CASES) > 60


@pytest.mark.parametrize("case", CONV_CASES, ids=_id)
def test_conv2d_matches_direct_loops(case, impl):
    (n, ci, co, h, w, kh, kw), stride, padding = case
    x, wt, b = R.standard_normal((n, ci, h, w)), R.standard_normal((co, ci, kh, kw)), R.standard_normal(co)
    want = direct_conv2d(x, wt, b, stride, padding)
    got = F.conv2d(mv.Tensor(x), mv.Tensor(wt), mv.Tensor(b), stride=stride, padding=padding)
    assert got.shape == want.shape == (n, co, (h + 2 * padding[0] - kh) // stride[0] + 1,
                                       (w + 2 * padding[1] - kw) // stride[1] + 1)
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-10, atol=1e-12)
    got_nb = F.conv2d(mv.Tensor(x), mv.Tensor(wt), None, stride=stride, padding=padding)
    np.testing.assert_allclose(got_nb.detach().numpy(), want - b.reshape(1, -1, 1, 1), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CONVT_CASES, ids=_id)
def test_conv_transpose2d_matches_direct_scatter(case, impl):
    (n, ci, co, h, w, kh, kw), stride, padding, out_pad = case
    x, wt, b = R.standard_normal((n, ci, h, w)), R.standard_normal((ci, co, kh, kw)), R.standard_normal(co)
    want = direct_conv_transpose2d(x, wt, b, stride, padding, out_pad)
    got = F.conv_transpose2d(mv.Tensor(x), mv.Tensor(wt), mv.Tensor(b), stride=stride, padding=padding,
                             output_padding=out_pad)
    assert got.shape == want.shape == (n, co, (h - 1) * stride[0] - 2 * padding[0] + kh + out_pad[0],
                                       (w - 1) * stride[1] - 2 * padding[1] + kw + out_pad[1])
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES[::3], ids=_id)
def test_conv2d_gradients_match_direct_loops(case, impl):
    (n, ci, co, h, w, kh, kw), stride, padding = case
    x = mv.Tensor(R.standard_normal((n, ci, h, w)), requires_grad=True)
    wt = mv.Tensor(R.standard_normal((co, ci, kh, kw)), requires_grad=True)
    b = mv.Tensor(R.standard_normal(co), requires_grad=True)
    y = F.conv2d(x, wt, b, stride=stride, padding=padding)
    gy = R.standard_normal(y.shape)
    y.backward(gy)
    np.testing.assert_allclose(x.grad.detach().numpy(), direct_conv2d_input_grad(gy, wt.data, (h, w), stride, padding),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(wt.grad.numpy(), direct_conv2d_weight_grad(gy, x.data, (kh, kw), stride, padding),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.grad.detach().numpy(), gy.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    """<conv2d(x, w), g> == <x, conv_transpose2d(g, w)> with the same weight (sizes matched by output_padding)."""
    x, w = R.standard_normal((2, 3, 7, 6)), R.standard_normal((4, 3, 3, 2))
    y = F.conv2d(mv.Tensor(x), mv.Tensor(w), stride=2, padding=1)
    g = R.standard_normal(y.shape)
    op = (7 + 2 - 3) % 2, (6 + 2 - 2) % 2  # what conv2d's floor dropped
    xt = F.conv_transpose2d(mv.Tensor(g), mv.Tensor(w), stride=2, padding=1, output_padding=op)
    assert xt.shape == x.shape
    np.testing.assert_allclose((y.detach().numpy() * g).sum(), (x * xt.detach().numpy()).sum(), rtol=1e-10)


def test_float32_conv_stays_float32_and_close_to_float64():
    x, w, b = R.standard_normal((1, 2, 5, 5)), R.standard_normal((3, 2, 3, 3)), R.standard_normal(3)
    y32 = F.conv2d(mv.Tensor(x.astype(np.float32)), mv.Tensor(w.astype(np.float32)), mv.Tensor(b.astype(np.float32)),
                   stride=2, padding=1)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32.detach().numpy(), direct_conv2d(x, w, b, (2, 2), (1, 1)), rtol=1e-4, atol=1e-5)
    yt = F.conv_transpose2d(mv.Tensor(x.astype(np.float32)), mv.Tensor(w.transpose(1, 0, 2, 3).astype(np.float32)),
                            stride=2, padding=1, output_padding=1)
    assert yt.dtype == np.float32


# --------------------------------------------------------------------------- the reference kernels


@pytest.mark.parametrize("case", CONV_CASES[::2], ids=_id)
def test_reference_conv2d_kernels(case):
    (n, ci, co, h, w, kh, kw), stride, padding = case
    x, wt, b = R.standard_normal((n, ci, h, w)), R.standard_normal((co, ci, kh, kw)), R.standard_normal(co)
    y = ref.conv2d_forward(x, wt, b, stride, padding)
    np.testing.assert_allclose(y, direct_conv2d(x, wt, b, stride, padding), rtol=1e-10, atol=1e-12)
    assert y.flags.c_contiguous and y.dtype == np.float64
    gy = R.standard_normal(y.shape)
    op = tuple(((h, w)[a] + 2 * padding[a] - (kh, kw)[a]) % stride[a] for a in (0, 1))  # conv2d's input grad:
    np.testing.assert_allclose(ref.conv_transpose2d_forward(gy, wt, None, stride, padding, op),  # a convT of gy
                               direct_conv2d_input_grad(gy, wt, (h, w), stride, padding), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ref.conv2d_backward_weight(gy, x, (kh, kw), stride, padding),
                               direct_conv2d_weight_grad(gy, x, (kh, kw), stride, padding), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ref.conv2d_backward_bias(gy), gy.sum(axis=(0, 2, 3)), rtol=1e-12)


@pytest.mark.parametrize("case", CONVT_CASES[::3], ids=_id)
def test_reference_conv_transpose2d_kernels(case):
    (n, ci, co, h, w, kh, kw), stride, padding, out_pad = case
    x, wt, b = R.standard_normal((n, ci, h, w)), R.standard_normal((ci, co, kh, kw)), R.standard_normal(co)
    y = ref.conv_transpose2d_forward(x, wt, b, stride, padding, out_pad)
    np.testing.assert_allclose(y, direct_conv_transpose2d(x, wt, b, stride, padding, out_pad), rtol=1e-10, atol=1e-12)
    gy = R.standard_normal(y.shape)
    # the input gradient of a transposed conv is a conv of gy with the same weight (viewed as C_out x C_in)
    gx, gw = ref.conv_transpose2d_backward(gy, x, wt, stride, padding)
    assert gx.shape == x.shape
    np.testing.assert_allclose(gx, direct_conv2d(gy, wt, None, stride, padding)[:, :, :h, :w], rtol=1e-10,
                               atol=1e-12)
    # adjoint identities: <T(x), gy> == <x, gx>, and the weight gradient by the same bilinearity
    np.testing.assert_allclose(((y - b.reshape(1, -1, 1, 1)) * gy).sum(), (x * gx).sum(), rtol=1e-9)
    assert gw.shape == wt.shape
    np.testing.assert_allclose((gw * wt).sum(), (x * gx).sum(), rtol=1e-9)


def test_reference_output_size_formulas():
    assert ref.conv_output_size(28, 3, 2, 0) == 13
    assert ref.conv_output_size(13, 3, 2, 0) == 6
    assert ref.conv_transpose_output_size(7, 3, 2, 1, 1) == 14
    assert ref.conv_transpose_output_size(14, 3, 2, 1, 1) == 28
    assert ref.conv_transpose_output_size(28, 3, 1, 1, 0) == 28


def test_im2col_col2im_are_adjoint():
    x = R.standard_normal((2, 3, 6, 5))
    cols = ref.im2col(x, (3, 2), (2, 1), (1, 0))
    assert cols.shape == (2, 3, 3, 4, 3, 2)
    g = R.standard_normal(cols.shape)
    back = ref.col2im(g, (6, 5), (2, 1), (1, 0))
    assert back.shape == x.shape
    np.testing.assert_allclose((np.asarray(cols) * g).sum(), (x * back).sum(), rtol=1e-10)


def test_reference_dense_kernels():
    x, w, b = R.standard_normal((4, 3)), R.standard_normal((2, 3)), R.standard_normal(2)
    np.testing.assert_allclose(ref.dense_forward(x, w, b), np.einsum("ni,oi->no", x, w) + b)
    np.testing.assert_allclose(ref.dense_forward(x, w, None), np.einsum("ni,oi->no", x, w))
    gy = R.standard_normal((4, 2))
    gx, gw, gb = ref.dense_backward(gy, x, w)
    np.testing.assert_allclose(gx, np.einsum("no,oi->ni", gy, w))
    np.testing.assert_allclose(gw, np.einsum("no,ni->oi", gy, x))
    np.testing.assert_allclose(gb, gy.sum(0))


def test_reference_reparameterize_kl_kernels():
    mu, logvar, eps = R.standard_normal((3, 2)), R.standard_normal((3, 2)), R.standard_normal((3, 2))
    z, kl = ref.reparameterize_kl_forward(mu, logvar, eps)
    np.testing.assert_allclose(z, mu + np.exp(logvar) ** 0.5 * eps)
    sigma2 = np.exp(logvar)
    # KL(N(mu, s^2) || N(0, 1)) = log(1/s) + (s^2 + mu^2)/2 - 1/2, per dimension
    want = (np.log(1 / np.sqrt(sigma2)) + (sigma2 + mu ** 2) / 2 - 0.5).sum(axis=1)
    np.testing.assert_allclose(kl, want, rtol=1e-12)
    gz, gkl = R.standard_normal((3, 2)), R.standard_normal(3)
    g_mu, g_lv = ref.reparameterize_kl_backward(gz, gkl, mu, logvar, eps)
    np.testing.assert_allclose(g_mu, gz + gkl[:, None] * mu)
    np.testing.assert_allclose(g_lv, gz * eps * np.exp(logvar / 2) / 2 + gkl[:, None] * (np.exp(logvar) - 1) / 2)


def test_reference_bce_kernels_are_stable():
    x = np.array([-800.0, -30.0, -1.0, 0.0, 2.0, 40.0, 800.0])
    t = np.array([1.0, 0.0, 1.0, 0.5, 0.0, 1.0, 0.0])
    loss = ref.bce_with_logits_forward(x, t)
    assert np.isfinite(loss).all()
    small = np.abs(x) < 35
    s = 1 / (1 + np.exp(-x[small]))
    naive = -(t[small] * np.log(s) + (1 - t[small]) * np.log1p(-s))
    np.testing.assert_allclose(loss[small], naive, rtol=1e-9)
    np.testing.assert_allclose(loss[5], np.exp(-40.0), rtol=1e-9)  # t=1, x=40: log(1 + e^-40)
    np.testing.assert_allclose(loss[[0, -1]], [800.0, 800.0])  # -log sigmoid(-800) ~ 800
    g = ref.bce_with_logits_backward(np.ones_like(x), x, t)
    sig = np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))
    np.testing.assert_allclose(g, sig - t, atol=1e-15)


# --------------------------------------------------------------------------- the registry


def test_registry_selects_and_restores():
    default = kernels.current("cpu")
    assert default in kernels.implementations("cpu")
    with kernels.use("reference"):
        assert kernels.current("cpu") == "reference"
        assert kernels.get("conv2d_forward") is ref.conv2d_forward
        with kernels.use("numba"):
            assert kernels.current("cpu") == "numba"
            assert kernels.get("conv2d_forward") is kernels.module("cpu", "numba").conv2d_forward
        assert kernels.current("cpu") == "reference"
    assert kernels.current("cpu") == default


def test_registry_errors_name_the_problem():
    default = kernels.current("cpu")
    with pytest.raises(KeyError, match="unknown kernel 'conv3d_forward'"):
        kernels.get("conv3d_forward")
    with pytest.raises(ValueError, match="no kernel implementation 'fast'.*registered"):
        kernels.use("fast")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        kernels.use("reference", device="tpu")
    assert kernels.current("cpu") == default


def test_reference_module_defines_every_kernel():
    for name in kernels.KERNELS:
        assert callable(getattr(ref, name)), name
