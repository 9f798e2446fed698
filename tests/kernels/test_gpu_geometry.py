"""The GPU launcher's geometry and the shared block reduction, under the CUDA simulator.

* ``block_sum`` (the one shared-memory tree sum of :mod:`minivae.kernels._cuda_sources`) at block sizes with
  0 to 3 tree levels, through the three kernels that use it, against NumPy sums;
* the SM count read from the device (the simulator's stand-in device has none: the fallback), and the
  batch splits of the reductions following it.

The kernel-set parity with reference.py is in test_gpu_kernels.py.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from minivae.kernels import _cuda_compat, _cuda_sources, gpu
from minivae.kernels import reference as ref

pytestmark = pytest.mark.skipif(not gpu.simulated(), reason="launches kernels with NumPy arrays: simulator only")


def _assert_close(got, expected, dtype):
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * max(1.0, float(np.abs(expected).max())))


@pytest.mark.parametrize("rblock", [1, 2, 4, 8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_sum_reductions_match_numpy_at_every_block_size(rblock, dtype):
    ks = _cuda_sources.kernels(np.dtype(dtype).name, 8, rblock)
    rng = np.random.default_rng(rblock)
    gy = rng.standard_normal((3, 2, 3, 4)).astype(dtype)
    x = rng.standard_normal((3, 2, 4, 5)).astype(dtype)

    splits = 2  # batch elements 0, 2 in split 0 and 1 in split 1
    part = np.full((splits, 2), np.nan, dtype=dtype)
    ks["channel_sum"][(2, splits), rblock](gy, part)
    _assert_close(part.sum(0), gy.sum(axis=(0, 2, 3)), dtype)
    _assert_close(part[1], gy[1].sum(axis=(1, 2)), dtype)

    expected = ref.conv2d_backward_weight(gy, x, (2, 2), (1, 1), (0, 0))
    part = np.full((splits,) + expected.shape, np.nan, dtype=dtype)
    ks["conv_weight_grad_taps"][(4, splits), rblock](gy, x, 1, 1, 0, 0, part)  # 4 taps per block, in turn
    _assert_close(part.sum(0), expected, dtype)

    gw = np.full(expected.shape, np.nan, dtype=dtype)
    ks["conv_weight_grad"][gw.size, rblock](gy, x, 1, 1, 0, 0, gw)
    _assert_close(gw, expected, dtype)


def test_sm_count_falls_back_where_the_device_has_none():
    # the simulator's FakeCUDADevice exposes no MULTIPROCESSOR_COUNT
    assert _cuda_compat.sm_count(np) == _cuda_compat.FALLBACK_SM_COUNT


def test_sm_count_is_read_from_the_device_once(monkeypatch):
    reads = []

    def device():
        reads.append(1)
        return SimpleNamespace(MULTIPROCESSOR_COUNT=78)

    monkeypatch.setattr(_cuda_compat, "cuda", SimpleNamespace(get_current_device=device))
    monkeypatch.setattr(_cuda_compat, "_sm_counts", {})
    assert _cuda_compat.sm_count(np) == 78
    assert _cuda_compat.sm_count(np) == 78
    assert len(reads) == 1


@pytest.mark.parametrize("sms, blocks, n, expected", [
    (132, 32, 128, 17),   # 4 * 132 = 528 blocks wanted: ceil(528 / 32)
    (8, 32, 128, 1),      # a small device is already full
    (78, 1, 64, 64),      # never more slices than examples
    (132, 0, 5, 5),
])
def test_reduction_batch_splits_follow_the_device_sm_count(monkeypatch, sms, blocks, n, expected):
    monkeypatch.setattr(gpu, "simulated", lambda: False)
    monkeypatch.setattr(_cuda_compat, "sm_count", lambda xp=np: sms)
    assert gpu._batch_splits(np, n, blocks) == expected
