"""Parity of every GPU kernel with reference.py.

On machines without a GPU (CI) the numba-cuda kernels run under the CUDA simulator on NumPy arrays (the
conftest switches it on), so the sizes are tiny: the simulator runs each thread in Python. With
``MINIVAE_REAL_GPU=1`` on a machine with a GPU the same tests run on CuPy arrays, and also check the
"cupy" (cuBLAS) implementation.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from minivae import kernels
from minivae.backend import gpu_status
from minivae.kernels import cublas, gpu
from minivae.kernels import reference as ref


def _mode() -> tuple[str, str]:
    if gpu.simulated():
        return "sim", "CUDA simulator on NumPy arrays"
    ok, why = gpu_status()
    return ("gpu", "real GPU on CuPy arrays") if ok else ("none", why)


MODE, WHY = _mode()
if MODE == "none":
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise RuntimeError(f"GPU kernel tests cannot run in CI: neither the simulator nor a GPU ({WHY})")
    pytestmark = pytest.mark.skip(reason=f"no CUDA simulator and no GPU: {WHY}")

IMPLS = ["numba", "cupy"] if MODE == "gpu" else ["numba"]
DTYPES = [np.float32, np.float64]


def _to_dev(a):
    if MODE == "gpu" and isinstance(a, np.ndarray):
        import cupy

        return cupy.asarray(a)
    return a


def _to_host(a):
    if isinstance(a, tuple):
        return tuple(_to_host(b) for b in a)
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else a


def run(impl: str, name: str, *args):
    """Kernel ``name`` of implementation ``impl`` on device copies of ``args``; results back on the host."""
    fn = getattr(kernels.module("gpu", impl), name)
    return _to_host(fn(*[_to_dev(a) for a in args]))


def assert_close(actual, expected, dtype):
    """Equal to the reference up to rounding: tolerance relative to the largest reference entry."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == np.dtype(dtype), f"output dtype {actual.dtype}, expected {np.dtype(dtype)}"
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def _randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------- registry

def test_gpu_implementations_are_registered_and_complete():
    assert {"numba", "cupy"} <= set(kernels.implementations("gpu"))
    assert kernels.module("gpu", "numba") is gpu
    assert kernels.module("gpu", "cupy") is cublas
    with kernels.use("reference", device="gpu"):
        assert kernels.current("gpu") == "reference"
    for mod in (gpu, cublas):
        missing = [k for k in kernels.KERNELS if not callable(getattr(mod, k, None))]
        assert not missing, f"{mod.__name__} lacks {missing}"


def test_gpu_kernels_reject_integer_arrays():
    x = np.ones((1, 1, 3, 3), dtype=np.int64)
    with pytest.raises(TypeError, match="float32 and float64"):
        gpu.conv2d_forward(x, np.ones((1, 1, 2, 2), dtype=np.int64), None, (1, 1), (0, 0))


# --------------------------------------------------------------------------- conv2d

# N, C_in, C_out, H, W, (kH, kW), stride, padding, bias
CONV_CASES = [
    (2, 2, 2, 6, 5, (3, 3), (1, 1), (0, 0), True),
    (2, 2, 3, 7, 6, (3, 3), (2, 2), (1, 1), False),
    (1, 3, 2, 7, 8, (3, 2), (2, 1), (1, 0), True),
    (2, 1, 2, 5, 5, (2, 2), (1, 2), (0, 1), True),
    (1, 1, 2, 6, 7, (5, 6), (1, 1), (1, 0), False),  # 30 taps: the generic weight-gradient kernel
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"s{c[6]}-p{c[7]}-k{c[5]}-b{int(c[8])}")
def test_conv2d_kernels_match_reference(case, dtype, impl):
    n, c_in, c_out, h, w, k, stride, padding, has_bias = case
    rng = np.random.default_rng(1)
    x = _randn(rng, (n, c_in, h, w), dtype)
    weight = _randn(rng, (c_out, c_in) + k, dtype)
    bias = _randn(rng, (c_out,), dtype) if has_bias else None
    expected = ref.conv2d_forward(x, weight, bias, stride, padding)
    assert_close(run(impl, "conv2d_forward", x, weight, bias, stride, padding), expected, dtype)

    gy = _randn(rng, expected.shape, dtype)
    op = tuple(((h, w)[a] + 2 * padding[a] - k[a]) % stride[a] for a in (0, 1))  # conv2d's input gradient
    assert_close(run(impl, "conv_transpose2d_forward", gy, weight, None, stride, padding, op),
          ref.conv_transpose2d_forward(gy, weight, None, stride, padding, op), dtype)
    assert_close(run(impl, "conv2d_backward_weight", gy, x, k, stride, padding),
          ref.conv2d_backward_weight(gy, x, k, stride, padding), dtype)
    assert_close(run(impl, "conv2d_backward_bias", gy), ref.conv2d_backward_bias(gy), dtype)


def test_conv2d_forward_accepts_non_contiguous_input():
    rng = np.random.default_rng(2)
    x = np.asfortranarray(_randn(rng, (1, 2, 5, 4), np.float64))
    weight = _randn(rng, (2, 2, 3, 3), np.float64)[:, :, ::-1, :]  # negative strides
    assert_close(run("numba", "conv2d_forward", x, weight, None, (1, 1), (1, 1)),
          ref.conv2d_forward(x, weight, None, (1, 1), (1, 1)), np.float64)


# --------------------------------------------------------------------------- conv_transpose2d

