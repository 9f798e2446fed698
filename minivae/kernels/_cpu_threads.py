"""Batch-chunked threading for the Numba CPU kernels (:mod:`minivae.kernels.cpu`).

Why not ``@njit(parallel=True)``: the convolutions spend most of their time in a BLAS GEMM, which Numba
can call from jitted code only through SciPy (not a dependency). With the GEMM on NumPy's threaded
OpenBLAS and the im2col/col2im passes on Numba's OpenMP pool, the two pools' idle threads spin against
each other; on a 2-core machine that made a Conv2d(1, 32, 3, s2) forward at batch 128 8 ms instead of
0.8 ms (see benchmarks/kernels.py). So each kernel instead splits the batch into a few chunks per thread,
which the threads take one at a time as they finish one (so that a thread the OS deschedules on a shared
machine does not hold up the call: 4% less step time at batch 128 on the loaded 2-core machine), and runs,
per chunk, the ``nogil`` jitted passes and a GEMM on a BLAS limited to one thread *for that
thread only* (``openblas_set_num_threads_local``, OpenBLAS >= 0.3.27), so exactly ``num_threads()``
threads are busy and the process-wide BLAS setting is untouched.

The number of threads is Numba's (``NUMBA_NUM_THREADS``, default: the number of cores). Where NumPy's
BLAS is not an OpenBLAS with that function, chunks run one after the other on the calling thread.
"""
from __future__ import annotations

import ctypes
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numba

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = None  # a pool inherited through fork() has no threads: make a new one in the child
_set_local = None
_searched = False


def _find_set_local():
    """``openblas_set_num_threads_local`` of the OpenBLAS NumPy has loaded, or None."""
    import numpy  # noqa: F401  (makes sure NumPy's BLAS is loaded)

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            fn = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        return fn
    return None


def _blas_local():
    global _set_local, _searched
    if not _searched:
        _set_local, _searched = _find_set_local(), True
    return _set_local


def num_threads() -> int:
    """Threads a kernel call uses: ``NUMBA_NUM_THREADS``, or 1 where the BLAS cannot be limited per thread."""
    return numba.config.NUMBA_NUM_THREADS if _blas_local() is not None else 1


def _worker(take, fn, bounds, results):
    """A pool thread (minivae's own): with its BLAS on one thread (not restored: the pool threads only ever
    run chunks), run chunks until none is left."""
    _blas_local()(1)
    _take_chunks(take, fn, bounds, results)


def _take_chunks(take, fn, bounds, results):
    for i in take:  # a shared iterator: each chunk index is handed out once, to whichever thread asks first
        if i >= len(bounds):
            return
        results[i] = fn(*bounds[i])


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool._max_workers < workers or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="minivae-cpu")
            _pool_pid = os.getpid()
        return _pool


#: chunks per thread in a call: more than one, so that a thread the OS deschedules (the machine is shared)
#: leaves its remaining chunks to the others instead of holding up the whole call
CHUNKS_PER_THREAD = 2


def map_chunks(fn, n: int, min_chunk: int = 1) -> list:
    """Call ``fn(lo, hi)`` on contiguous chunks ``[lo, hi)`` covering ``range(n)`` and return the results in
    chunk order. There are :data:`CHUNKS_PER_THREAD` chunks per thread (fewer where a chunk would have less
    than ``min_chunk`` items; small batches run in one call, on the calling thread); the calling thread and
    the pool threads take the next chunk as each finishes one (dynamic scheduling). Every chunk runs with its
    thread's BLAS limited to one thread.

    Deterministic: the chunk bounds depend only on ``n``, ``min_chunk`` and ``num_threads()``, and each
    chunk's result on its own inputs, never on which thread ran it or when. The calling thread's BLAS
    setting is lowered to one thread *before* any chunk starts and restored only after every chunk has
    finished: in some OpenBLAS builds ``openblas_set_num_threads_local`` changes the process-wide count
    (measured with NumPy 2's OpenBLAS 0.3.x: a worker's restore reached the caller's GEMMs mid-call, so
    4 to 15 of 32 examples came out of a 2-thread GEMM with another summation order, 1 call in 200).
    """
    most = max(1, n // max(1, min_chunk))
    threads = max(1, min(num_threads(), most))
    k = 1 if threads == 1 else min(threads * CHUNKS_PER_THREAD, most)
    set_local = _blas_local()
    if set_local is None:
        return [fn(0, n)]  # num_threads() is 1 here
    # even for one chunk: the kernels' GEMMs are per example and small, and a threaded OpenBLAS spends more
    # on waking and joining its threads than it saves (measured 8x slower training at NUMBA_NUM_THREADS=1
    # on a busy 2-core machine)
    previous = set_local(1)
    futures = []
    try:
        if k == 1:
            return [fn(0, n)]
        bounds = [(n * i // k, n * (i + 1) // k) for i in range(k)]
        results = [None] * k
        take = itertools.count()  # next() on it is atomic under the GIL
        pool = _get_pool(threads - 1)
        futures = [pool.submit(_worker, take, fn, bounds, results) for _ in range(threads - 1)]
        _take_chunks(take, fn, bounds, results)
        for f in futures:
            f.result()  # a chunk's exception, raised here
        return results
    finally:
        wait(futures)  # no chunk may still run (and touch the BLAS setting) once this returns
        set_local(previous)
