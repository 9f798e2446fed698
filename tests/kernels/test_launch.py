"""The parallel launch of the Numba CPU kernels (minivae/kernels/_cpu_threads.py): one driver, ``_parallel``, runs
every kernel's chunks and calls the chunk through its address (the chunk compiled for the call's argument types),
so that the chunk's compiled code is not linked into, and optimised again in, a driver per kernel (the cold
compile, issue 22)."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from numba import njit

from minivae.kernels import _cpu_conv_jit, _cpu_elementwise, _cpu_threads, cpu

needs_two_chunks = pytest.mark.skipif(_cpu_threads.chunk_bounds(64).size <= 2,
                                      reason="one thread: every call runs as one chunk, no parallel launch")


@njit(cache=False, nogil=True)
def _twice_chunk(i, bounds, x, out):
    for k in range(bounds[i], bounds[i + 1]):
        out[k] = 2 * x[k]


@njit(cache=False, nogil=True)
def _checked_chunk(i, bounds, x):
    for k in range(bounds[i], bounds[i + 1]):
        if x[k] < 0:
            raise ValueError("negative")


@needs_two_chunks
def test_the_driver_takes_each_kernels_chunk_by_its_address():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    cpu.conv2d_forward(x, w, None, (1, 1), (1, 1))
    cpu.relu_forward(rng.standard_normal(1 << 16).astype(np.float32))
    launched = {chunk for chunk, _ in _cpu_threads._entry_points}
    assert {_cpu_conv_jit.conv_forward_chunk, _cpu_elementwise.relu_forward_chunk} <= launched
    firsts = [sig[0] for sig in _cpu_threads._parallel.signatures]
    assert firsts and all(t == numba.int64 for t in firsts), firsts  # an address, not a function: nothing linked
    assert not any(name.endswith("_par") for m in (_cpu_conv_jit, _cpu_elementwise) for name in dir(m))


@needs_two_chunks
def test_each_argument_type_gets_its_own_compiled_chunk_and_the_same_values():
    x = np.arange(64, dtype=np.float64)
    bounds = _cpu_threads.chunk_bounds(32)
    for arg in (x[:32], x[::2], x[:32].astype(np.float32)):  # contiguous, strided (layout A), another dtype
        out = np.zeros(32, dtype=arg.dtype)
        _cpu_threads.run(_twice_chunk, bounds, arg, out)
        np.testing.assert_array_equal(out, 2 * arg)
    assert len([k for k in _cpu_threads._entry_points if k[0] is _twice_chunk]) == 3
    assert {sig[2] for sig in _twice_chunk.signatures} == {numba.typeof(a) for a in (x[:32], x[::2], x[:32].astype(
        np.float32))}


@needs_two_chunks
def test_an_exception_in_a_chunk_reaches_the_caller():
    bounds = _cpu_threads.chunk_bounds(32)
    _cpu_threads.run(_checked_chunk, bounds, np.ones(32))
    with pytest.raises((ValueError, SystemError)) as raised:  # Numba's prange: a SystemError caused by it
        _cpu_threads.run(_checked_chunk, bounds, -np.ones(32))
    error = raised.value if isinstance(raised.value, ValueError) else raised.value.__cause__
    assert isinstance(error, ValueError) and str(error) == "negative"


def test_a_read_only_input_runs_and_gives_the_same_bits():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    frozen = x.copy()
    frozen.flags.writeable = False  # typed readonly by Numba: a chunk compiled apart
    want = cpu.conv2d_forward(x, w, None, (1, 1), (1, 1))
    assert np.array_equal(cpu.conv2d_forward(frozen, w, None, (1, 1), (1, 1)), want)
    big = rng.standard_normal(1 << 16).astype(np.float32)
    ro = big.copy()
    ro.flags.writeable = False
    assert np.array_equal(cpu.relu_forward(ro), cpu.relu_forward(big))


@njit(cache=False, nogil=True)
def _returning_chunk(i, bounds, x):
    return x[bounds[i]]


@needs_two_chunks
def test_a_chunk_that_returns_a_value_is_refused_before_it_runs():
    with pytest.raises(TypeError, match="returns nothing"):
        _cpu_threads.run(_returning_chunk, _cpu_threads.chunk_bounds(32), np.ones(32))


def test_the_type_key_tells_apart_what_numba_types_apart():
    a = np.zeros(4, np.float32)
    frozen = a.copy()
    frozen.flags.writeable = False
    keys = [_cpu_threads._type_key(v) for v in ((a,), (frozen,), (a[::2],), (a.astype(np.float64),), (a, 1), (a, 1.0),
                                                (a, True), (a, "text"))]
    assert len(set(keys)) == len(keys)  # "text": no fingerprint in C, Numba's typeof instead
    assert _cpu_threads._type_key((a,)) == _cpu_threads._type_key((np.ones(9, np.float32),))  # values do not count
