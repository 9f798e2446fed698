"""Tests on a real CUDA GPU (skipped, with the reason, elsewhere).

Run them on a machine with a GPU with ``MINIVAE_REAL_GPU=1 pytest -rs tests/test_gpu_device.py`` (without
that variable the conftest switches the CUDA simulator on, which is not a real GPU).

* kernel parity on CuPy arrays at the conv VAE's shapes (batch 32), numba-cuda and CuPy/cuBLAS against
  reference.py on the CPU;
* op-level gradient checks in float64 on the GPU through ``minivae.functional`` with the numba kernels;
* a clear DeviceMismatchError when CPU and GPU tensors meet;
* a few training steps of ``ConvVAE`` on the GPU matching the same steps on the CPU.
"""
from __future__ import annotations

import numpy as np
import pytest

from minivae.backend import gpu_status

_OK, _WHY = gpu_status()
if not _OK:
    pytest.skip(f"no real GPU: {_WHY}", allow_module_level=True)

import cupy as cp  # noqa: E402  (after the sys.path / environment set-up above)

import minivae as mv  # noqa: E402  (after the sys.path / environment set-up above)
import minivae.functional as F  # noqa: E402  (after the sys.path / environment set-up above)
from minivae import kernels  # noqa: E402  (after the sys.path / environment set-up above)
from minivae.backend import DeviceMismatchError  # noqa: E402  (after the sys.path / environment set-up above)
from minivae.kernels import gpu  # noqa: E402  (after the sys.path / environment set-up above)
from minivae.kernels import reference as ref  # noqa: E402  (after the sys.path / environment set-up above)

BATCH = 32


def test_numba_cuda_is_not_simulated():
    assert not gpu.simulated()
    y = gpu.dense_forward(cp.ones((3, 4), cp.float32), cp.ones((2, 4), cp.float32), None)
    assert isinstance(y, cp.ndarray) and y.dtype == cp.float32
    cp.testing.assert_array_equal(y, cp.full((3, 2), 4.0, cp.float32))


def test_sm_count_is_the_devices():
    from minivae.kernels import _cuda_compat

    assert _cuda_compat.sm_count(cp) == cp.cuda.Device().attributes["MultiProcessorCount"]


def _assert_close(got, expected, dtype):
    """GPU result vs the CPU reference computed in float64 from the same inputs."""
    got = cp.asnumpy(got)
    assert got.dtype == np.dtype(dtype) and got.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale)


# The conv VAE (minivae.models.ConvVAE): x -> Conv2d(1,32,3,s2) -> Conv2d(32,64,3,s2) -> Linear(2304, 2L);
# z -> Linear(L, 1568) -> ConvT(32,64,3,s2,p1,op1) -> ConvT(64,32,3,s2,p1,op1) -> ConvT(32,1,3,s1,p1).
CONV_LAYERS = [  # kind, input shape, weight shape, stride, padding, output_padding
    ("conv", (BATCH, 1, 28, 28), (32, 1, 3, 3), (2, 2), (0, 0), None),
    ("conv", (BATCH, 32, 13, 13), (64, 32, 3, 3), (2, 2), (0, 0), None),
    ("convT", (BATCH, 32, 7, 7), (32, 64, 3, 3), (2, 2), (1, 1), (1, 1)),
    ("convT", (BATCH, 64, 14, 14), (64, 32, 3, 3), (2, 2), (1, 1), (1, 1)),
    ("convT", (BATCH, 32, 28, 28), (32, 1, 3, 3), (1, 1), (1, 1), (0, 0)),
]
DENSE_LAYERS = [(BATCH, 2304, 4), (BATCH, 2304, 40), (BATCH, 2, 1568), (BATCH, 20, 1568)]


