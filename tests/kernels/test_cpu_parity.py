"""Parity of the Numba CPU kernels (minivae.kernels.cpu) with their NumPy reference twins, gradient checks
of the differentiable ops on the Numba kernels, and a short ConvVAE training run under both kernel sets.

Tolerances: float64 ``rtol = atol = 1e-10`` (the two differ only in summation order); float32
``rtol = 1e-4, atol = 1e-5`` relative to the largest output magnitude (summation order over up to a few
hundred products of O(1) values).
"""
from __future__ import annotations

import itertools
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minivae
import minivae.functional as F
from minivae import kernels
from minivae.autograd.tensor import Tensor
from minivae.kernels import cpu, reference

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-10)}
DTYPES = [np.float32, np.float64]


def assert_parity(name, *args):
    """Call kernel ``name`` from both modules on ``args`` and compare every output (shape, dtype, values)."""
    want = getattr(reference, name)(*args)
    got = getattr(cpu, name)(*args)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    dtype = args[0].dtype.type
    for g, w in zip(got, want):
        assert isinstance(g, np.ndarray)
        assert g.shape == w.shape, name
        assert g.dtype == w.dtype == dtype, name
        scale = max(1.0, float(np.abs(w).max())) if w.size else 1.0
        tol = TOL[dtype]
        np.testing.assert_allclose(g, w, rtol=tol["rtol"], atol=tol["atol"] * scale, err_msg=name)


