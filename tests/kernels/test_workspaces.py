"""The Numba CPU convolutions take their chunks' column buffers from a per-thread scratch array that later calls
reuse (minivae.kernels._cpu_conv._workspace) instead of allocating them per call: what a previous call left there
must never show in a result, and the scratch of one thread is not another's."""
from __future__ import annotations

import threading

import numpy as np

from minivae.kernels import _cpu_conv, cpu, reference


def _calls(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 8, 14, 14)).astype(dtype)   # 14x14 -> 7x7: the folded small-image path
    x1 = rng.standard_normal((12, 1, 28, 28)).astype(dtype)  # 1 channel: the per-example weight gradient
    w = rng.standard_normal((16, 8, 3, 3)).astype(dtype)
    w1 = rng.standard_normal((32, 1, 4, 4)).astype(dtype)
    gy = rng.standard_normal((12, 16, 7, 7)).astype(dtype)
    g1 = rng.standard_normal((12, 32, 14, 14)).astype(dtype)
    return [("conv2d_forward", (x, w, None, (2, 2), (1, 1))),
            ("conv2d_forward", (x1, w1, None, (2, 2), (1, 1))),
            ("conv2d_backward_weight", (gy, x, (3, 3), (2, 2), (1, 1))),
            ("conv2d_backward_weight", (g1, x1, (4, 4), (2, 2), (1, 1))),
            ("conv_transpose2d_forward", (gy, w, None, (2, 2), (1, 1), (1, 1))),
            ("conv_transpose2d_backward", (x, gy, w, (2, 2), (1, 1)))]


def _flat(result):
    return np.concatenate([a.ravel() for a in result]) if isinstance(result, tuple) else result.ravel()


def test_results_do_not_depend_on_what_the_scratch_held():
    for dtype in (np.float32, np.float64):
        calls = _calls(dtype)
        first = [_flat(getattr(cpu, name)(*args)) for name, args in calls]
        for (name, args), want in zip(calls, first):
            for flat in _cpu_conv._scratch.arrays.values():
                flat.fill(np.nan)  # garbage from "a previous call"
            assert np.array_equal(_flat(getattr(cpu, name)(*args)), want), name
            np.testing.assert_allclose(want, _flat(getattr(reference, name)(*args)), rtol=1e-4, atol=1e-4)


def test_the_scratch_is_reused_and_kept_per_thread():
    calls = _calls(np.float32)
    for name, args in calls:
        getattr(cpu, name)(*args)
    mine = _cpu_conv._scratch.arrays[np.dtype(np.float32)]
    for name, args in calls:  # the same shapes again: no new scratch array
        getattr(cpu, name)(*args)
    assert _cpu_conv._scratch.arrays[np.dtype(np.float32)] is mine
    theirs = []
    t = threading.Thread(target=lambda: (getattr(cpu, calls[0][0])(*calls[0][1]),
                                         theirs.append(_cpu_conv._scratch.arrays[np.dtype(np.float32)])))
    t.start()
    t.join()
    assert theirs and theirs[0] is not mine
