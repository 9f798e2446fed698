"""The GEMM the Numba CPU kernels call from jitted code (minivae.kernels._blas): OpenBLAS from ``scipy-openblas32``
(or SciPy's ``cython_blas``) behind a row-major interface, loaded on first use, and the BLAS thread limit of
threadpoolctl."""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from minivae.kernels import _blas

_blas.load()  # what the first kernel call does: the jitted callers below need the GEMM's name


def test_gemm_comes_from_scipy_openblas32_where_it_is_installed():
    try:
        import scipy_openblas32
    except ImportError:
        assert _blas.load() == "scipy.linalg.cython_blas"
    else:
        assert _blas.load() == f"scipy-openblas32 {scipy_openblas32.__version__}"


@njit
def _call(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c):
    _blas.gemm(ta, tb, m, n, k, alpha, a.ctypes.data, lda, b.ctypes.data, ldb, beta, c.ctypes.data, c.shape[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_matches_numpy_for_every_transpose(dtype):
    rng = np.random.default_rng(0)
    m, n, k = 5, 7, 3
    for ta in (_blas.NO_TRANS, _blas.TRANS):
        for tb in (_blas.NO_TRANS, _blas.TRANS):
            a = rng.standard_normal((m, k) if ta == _blas.NO_TRANS else (k, m)).astype(dtype)
            b = rng.standard_normal((k, n) if tb == _blas.NO_TRANS else (n, k)).astype(dtype)
            c = rng.standard_normal((m, n)).astype(dtype)
            want = 2 * ((a if ta == _blas.NO_TRANS else a.T) @ (b if tb == _blas.NO_TRANS else b.T)) + 0.5 * c
            _call(ta, tb, m, n, k, dtype(2), a, a.shape[1], b, b.shape[1], dtype(0.5), c)
            np.testing.assert_allclose(c, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    c = np.full((m, n), np.nan, dtype=dtype)  # beta = 0 ignores what C held, as BLAS does
    _call(_blas.NO_TRANS, _blas.NO_TRANS, m, n, k, dtype(1), np.ones((m, k), dtype), k, np.ones((k, n), dtype), n,
          dtype(0), c)
    np.testing.assert_array_equal(c, np.full((m, n), k, dtype=dtype))


def test_gemm_reads_and_writes_strided_rows():
    """lda / ldb / ldc larger than a row: sub-blocks of larger arrays, as the kernels pass them."""
    rng = np.random.default_rng(1)
    big_a, big_b = rng.standard_normal((6, 9)), rng.standard_normal((4, 11))
    c = np.zeros((6, 8))
    _blas_call_strided(big_a, big_b, c)
    np.testing.assert_allclose(c[:, :5], big_a[:, :4] @ big_b[:, :5], rtol=1e-12)
    assert not c[:, 5:].any()  # nothing written past n columns


@njit
def _blas_call_strided(a, b, c):
    _blas.gemm(_blas.NO_TRANS, _blas.NO_TRANS, 6, 5, 4, 1.0, a.ctypes.data, 9, b.ctypes.data, 11, 0.0,
               c.ctypes.data, 8)


def test_gemm_from_python_says_where_it_runs():
    with pytest.raises(TypeError, match="jitted"):
        _blas.gemm(_blas.NO_TRANS, _blas.NO_TRANS, 1, 1, 1, 1.0, 0, 1, 0, 1, 0.0, 0, 1)


def test_one_thread_limits_the_kernels_blas_libraries_and_restores_them():
    import json
    import os
    import subprocess
    import sys

    from threadpoolctl import threadpool_info

    held = _blas.libraries()
    real = [os.path.realpath(p) for p in held]
    child = ("import json, os, numpy, threadpoolctl; print(json.dumps([os.path.realpath(p['filepath']) "
             "for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas']))")
    # NumPy's BLAS (np.dot), as a process that imports only NumPy sees it
    numpy_blas = json.loads(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                                           check=True).stdout)
    assert set(numpy_blas) <= set(real), (numpy_blas, real)
    try:
        import scipy_openblas32
    except ImportError:
        pass
    else:  # the GEMM's
        assert any(p.startswith(os.path.realpath(scipy_openblas32.get_lib_dir())) for p in real), held

    def counts():
        return {p["filepath"]: p["num_threads"] for p in threadpool_info() if p["filepath"] in held}

    before = counts()
    assert set(before) == set(held)
    with _blas.one_thread():
        assert counts() == dict.fromkeys(held, 1)
    assert counts() == before


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