def _arr(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def assert_input_grad_parity(gy, weight, input_size, stride, padding):
    """conv2d's input gradient, as the conv op computes it: conv_transpose2d_forward of gy with the output padding
    that gives back the input size."""
    op = tuple((input_size[a] + 2 * padding[a] - weight.shape[2 + a]) % stride[a] for a in (0, 1))
    assert_parity("conv_transpose2d_forward", gy, weight, None, stride, padding, op)


def test_every_kernel_is_implemented():
    for name in kernels.KERNELS:
        assert callable(getattr(cpu, name)), name
    assert kernels.module("cpu", "numba") is cpu


def test_default_cpu_implementation_is_numba():
    # in a fresh interpreter: other tests may have selected an implementation in this one
    code = ("import minivae.kernels as k, minivae.kernels.cpu as c; "
            "print(k.current('cpu'), k.get('conv2d_forward') is c.conv2d_forward)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=pathlib.Path(__file__).resolve().parents[2]).stdout.split()
    assert out == ["numba", "True"]


def test_use_selects_and_restores():
    before = kernels.get("conv2d_forward")
    with kernels.use("reference"):
        assert kernels.get("conv2d_forward") is reference.conv2d_forward
        with kernels.use("numba"):
            assert kernels.get("conv2d_forward") is cpu.conv2d_forward
        assert kernels.get("conv2d_forward") is reference.conv2d_forward
    assert kernels.get("conv2d_forward") is before


# (N, C_in, H, W, C_out, kH, kW): batch 1 and >1, square and non-square inputs and kernels.
CONV_SHAPES = [
    (1, 1, 5, 5, 2, 3, 3),
    (3, 2, 7, 6, 4, 3, 2),
    (2, 3, 8, 5, 3, 1, 3),
    (4, 1, 6, 9, 5, 2, 2),
    (2, 5, 6, 7, 4, 3, 3),  # C*kH*kW >= 32: the weight gradients' one-GEMM-per-chunk path
    (2, 2, 12, 11, 3, 3, 3),  # more than 64 output pixels per example
]
STRIDES = [(1, 1), (2, 2), (2, 1)]
PADDINGS = [(0, 0), (1, 1), (0, 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_conv2d_parity(dtype, shape):
    rng = np.random.default_rng(1)
    n, c, h, w, co, kh, kw = shape
    x = _arr(rng, (n, c, h, w), dtype)
    weight = _arr(rng, (co, c, kh, kw), dtype)
    bias = _arr(rng, (co,), dtype)
    for stride, padding in itertools.product(STRIDES, PADDINGS):
        for b in (bias, None):
            assert_parity("conv2d_forward", x, weight, b, stride, padding)
        gy = _arr(rng, reference.conv2d_forward(x, weight, None, stride, padding).shape, dtype)
        assert_input_grad_parity(gy, weight, (h, w), stride, padding)
        assert_parity("conv2d_backward_weight", gy, x, (kh, kw), stride, padding)
        assert_parity("conv2d_backward_bias", gy)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_conv_transpose2d_parity(dtype, shape):
    rng = np.random.default_rng(2)
    n, c, h, w, co, kh, kw = shape
    x = _arr(rng, (n, c, h, w), dtype)
    weight = _arr(rng, (c, co, kh, kw), dtype)
    bias = _arr(rng, (co,), dtype)
    for stride, padding in itertools.product(STRIDES, PADDINGS):
        for output_padding in {(0, 0), (stride[0] - 1, stride[1] - 1)}:
            for b in (bias, None):
                assert_parity("conv_transpose2d_forward", x, weight, b, stride, padding, output_padding)
            y = reference.conv_transpose2d_forward(x, weight, None, stride, padding, output_padding)
            gy = _arr(rng, y.shape, dtype)
            assert_parity("conv_transpose2d_backward", gy, x, weight, stride, padding)
            assert_parity("conv2d_backward_bias", gy)


# (N, C_in, H, W, C_out, kH, kW) of a transposed convolution: C_out*kH*kW >= 32 (the shared-im2col path) with
# few and many output pixels, and < 32 (the two single kernels)
SHARED_SHAPES = [(3, 4, 5, 6, 8, 3, 3), (9, 6, 7, 7, 16, 3, 2), (2, 3, 12, 11, 5, 3, 3), (5, 2, 4, 4, 3, 3, 3),
                 (1, 2, 3, 3, 4, 3, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHARED_SHAPES)
def test_conv_transpose2d_backward_shared_im2col_has_the_bits_of_the_two_kernels(dtype, shape):
    """conv_transpose2d_backward gives (gx, gW) from one im2col of gy per block: the same bits as the set's
    conv2d_forward(gy, W) and conv2d_backward_weight(x, gy), and the reference's values."""
    rng = np.random.default_rng(7)
    n, c, h, w, co, kh, kw = shape
    x = _arr(rng, (n, c, h, w), dtype)
    weight = _arr(rng, (c, co, kh, kw), dtype)
    for stride, padding in itertools.product(STRIDES, PADDINGS):
        output_padding = (stride[0] - 1, stride[1] - 1)
        gy = _arr(rng, reference.conv_transpose2d_forward(x, weight, None, stride, padding, output_padding).shape,
                  dtype)
        gx, gw = cpu.conv_transpose2d_backward(gy, x, weight, stride, padding)
        np.testing.assert_array_equal(gx, cpu.conv2d_forward(gy, weight, None, stride, padding))
        np.testing.assert_array_equal(gw, cpu.conv2d_backward_weight(x, gy, (kh, kw), stride, padding))
        for got, want in zip((gx, gw), reference.conv_transpose2d_backward(gy, x, weight, stride, padding)):
            assert got.dtype == want.dtype == dtype and got.shape == want.shape
            tol = TOL[dtype]
            np.testing.assert_allclose(got, want, rtol=tol["rtol"], atol=tol["atol"] * max(1.0, np.abs(want).max()))


def test_conv_transpose2d_backward_shared_at_the_vae_shape_and_empty_batch():
    """convT2 of the conv VAE (64 -> 32 channels, 14 -> 28) over 41 examples (several blocks per chunk, short
    last blocks); an empty batch gives empty gx and a zero gW."""
    rng = np.random.default_rng(8)
    x = _arr(rng, (41, 64, 14, 14), np.float32)
    weight = _arr(rng, (64, 32, 3, 3), np.float32)
    gy = _arr(rng, (41, 32, 28, 28), np.float32)
    gx, gw = cpu.conv_transpose2d_backward(gy, x, weight, (2, 2), (1, 1))
    np.testing.assert_array_equal(gx, cpu.conv2d_forward(gy, weight, None, (2, 2), (1, 1)))
    np.testing.assert_array_equal(gw, cpu.conv2d_backward_weight(x, gy, (3, 3), (2, 2), (1, 1)))
    gx0, gw0 = cpu.conv_transpose2d_backward(gy[:0], x[:0], weight, (2, 2), (1, 1))
    assert gx0.shape == (0, 64, 14, 14) and gw0.shape == (64, 32, 3, 3) and not gw0.any()


def test_conv_parity_at_the_conv_vae_shapes_batch_over_threads():
    """Batch 9 is split into uneven chunks over the threads; the VAE's strides/paddings, float32."""
    rng = np.random.default_rng(3)
    x = rng.random((9, 1, 28, 28), dtype=np.float32)
    w1 = _arr(rng, (32, 1, 3, 3), np.float32)
    assert_parity("conv2d_forward", x, w1, _arr(rng, (32,), np.float32), (2, 2), (0, 0))
    h = _arr(rng, (9, 64, 14, 14), np.float32)
    wt = _arr(rng, (64, 32, 3, 3), np.float32)
    assert_parity("conv_transpose2d_forward", h, wt, _arr(rng, (32,), np.float32), (2, 2), (1, 1), (1, 1))
    gy = _arr(rng, (9, 32, 28, 28), np.float32)
    assert_parity("conv_transpose2d_backward", gy, h, wt, (2, 2), (1, 1))
    assert_parity("conv2d_backward_bias", gy)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_parity_on_the_folded_small_image_path(dtype):
    """Fewer than 64 output pixels per example: the forward and col2im GEMMs fold blocks of examples
    (_cpu_conv_jit._FOLD_BELOW_L); 41 examples of 64x7x7 give blocks of 4 (float32) or 2 (float64) examples of
    576 x 49 columns, several per chunk and some chunks ending in a shorter block; the conv VAE's 6x6 layer too
    (13x13 input, no padding)."""
    from minivae.kernels import _cpu_conv_jit

    rng = np.random.default_rng(5)
    x = _arr(rng, (41, 64, 7, 7), dtype)
    ckk, L = 64 * 9, 49
    block = _cpu_conv_jit._FOLD_BLOCK_BYTES // (ckk * L * x.itemsize)
    assert L < _cpu_conv_jit._FOLD_BELOW_L and 1 < block < 10
    w = _arr(rng, (32, 64, 3, 3), dtype)
    assert_parity("conv2d_forward", x, w, _arr(rng, (32,), dtype), (1, 1), (1, 1))
    assert_input_grad_parity(_arr(rng, (41, 32, 7, 7), dtype), w, (7, 7), (1, 1), (1, 1))
    wt = _arr(rng, (64, 32, 3, 3), dtype)
    assert_parity("conv_transpose2d_forward", x, wt, _arr(rng, (32,), dtype), (2, 2), (1, 1), (1, 1))
    x13 = _arr(rng, (37, 32, 13, 13), dtype)
    w2 = _arr(rng, (64, 32, 3, 3), dtype)
    assert_parity("conv2d_forward", x13, w2, _arr(rng, (64,), dtype), (2, 2), (0, 0))
    assert_input_grad_parity(_arr(rng, (37, 64, 6, 6), dtype), w2, (13, 13), (2, 2), (0, 0))


def test_non_contiguous_inputs():
    rng = np.random.default_rng(4)
    x = _arr(rng, (3, 5, 6, 2), np.float64).transpose(0, 3, 1, 2)  # (3, 2, 5, 6), not C-contiguous
    weight = _arr(rng, (4, 2, 3, 3), np.float64)[..., ::-1]  # reversed last axis: negative strides
    assert not x.flags.c_contiguous and not weight.flags.c_contiguous
    assert_parity("conv2d_forward", x, weight, None, (1, 1), (1, 1))
    assert_parity("conv_transpose2d_forward", x, weight[:2].copy()[..., ::-1], None, (2, 2), (1, 1), (1, 1))
    a = _arr(rng, (6, 4), np.float64).T  # (4, 6), Fortran order
    assert_parity("dense_forward", a, _arr(rng, (3, 6), np.float64), _arr(rng, (3,), np.float64))
    assert_parity("dense_backward", _arr(rng, (3, 4), np.float64).T, a, _arr(rng, (6, 3), np.float64).T)
    assert_parity("bce_with_logits_forward", a, (a > 0).astype(np.float64))


@st.composite
def conv_cases(draw):
    n = draw(st.integers(1, 3))
    c, co = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 10))
    w = draw(st.integers(max(1, kw - 2 * pw), 10))
    return n, c, h, w, co, kh, kw, (sh, sw), (ph, pw)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases(), st.sampled_from(DTYPES))
def test_conv2d_parity_hypothesis(case, dtype):
    n, c, h, w, co, kh, kw, stride, padding = case
    rng = np.random.default_rng(5)
    x, weight = _arr(rng, (n, c, h, w), dtype), _arr(rng, (co, c, kh, kw), dtype)
    assert_parity("conv2d_forward", x, weight, _arr(rng, (co,), dtype), stride, padding)
    gy = _arr(rng, reference.conv2d_forward(x, weight, None, stride, padding).shape, dtype)
    assert_input_grad_parity(gy, weight, (h, w), stride, padding)
    assert_parity("conv2d_backward_weight", gy, x, (kh, kw), stride, padding)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases(), st.sampled_from(DTYPES), st.data())
def test_conv_transpose2d_parity_hypothesis(case, dtype, data):
    n, c, h, w, co, kh, kw, stride, padding = case
    output_padding = (data.draw(st.integers(0, stride[0] - 1)), data.draw(st.integers(0, stride[1] - 1)))
    out = [reference.conv_transpose_output_size(s, k, st_, p, op) for s, k, st_, p, op in
           zip((h, w), (kh, kw), stride, padding, output_padding)]
    if min(out) < 1:
        return
    rng = np.random.default_rng(6)
    x, weight = _arr(rng, (n, c, h, w), dtype), _arr(rng, (c, co, kh, kw), dtype)
    assert_parity("conv_transpose2d_forward", x, weight, _arr(rng, (co,), dtype), stride, padding, output_padding)
    gy = _arr(rng, (n, co, *out), dtype)
    assert_parity("conv_transpose2d_backward", gy, x, weight, stride, padding)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d_in,d_out", [(1, 3, 2), (8, 2304, 4), (5, 2, 1568)])
def test_dense_parity(dtype, n, d_in, d_out):
    rng = np.random.default_rng(7)
    x, weight = _arr(rng, (n, d_in), dtype), _arr(rng, (d_out, d_in), dtype)
    assert_parity("dense_forward", x, weight, _arr(rng, (d_out,), dtype))
    assert_parity("dense_forward", x, weight, None)
    assert_parity("dense_backward", _arr(rng, (n, d_out), dtype), x, weight)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d", [(1, 1), (7, 2), (128, 20)])
def test_reparameterize_kl_parity(dtype, n, d):
    rng = np.random.default_rng(8)
    mu, logvar, eps = (_arr(rng, (n, d), dtype) for _ in range(3))
    assert_parity("reparameterize_kl_forward", mu, logvar, eps)
    assert_parity("reparameterize_kl_backward", _arr(rng, (n, d), dtype), _arr(rng, (n,), dtype), mu, logvar, eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 1, 5, 4), (40, 1, 28, 28)])
