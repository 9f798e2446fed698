"""The fused Adam (one numba-cuda kernel per step over flat buffers) against the per-parameter CPU Adam.

Runs under the CUDA simulator (the conftest switches it on), where ``Adam(fused=True)`` accepts NumPy
parameters; on a machine with a GPU the same kernel is used automatically for CuPy parameters.
"""
from __future__ import annotations

import numpy as np
import pytest

from minivae.kernels import gpu
from minivae.nn.parameter import Parameter
from minivae.optim import Adam

pytestmark = pytest.mark.skipif(not gpu.simulated(), reason="fused Adam on NumPy arrays needs the CUDA simulator")

SHAPES = [(3, 2, 2, 2), (5,), (4, 3), (1,)]


def _params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]


def _grads(dtype, step):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _set_grads(params, grads, skip=()):
    for i, (p, g) in enumerate(zip(params, grads)):
        p.grad = None if i in skip else Parameter(g.copy())


def _assert_same(fused_opt, plain_opt, dtype):
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    atol = 1e-6 if dtype == np.float32 else 1e-14
    for a, b in zip(fused_opt.params, plain_opt.params):
        assert a.data.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a.data, b.data, rtol=rtol, atol=atol)
    for sa, sb in zip(fused_opt.state, plain_opt.state):
        assert sa.keys() == sb.keys()
        if sa:
            assert sa["step"] == sb["step"]
            np.testing.assert_allclose(sa["m"], sb["m"], rtol=rtol, atol=atol)
            np.testing.assert_allclose(sa["v"], sb["v"], rtol=rtol, atol=atol)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_matches_the_per_parameter_adam(dtype, weight_decay, monkeypatch):
    launches = []
    real = gpu.fused_adam_step
    monkeypatch.setattr(gpu, "fused_adam_step", lambda *a: launches.append(1) or real(*a))
    fused_p, plain_p = _params(dtype), _params(dtype)
    kw = dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=weight_decay)
    fused, plain = Adam(fused_p, fused=True, **kw), Adam(plain_p, fused=False, **kw)
    for step in range(5):
        # parameter 1 has no gradient in the first two steps (its own step count starts late, as PyTorch),
        # parameter 3 none in step 3
        skip = {1} if step < 2 else ({3} if step == 3 else set())
        for params in (fused_p, plain_p):
            _set_grads(params, _grads(dtype, step), skip)
        fused.step()
        plain.step()
        _assert_same(fused, plain, dtype)
    assert len(launches) == 5  # one kernel launch per step
    assert fused.state[1]["step"] == 3 and fused.state[3]["step"] == 4
    # parameters and moments are views into the flat buffers, and still move away from their start
    assert all(np.shares_memory(p.data, fused._flat.param) for p in fused_p)
    assert not np.allclose(fused_p[0].data, _params(dtype)[0].data)


def test_fused_adam_rebuilds_its_buffers_when_data_or_state_is_replaced():
    dtype = np.float64
    fused_p, plain_p = _params(dtype), _params(dtype)
    fused, plain = Adam(fused_p, lr=0.1, fused=True), Adam(plain_p, lr=0.1, fused=False)
    for step in range(4):
        if step == 2:  # a checkpoint round trip and a parameter reassigned (as Module.to / load_state_dict do)
            fused.load_state_dict(fused.state_dict())
            fused_p[2].data = fused_p[2].data.copy()
        for params in (fused_p, plain_p):
            _set_grads(params, _grads(dtype, step))
        fused.step()
        plain.step()
        _assert_same(fused, plain, dtype)
    assert np.shares_memory(fused_p[2].data, fused._flat.param)


def test_fused_adam_state_dict_loads_into_the_per_parameter_adam():
    dtype = np.float64
    fused_p, plain_p = _params(dtype), _params(dtype)
    fused = Adam(fused_p, lr=0.1, fused=True)
    for step in range(2):
        _set_grads(fused_p, _grads(dtype, step))
        fused.step()
    plain = Adam(plain_p, lr=0.1, fused=False)
    plain.load_state_dict(fused.state_dict())
    for p, q in zip(plain_p, fused_p):
        p.data[...] = q.data
    _set_grads(fused_p, _grads(dtype, 2))
    _set_grads(plain_p, _grads(dtype, 2))
    fused.step()
    plain.step()
    _assert_same(fused, plain, dtype)


def test_fused_adam_refuses_cpu_parameters_without_the_simulator(monkeypatch):
    from minivae.kernels import _cuda_compat

    monkeypatch.setattr(_cuda_compat, "simulated", lambda: False)
    opt = Adam(_params(np.float32), fused=True)
    with pytest.raises(ValueError, match=r"fused=True\) needs every parameter on the GPU"):
        opt.step()
    with pytest.raises(ValueError, match="fused must be None, True or False"):
        Adam(_params(np.float32), fused="yes")


def test_adam_default_stays_per_parameter_on_the_cpu():
    params = _params(np.float32)
    data = [p.data for p in params]
    opt = Adam(params)
    _set_grads(params, _grads(np.float32, 0))
    opt.step()
    assert opt._flat is None and all(p.data is d for p, d in zip(params, data))
