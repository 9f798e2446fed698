"""The GEMM the Numba CPU kernels call from jitted code (minivae.kernels._blas): NumPy's OpenBLAS through its
CBLAS symbols, and the built-in fallback used where NumPy's BLAS is not such an OpenBLAS."""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from minivae.kernels import _blas, cpu, reference


@njit
def _call(gemm, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c):
    gemm(np.int32(_blas.ROW_MAJOR), np.int32(ta), np.int32(tb), m, n, k, alpha, a.ctypes.data, lda, b.ctypes.data,
         ldb, beta, c.ctypes.data, c.shape[1])


FALLBACK_GEMM, FALLBACK_SET_LOCAL = _blas._fallback()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("which", ["numpy", "fallback"])
def test_gemm_matches_numpy_for_every_transpose(dtype, which):
    gemm = (_blas.GEMM if which == "numpy" else FALLBACK_GEMM)[np.dtype(dtype)]
    rng = np.random.default_rng(0)
    m, n, k = 5, 7, 3
    for ta in (_blas.NO_TRANS, _blas.TRANS):
        for tb in (_blas.NO_TRANS, _blas.TRANS):
            a = rng.standard_normal((m, k) if ta == _blas.NO_TRANS else (k, m)).astype(dtype)
            b = rng.standard_normal((k, n) if tb == _blas.NO_TRANS else (n, k)).astype(dtype)
            c = rng.standard_normal((m, n)).astype(dtype)
            want = 2 * ((a if ta == _blas.NO_TRANS else a.T) @ (b if tb == _blas.NO_TRANS else b.T)) + 0.5 * c
            _call(gemm, ta, tb, m, n, k, dtype(2), a, a.shape[1], b, b.shape[1], dtype(0.5), c)
            np.testing.assert_allclose(c, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    c = np.full((m, n), np.nan, dtype=dtype)  # beta = 0 ignores what C held, as BLAS does
    _call(gemm, _blas.NO_TRANS, _blas.NO_TRANS, m, n, k, dtype(1), np.ones((m, k), dtype), k, np.ones((k, n), dtype), n,
          dtype(0), c)
    np.testing.assert_array_equal(c, np.full((m, n), k, dtype=dtype))


def test_numpy_openblas_is_found_on_this_machine():
    """NumPy's PyPI wheels carry scipy-openblas: the fast path must be in use where they are installed."""
    if "openblas" not in str(np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})).lower():
        pytest.skip("NumPy is not built on OpenBLAS here")
    assert _blas.SOURCE.startswith("OpenBLAS") and _blas.set_local_threads is not None


def test_conv_kernels_run_on_the_fallback_gemm(monkeypatch):
    monkeypatch.setattr(_blas, "GEMM", FALLBACK_GEMM)
    monkeypatch.setattr(_blas, "SET_LOCAL_THREADS", FALLBACK_SET_LOCAL)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3, 9, 9))
    w = rng.standard_normal((4, 3, 3, 3))
    gy = rng.standard_normal((6, 4, 5, 5))
    np.testing.assert_allclose(cpu.conv2d_forward(x, w, None, (2, 2), (1, 1)),
                               reference.conv2d_forward(x, w, None, (2, 2), (1, 1)), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(cpu.conv_transpose2d_forward(gy, w, None, (2, 2), (1, 1), (0, 0)),
                               reference.conv_transpose2d_forward(gy, w, None, (2, 2), (1, 1), (0, 0)),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(cpu.conv2d_backward_weight(gy, x, (3, 3), (2, 2), (1, 1)),
                               reference.conv2d_backward_weight(gy, x, (3, 3), (2, 2), (1, 1)), rtol=1e-10, atol=1e-10)


def test_gemm_share_benchmark_runs_and_restores_the_gemm():
    """benchmarks/gemm_share.py in a tiny configuration: both step times positive, the real GEMM back after."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import gemm_share

    before = dict(_blas.GEMM)
    times = gemm_share.measure(batch=2, rounds=1, steps=1)
    assert set(times) == {"gemm", "zero"}  # (what the times are is the benchmark's business, not a test's)
    assert _blas.GEMM == before


def test_step_profile_benchmark_runs_and_restores_run():
    """benchmarks/step_profile.py in a tiny configuration: every kernel family of the step appears, the
    kernels' run() is restored after (no timing is asserted)."""
    import sys
    from pathlib import Path

    from minivae.kernels import _cpu_conv, _cpu_elementwise, _cpu_threads

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import step_profile

    res = step_profile.profile(batch=2, steps=2)
    names = {name for name, _, _ in res["rows"]}
    assert {"conv_forward_chunk", "gemm_col2im_chunk", "forward_and_weight_grad_chunk", "weight_grad_chunk",
            "channel_sum_chunk", "relu_forward_chunk", "relu_backward_chunk"} <= names
    assert _cpu_conv.run is _cpu_elementwise.run is _cpu_threads.run