def test_bce_with_logits_parity(dtype, shape):
    rng = np.random.default_rng(9)
    logits = (_arr(rng, shape, dtype) * 30).astype(dtype)  # large |x|: the stable form matters
    target = (rng.random(shape) < 0.5).astype(dtype)
    assert_parity("bce_with_logits_forward", logits, target)
    assert_parity("bce_with_logits_backward", _arr(rng, shape, dtype), logits, target)
    assert np.all(np.isfinite(cpu.bce_with_logits_forward(logits, target)))


@pytest.mark.parametrize("c_in", [1, 8])  # the weight gradient's per-example (few columns) and folded paths
def test_empty_batch_gives_empty_outputs_and_zero_gradients(c_in):
    x, gy = np.zeros((0, c_in, 8, 8), np.float32), np.zeros((0, 5, 4, 4), np.float32)
    w = np.ones((5, c_in, 3, 3), np.float32)
    assert cpu.conv2d_forward(x, w, None, (2, 2), (1, 1)).shape == (0, 5, 4, 4)
    assert cpu.conv_transpose2d_forward(gy, w, None, (2, 2), (1, 1), (1, 1)).shape == (0, c_in, 8, 8)
    np.testing.assert_array_equal(cpu.conv2d_backward_weight(gy, x, (3, 3), (2, 2), (1, 1)), np.zeros_like(w))
    np.testing.assert_array_equal(cpu.conv2d_backward_bias(gy), np.zeros(5, np.float32))
    assert cpu.relu_forward(x).shape == x.shape and cpu.bce_with_logits_forward(x, x).shape == x.shape