@pytest.mark.parametrize("impl", ["numba", "cupy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", CONV_LAYERS, ids=lambda l: f"{l[0]}{l[1][1]}-{l[2]}")
def test_conv_kernels_match_reference_at_conv_vae_shapes(layer, dtype, impl):
    kind, xs, ws, stride, padding, output_padding = layer
    mod = kernels.module("gpu", impl)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype) / 10
    b = rng.standard_normal(ws[0] if kind == "conv" else ws[1]).astype(dtype)
    x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    xd, wd, bd = cp.asarray(x), cp.asarray(w), cp.asarray(b)
    if kind == "conv":
        y = ref.conv2d_forward(x64, w64, b64, stride, padding)
        _assert_close(mod.conv2d_forward(xd, wd, bd, stride, padding), y, dtype)
        gy = rng.standard_normal(y.shape).astype(dtype)
        gy64, gyd = gy.astype(np.float64), cp.asarray(gy)
        op = tuple((xs[2 + a] + 2 * padding[a] - ws[2 + a]) % stride[a] for a in (0, 1))  # conv2d's input grad
        _assert_close(mod.conv_transpose2d_forward(gyd, wd, None, stride, padding, op),
               ref.conv_transpose2d_forward(gy64, w64, None, stride, padding, op), dtype)
        _assert_close(mod.conv2d_backward_weight(gyd, xd, ws[2:], stride, padding),
               ref.conv2d_backward_weight(gy64, x64, ws[2:], stride, padding), dtype)
    else:
        y = ref.conv_transpose2d_forward(x64, w64, b64, stride, padding, output_padding)
        _assert_close(mod.conv_transpose2d_forward(xd, wd, bd, stride, padding, output_padding), y, dtype)
        gy = rng.standard_normal(y.shape).astype(dtype)
        gy64, gyd = gy.astype(np.float64), cp.asarray(gy)
        for got, want in zip(mod.conv_transpose2d_backward(gyd, xd, wd, stride, padding),
                             ref.conv_transpose2d_backward(gy64, x64, w64, stride, padding)):
            _assert_close(got, want, dtype)
    _assert_close(mod.conv2d_backward_bias(gyd), ref.conv2d_backward_bias(gy64), dtype)


@pytest.mark.parametrize("impl", ["numba", "cupy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", DENSE_LAYERS, ids=lambda s: f"{s[1]}->{s[2]}")
def test_dense_and_latent_kernels_match_reference_at_conv_vae_shapes(shape, dtype, impl):
    n, fin, fout = shape
    mod = kernels.module("gpu", impl)
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((n, fin), (fout, fin), (fout,)))
    gy = rng.standard_normal((n, fout)).astype(dtype)
    x64, w64, b64, gy64 = (a.astype(np.float64) for a in (x, w, b, gy))
    _assert_close(mod.dense_forward(cp.asarray(x), cp.asarray(w), cp.asarray(b)), ref.dense_forward(x64, w64, b64), dtype)
    for got, expected in zip(mod.dense_backward(cp.asarray(gy), cp.asarray(x), cp.asarray(w)),
                             ref.dense_backward(gy64, x64, w64)):
        _assert_close(got, expected, dtype)
    # the latent and the likelihood at this batch: reparameterize + KL on (N, fout), BCE on (N, fout)
    mu, lv, eps = (rng.standard_normal((n, fout)).astype(dtype) for _ in range(3))
    args64 = [a.astype(np.float64) for a in (mu, lv, eps)]
    for got, expected in zip(mod.reparameterize_kl_forward(*map(cp.asarray, (mu, lv, eps))),
                             ref.reparameterize_kl_forward(*args64)):
        _assert_close(got, expected, dtype)
    gkl = rng.standard_normal(n).astype(dtype)
    for got, expected in zip(mod.reparameterize_kl_backward(*map(cp.asarray, (gy, gkl, mu, lv, eps))),
                             ref.reparameterize_kl_backward(gy64, gkl.astype(np.float64), *args64)):
        _assert_close(got, expected, dtype)
    t = (rng.random((n, fout)) < 0.5).astype(dtype)
    _assert_close(mod.bce_with_logits_forward(cp.asarray(mu), cp.asarray(t)),
           ref.bce_with_logits_forward(args64[0], t.astype(np.float64)), dtype)
    _assert_close(mod.bce_with_logits_backward(cp.asarray(gy), cp.asarray(mu), cp.asarray(t)),
           ref.bce_with_logits_backward(gy64, args64[0], t.astype(np.float64)), dtype)


# --------------------------------------------------------------------------- gradcheck on the GPU

def _gpu_tensor(rng, shape, requires_grad=True):
    return mv.Tensor(cp.asarray(rng.standard_normal(shape)), requires_grad=requires_grad)


