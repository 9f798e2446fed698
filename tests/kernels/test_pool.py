"""The cache of freed blocks behind the Numba CPU kernels' large results (minivae.kernels._pool): a block is reused
only once no array or view uses it, every kernel result is an ordinary writeable array, the cache stays bounded."""
from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from minivae.kernels import _pool

BIG = (256, 256)  # float32: 256 KiB, above MIN_BYTES


@pytest.fixture(autouse=True)
def _fresh_cache():
    """An empty cache, and no garbage collection during the test (a cycle of an earlier test freed mid-test would
    put its blocks in the cache and change the byte counts asserted here)."""
    gc.collect()
    gc.disable()
    _pool.empty_cache()
    try:
        yield
    finally:
        gc.enable()
        _pool.empty_cache()


def _addr(a):
    return a.__array_interface__["data"][0]


def test_large_array_is_an_ordinary_writeable_c_contiguous_array():
    a = _pool.empty(BIG, np.float32)
    assert a.shape == BIG and a.dtype == np.float32 and type(a) is np.ndarray
    assert a.flags.c_contiguous and a.flags.writeable and not a.flags.owndata
    a[...] = 3.0
    assert float(a.sum()) == 3.0 * a.size


def test_small_arrays_bypass_the_cache():
    a = _pool.empty((10, 10), np.float64)
    assert a.flags.owndata
    del a
    assert _pool.cached_bytes() == 0


def test_block_comes_back_when_the_array_dies_and_is_reused():
    a = _pool.empty(BIG, np.float32)
    where = _addr(a)
    del a
    assert _pool.cached_bytes() == 256 * 256 * 4
    b = _pool.empty(BIG, np.float32)
    assert _addr(b) == where
    assert _pool.cached_bytes() == 0


def test_a_live_view_keeps_the_block():
    a = _pool.empty(BIG, np.float32)
    a[...] = 1.0
    view = a[10:].T[::2]          # a view of a view
    flat = a.reshape(-1)          # another view
    del a
    assert _pool.cached_bytes() == 0
    b = _pool.empty(BIG, np.float32)
    assert not np.shares_memory(b, view) and not np.shares_memory(b, flat)
    b[...] = 7.0
    assert np.all(view == 1.0) and np.all(flat == 1.0)
    del view
    assert _pool.cached_bytes() == 0  # flat still holds it
    del flat
    assert _pool.cached_bytes() == 256 * 256 * 4


def test_same_bytes_other_shape_and_dtype_reuse_the_block():
    a = _pool.empty((256, 256), np.float32)
    where = _addr(a)
    del a
    b = _pool.empty((128, 128, 2), np.float64)
    assert _addr(b) == where and b.shape == (128, 128, 2) and b.dtype == np.float64


def test_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(_pool, "MAX_CACHED_BYTES", 3 * 256 * 256 * 4)
    arrays = [_pool.empty(BIG, np.float32) for _ in range(5)]
    del arrays
    assert _pool.cached_bytes() == 3 * 256 * 256 * 4


def test_block_freed_in_another_thread_comes_back():
    a = _pool.empty(BIG, np.float32)
    box = [a]
    del a
    t = threading.Thread(target=box.clear)
    t.start()
    t.join()
    assert _pool.cached_bytes() == 256 * 256 * 4


def test_block_in_a_reference_cycle_comes_back_after_collection():
    a = _pool.empty(BIG, np.float32)
    cycle = [a]
    cycle.append(cycle)
    del a, cycle
    gc.collect()
    assert _pool.cached_bytes() == 256 * 256 * 4


def test_kernel_results_come_from_the_cache_and_hold_their_values():
    from minivae.kernels import cpu, reference

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4, 32, 32)).astype(np.float32)
    w = rng.standard_normal((16, 4, 3, 3)).astype(np.float32)
    y1 = cpu.conv2d_forward(x, w, None, (1, 1), (1, 1))
    assert not y1.flags.owndata  # a pooled block (8*16*32*32*4 bytes = 512 KiB)
    keep = y1.copy()
    y2 = cpu.conv2d_forward(2 * x, w, None, (1, 1), (1, 1))  # must not land on y1's block
    assert not np.shares_memory(y1, y2)
    np.testing.assert_array_equal(y1, keep)
    np.testing.assert_allclose(y2, reference.conv2d_forward(2 * x, w, None, (1, 1), (1, 1)), rtol=1e-4, atol=1e-4)