def test_mixed_float32_float64_operands_are_promoted_not_misread():
    """The jitted GEMM reads raw memory: a float64 weight with float32 images must be converted first (the
    result is float64, as the reference and NumPy's matmul give), never read as float32 bits."""
    rng = np.random.default_rng(12)
    x, gy = _arr(rng, (4, 3, 8, 8), np.float32), _arr(rng, (4, 5, 4, 4), np.float32)
    w = _arr(rng, (5, 3, 3, 3), np.float64)
    for name, args in [("conv2d_forward", (x, w, None, (2, 2), (1, 1))),
                       ("conv_transpose2d_forward", (gy, w, None, (2, 2), (1, 1), (1, 1))),
                       ("conv2d_backward_weight", (gy, x.astype(np.float64), (3, 3), (2, 2), (1, 1))),
                       ("conv_transpose2d_forward", (gy, w, None, (2, 2), (1, 1), (1, 1)))]:
        got, want = getattr(cpu, name)(*args), getattr(reference, name)(*args)
        assert got.dtype == want.dtype == np.float64, name
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)
    with pytest.raises(TypeError, match="float32 and float64"):
        cpu.conv2d_forward(np.ones((1, 3, 8, 8), np.int64), np.ones((5, 3, 3, 3), np.int64), None, (1, 1), (0, 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (3, 1, 5, 4), (128, 32, 13, 13)])  # the last one splits over threads