GRADCHECK_CASES = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [(2, 2, 5, 4), (3, 2, 3, 3), (3,)]),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                         [(2, 2, 3, 3), (2, 3, 3, 3), (3,)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [(4, 5), (3, 5), (3,)]),
    "reparameterize_kl": (lambda mu, lv, eps: F.reparameterize_kl(mu, lv, eps), [(3, 2), (3, 2), (3, 2)]),
    "bce_with_logits": (lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
                        [(2, 1, 3, 3), (2, 1, 3, 3)]),
}


@pytest.mark.parametrize("name", list(GRADCHECK_CASES))
def test_gradcheck_float64_on_gpu_with_numba_kernels(name):
    fn, shapes = GRADCHECK_CASES[name]
    rng = np.random.default_rng(2)
    inputs = [_gpu_tensor(rng, s) for s in shapes]
    if name == "bce_with_logits":
        inputs[1] = mv.Tensor(cp.asarray(rng.random(shapes[1])), requires_grad=True)
    with kernels.use("numba", device="gpu"):
        assert kernels.current("gpu") == "numba"
        out = fn(*inputs)
        out = out if isinstance(out, tuple) else (out,)
        assert all(isinstance(o.data, cp.ndarray) for o in out), "the op left the GPU"
        assert mv.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_mixing_cpu_and_gpu_tensors_raises_device_mismatch():
    rng = np.random.default_rng(3)
    x_cpu = mv.Tensor(rng.standard_normal((2, 1, 5, 5)).astype(np.float32))
    w_gpu = mv.Tensor(rng.standard_normal((3, 1, 3, 3)).astype(np.float32)).to("gpu")
    assert w_gpu.device == "gpu" and x_cpu.device == "cpu"
    with pytest.raises(DeviceMismatchError, match="cpu.*gpu|gpu.*cpu"):
        F.conv2d(x_cpu, w_gpu)
    with pytest.raises(DeviceMismatchError):
        F.linear(mv.Tensor(np.ones((2, 3), np.float32)), mv.Tensor(cp.ones((4, 3), cp.float32)))


# --------------------------------------------------------------------------- training on the GPU

def test_conv_vae_training_steps_on_gpu_match_cpu():
    from minivae.models import ConvVAE
    from minivae.optim import Adam
    from minivae.train import train_step

    data = (np.random.default_rng(4).random((3, 16, 1, 28, 28)) < 0.3).astype(np.float32)

    def run(device, impl):
        model = ConvVAE(latent_dim=2, rng=np.random.default_rng(0)).to(device)
        opt = Adam(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(1)
        with kernels.use(impl, device=device):
            return [train_step(model, opt, mv.backend.to_device(x, device), rng) for x in data]

    cpu = run("cpu", "reference")
    for impl in ("numba", "cupy"):
        gpu_hist = run("gpu", impl)
        for c, g in zip(cpu, gpu_hist):
            for key in ("loss", "recon", "kl"):
                assert np.isfinite(g[key])
                np.testing.assert_allclose(g[key], c[key], rtol=2e-4, atol=1e-3, err_msg=f"{impl} {key}")
    assert cpu[-1]["loss"] < cpu[0]["loss"]  # and the steps do train


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_on_gpu_matches_the_cpu_adam(dtype):
    from minivae.nn.parameter import Parameter
    from minivae.optim import Adam

    rng = np.random.default_rng(5)
    shapes = [(32, 1, 3, 3), (32,), (2304, 4), (1,)]
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    gpu_p = [Parameter(cp.asarray(a)) for a in init]
    cpu_p = [Parameter(a.copy()) for a in init]
    fused, plain = Adam(gpu_p, lr=1e-2, weight_decay=0.01), Adam(cpu_p, lr=1e-2, weight_decay=0.01)
    for step in range(4):
        for i, s in enumerate(shapes):
            g = rng.standard_normal(s).astype(dtype)
            skip = i == 1 and step == 0
            gpu_p[i].grad = None if skip else Parameter(cp.asarray(g))
            cpu_p[i].grad = None if skip else Parameter(g)
        fused.step()
        plain.step()
    assert fused._flat is not None  # the fused kernel was used
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(gpu_p, cpu_p):
        np.testing.assert_allclose(cp.asnumpy(a.data), b.data, rtol=tol, atol=tol)