# N, C_in, C_out, H, W, (kH, kW), stride, padding, output_padding, bias
CONVT_CASES = [
    (2, 2, 2, 4, 3, (3, 3), (2, 2), (1, 1), (1, 1), True),
    (1, 3, 2, 3, 4, (3, 2), (2, 1), (0, 1), (1, 0), False),
    (2, 2, 1, 4, 4, (3, 3), (1, 1), (1, 1), (0, 0), True),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONVT_CASES, ids=lambda c: f"s{c[6]}-p{c[7]}-op{c[8]}-b{int(c[9])}")
def test_conv_transpose2d_kernels_match_reference(case, dtype, impl):
    n, c_in, c_out, h, w, k, stride, padding, output_padding, has_bias = case
    rng = np.random.default_rng(3)
    x = _randn(rng, (n, c_in, h, w), dtype)
    weight = _randn(rng, (c_in, c_out) + k, dtype)
    bias = _randn(rng, (c_out,), dtype) if has_bias else None
    expected = ref.conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding)
    got = run(impl, "conv_transpose2d_forward", x, weight, bias, stride, padding, output_padding)
    assert_close(got, expected, dtype)

    gy = _randn(rng, expected.shape, dtype)
    got = run(impl, "conv_transpose2d_backward", gy, x, weight, stride, padding)
    for a, b in zip(got, ref.conv_transpose2d_backward(gy, x, weight, stride, padding)):
        assert_close(a, b, dtype)


# --------------------------------------------------------------------------- dense

# N, in_features, out_features, bias: spans several GEMM tiles along every axis (tile 8 in the simulator)
DENSE_CASES = [(5, 20, 7, True), (9, 3, 17, False), (1, 1, 1, True)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", DENSE_CASES, ids=lambda c: f"{c[0]}x{c[1]}->{c[2]}-b{int(c[3])}")
def test_dense_kernels_match_reference(case, dtype, impl):
    n, fin, fout, has_bias = case
    rng = np.random.default_rng(4)
    x = _randn(rng, (n, fin), dtype)
    weight = _randn(rng, (fout, fin), dtype)
    bias = _randn(rng, (fout,), dtype) if has_bias else None
    assert_close(run(impl, "dense_forward", x, weight, bias), ref.dense_forward(x, weight, bias), dtype)

    gy = _randn(rng, (fout, n), dtype).T  # a transposed (non-contiguous) view, as autograd may pass
    for got, expected in zip(run(impl, "dense_backward", gy, x, weight), ref.dense_backward(gy, x, weight)):
        assert_close(got, expected, dtype)


# --------------------------------------------------------------------------- reparameterize + KL, BCE

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reparameterize_kl_kernels_match_reference(dtype, impl):
    rng = np.random.default_rng(5)
    mu = _randn(rng, (4, 3), dtype)
    logvar = (3 * _randn(rng, (4, 3), dtype)).astype(dtype)
    eps = _randn(rng, (4, 3), dtype)
    z, kl = run(impl, "reparameterize_kl_forward", mu, logvar, eps)
    z_ref, kl_ref = ref.reparameterize_kl_forward(mu, logvar, eps)
    assert_close(z, z_ref, dtype)
    assert_close(kl, kl_ref, dtype)

    gz, gkl = _randn(rng, (4, 3), dtype), _randn(rng, (4,), dtype)
    got = run(impl, "reparameterize_kl_backward", gz, gkl, mu, logvar, eps)
    for g, e in zip(got, ref.reparameterize_kl_backward(gz, gkl, mu, logvar, eps)):
        assert_close(g, e, dtype)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_kernels_match_reference_and_stay_finite(dtype, impl):
    rng = np.random.default_rng(6)
    logits = (4 * _randn(rng, (2, 1, 4, 5), dtype)).astype(dtype)
    logits[0, 0, 0, :3] = [-200.0, 200.0, 0.0]  # exp would overflow in a naive form
    target = (rng.random((2, 1, 4, 5)) < 0.5).astype(dtype)
    target[1, 0, 0, 0] = 0.3  # soft targets too
    loss = run(impl, "bce_with_logits_forward", logits, target)
    assert np.isfinite(loss).all()
    assert_close(loss, ref.bce_with_logits_forward(logits, target), dtype)

    gy = _randn(rng, logits.shape, dtype)
    assert_close(run(impl, "bce_with_logits_backward", gy, logits, target),
          ref.bce_with_logits_backward(gy, logits, target), dtype)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_kernels_match_reference(dtype, impl):
    rng = np.random.default_rng(8)
    x = _randn(rng, (2, 3, 4, 5), dtype)
    x[0, 0, 0, :2] = 0.0
    y = run(impl, "relu_forward", x)
    np.testing.assert_array_equal(y, ref.relu_forward(x))
    gy = _randn(rng, x.shape, dtype)
    np.testing.assert_array_equal(run(impl, "relu_backward", gy, ref.relu_forward(x)),
                                  ref.relu_backward(gy, ref.relu_forward(x)))


def test_cupy_implementation_falls_back_to_reference_on_numpy_arrays():
    rng = np.random.default_rng(7)
    mu, logvar, eps = (_randn(rng, (3, 2), np.float64) for _ in range(3))
    for got, expected in zip(cublas.reparameterize_kl_forward(mu, logvar, eps),
                             ref.reparameterize_kl_forward(mu, logvar, eps)):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(cublas.bce_with_logits_forward(mu, eps > 0),
                                  ref.bce_with_logits_forward(mu, eps > 0))