def test_relu_parity_is_exact(dtype, shape):
    rng = np.random.default_rng(10)
    x = _arr(rng, shape, dtype)
    x.reshape(-1)[::7] = 0.0  # ties at 0: the subgradient 0, as reference and PyTorch
    y = cpu.relu_forward(x)
    np.testing.assert_array_equal(y, reference.relu_forward(x))
    assert y.dtype == dtype and y.shape == shape
    gy = _arr(rng, shape, dtype)
    gx = cpu.relu_backward(gy, y)
    np.testing.assert_array_equal(gx, reference.relu_backward(gy, y))
    assert gx.dtype == dtype and np.all(gx[y <= 0] == 0) and np.array_equal(gx[y > 0], gy[y > 0])


def test_relu_nan_and_shape_mismatch():
    x = np.array([np.nan, -1.0, 2.0, -np.inf, np.inf], dtype=np.float32)
    np.testing.assert_array_equal(cpu.relu_forward(x), [np.nan, 0.0, 2.0, 0.0, np.inf])
    gy = np.full(5, np.nan, dtype=np.float32)
    y = reference.relu_forward(x)
    np.testing.assert_array_equal(cpu.relu_backward(gy, y), reference.relu_backward(gy, y))  # NaN only where y > 0
    with pytest.raises(ValueError, match="gradient shape"):
        cpu.relu_backward(np.ones(3, np.float32), np.ones(4, np.float32))


def test_bce_extreme_logits_are_finite_and_exact():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=np.float32)
    t = np.array([0.0, 1.0, 1.0, 0.0, 1.0], dtype=np.float32)
    got = cpu.bce_with_logits_forward(x, t)
    np.testing.assert_allclose(got, [0.0, 50.0, np.log(2.0), 50.0, 0.0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cpu.bce_with_logits_backward(np.ones_like(x), x, t), [0, -1, -0.5, 1, 0], atol=1e-6)


# --------------------------------------------------------------------------- autograd ops on the Numba kernels


def _t(rng, shape, requires_grad=True):
    return Tensor(rng.standard_normal(shape), requires_grad=requires_grad)


@pytest.fixture
def numba_kernels():
    with kernels.use("numba") as selection:
        yield selection


def test_gradcheck_conv2d(numba_kernels):
    rng = np.random.default_rng(10)
    x, w, b = _t(rng, (2, 2, 6, 5)), _t(rng, (3, 2, 3, 2)), _t(rng, (3,))
    assert minivae.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1), [x, w, b])


def test_gradcheck_conv_transpose2d(numba_kernels):
    rng = np.random.default_rng(11)
    x, w, b = _t(rng, (2, 3, 4, 3)), _t(rng, (3, 2, 3, 3)), _t(rng, (2,))
    assert minivae.gradcheck(
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1), [x, w, b])


def test_gradcheck_linear(numba_kernels):
    rng = np.random.default_rng(12)
    assert minivae.gradcheck(F.linear, [_t(rng, (4, 5)), _t(rng, (3, 5)), _t(rng, (3,))])


def test_gradcheck_reparameterize_kl(numba_kernels):
    rng = np.random.default_rng(13)
    mu, logvar = _t(rng, (3, 2)), _t(rng, (3, 2))
    eps = _t(rng, (3, 2), requires_grad=False)
    assert minivae.gradcheck(lambda m, lv: F.reparameterize_kl(m, lv, eps), [mu, logvar])


def test_gradcheck_bce_with_logits(numba_kernels):
    rng = np.random.default_rng(14)
    target = Tensor((rng.random((2, 1, 3, 3)) < 0.5).astype(np.float64))
    assert minivae.gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, target), [_t(rng, (2, 1, 3, 3))])


def test_ops_preserve_float32(numba_kernels):
    rng = np.random.default_rng(15)
    x = Tensor(rng.standard_normal((2, 1, 8, 8)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), requires_grad=True)
    wt = Tensor(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), requires_grad=True)
    h = F.conv2d(x, w, stride=2, padding=1)
    y = F.conv_transpose2d(h, wt, stride=2, padding=1, output_padding=1)
    loss = F.binary_cross_entropy_with_logits(y, Tensor(np.ones((2, 1, 8, 8), np.float32)))
    loss.backward()
    for t in (h, y, loss, x.grad, w.grad, wt.grad):
        data = t.data if isinstance(t, Tensor) else t
        assert data.dtype == np.float32


# --------------------------------------------------------------------------- training: numba == reference


def _train_losses(kernel_set, steps=3):
    from minivae.models import ConvVAE
    from minivae.optim import Adam
    from minivae.train import train_step

    data_rng = np.random.default_rng(16)
    x = (data_rng.random((steps, 8, 1, 28, 28)) < 0.3).astype(np.float32)
    with kernels.use(kernel_set):
        np.random.seed(0)  # in case an initialiser uses the global state
        model = ConvVAE(latent_dim=2)
        model_rng = np.random.default_rng(17)
        for p in model.parameters():  # same weights for both kernel sets, whatever the init does
            p.data[...] = (model_rng.standard_normal(p.data.shape) * 0.05).astype(p.data.dtype)
        opt = Adam(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(18)
        return [train_step(model, opt, x[i], rng) for i in range(steps)]


def test_conv_vae_training_steps_match_reference():
    pytest.importorskip("minivae.train")
    ref = _train_losses("reference")
    fast = _train_losses("numba")
    for r, f in zip(ref, fast):
        for key in ("loss", "recon", "kl"):
            assert np.isfinite(f[key])
            np.testing.assert_allclose(f[key], r[key], rtol=1e-4, atol=1e-4, err_msg=key)
    assert ref[0]["loss"] != ref[-1]["loss"]  # the steps did update the model


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_kernels_work_in_a_forked_child():
    """GNU OpenMP cannot start a parallel region in a child forked after the parent ran one (Numba kills the
    child); the kernels must run their chunks one by one there (a forked DataLoader worker would otherwise
    die on its first convolution)."""
    rng = np.random.default_rng(19)
    x, w = _arr(rng, (8, 2, 9, 9), np.float32), _arr(rng, (3, 2, 3, 3), np.float32)
    want = cpu.conv2d_forward(x, w, None, (1, 1), (1, 1))  # a parallel region in this process
    pid = os.fork()
    if pid == 0:  # child: exit status 0 only if the kernel returns the same result
        ok = False
        try:
            ok = np.allclose(cpu.conv2d_forward(x, w, None, (1, 1), (1, 1)), want)
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the kernel hung in a forked child")
