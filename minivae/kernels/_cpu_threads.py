"""What the Numba CPU kernel modules (:mod:`minivae.kernels._cpu_conv`, :mod:`minivae.kernels._cpu_elementwise`)
share: the dtype check at their entry, the batch chunks and :func:`run`, which launches a kernel's parallel driver.

A kernel call splits its batch (or, for the elementwise kernels, its elements) into a few fixed chunks per
thread (:func:`chunk_bounds`) and runs them with :func:`run`: one parallel jitted function (a ``prange`` over the
chunks, on Numba's thread pool) whose chunks call NumPy's BLAS from jitted code with the BLAS limited to one
thread for the thread running the chunk (``openblas_set_num_threads_local``, :mod:`minivae.kernels._blas`), so
exactly ``num_threads()`` threads are busy and the process-wide BLAS setting is untouched.

CPU time: GNU OpenMP's threads spin for a while after each parallel region before they sleep, which is what
makes back-to-back kernel calls cheap; it shows as process CPU time. ``OMP_WAIT_POLICY=passive`` makes them
sleep at once (slower steps; see benchmarks/results/cpu_kernels_history.md).

Deterministic: the chunk bounds depend only on the size, ``min_chunk`` and ``num_threads()``; each chunk
writes its own outputs (partial sums are added in chunk order by the caller), never depending on which thread
ran it or when. The calling thread's BLAS setting is lowered to one thread before any chunk starts and restored
after every chunk has finished: in some OpenBLAS builds ``openblas_set_num_threads_local`` changes the
process-wide count (measured with NumPy 2's OpenBLAS 0.3.x: a worker's restore reached the caller's GEMMs
mid-call, so some examples came out of a 2-thread GEMM with another summation order, 1 call in 200).

Forked children: GNU OpenMP (Numba's ``omp`` threading layer) cannot start a parallel region in a child forked
after the parent used one (Numba terminates the child); there the chunks run one after the other on the
calling thread, with the same bounds, so the same bits.
"""
from __future__ import annotations

import functools
import os
import threading
from contextlib import contextmanager

import numba
import numpy as np

from minivae.kernels import _blas

#: chunks per thread in a call: more than one, so that the per-chunk work stays small enough for the
#: im2col buffers to sit in cache and the chunks of the two threads even out
CHUNKS_PER_THREAD = 2

_launch_lock = threading.Lock()  # one parallel launch at a time (the workqueue layer allows no other)
_launched_pid = None             # the process whose thread pool has run a parallel region


#: dtypes the jitted CPU kernels are compiled for
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_dtype(kernel: str, *arrays) -> None:
    """TypeError (naming the kernel, the dtype, the accepted dtypes and ``kernels.use("reference")``) for a
    floating array whose dtype the jitted functions have no compiled version for (float16 would otherwise fail
    deep inside Numba's type inference). None and non-floating arguments pass."""
    for a in arrays:
        dt = getattr(a, "dtype", None)
        if dt is not None and dt.kind == "f" and dt not in DTYPES:
            raise TypeError(f"numba CPU kernel {kernel}: dtype {dt} is not supported; these kernels take float32 "
                            f'and float64. Convert with .astype(np.float32), or run kernels.use("reference"), '
                            f"whose NumPy kernels handle {dt}")


def num_threads() -> int:
    """Threads a kernel call uses: Numba's (``NUMBA_NUM_THREADS``, or ``numba.set_num_threads``)."""
    return numba.get_num_threads()


def chunk_bounds(n: int, min_chunk: int = 1) -> np.ndarray:
    """int64 ``(k + 1,)`` chunk bounds over ``range(n)``: :data:`CHUNKS_PER_THREAD` chunks per thread, fewer
    where a chunk would have less than ``min_chunk`` items (one chunk for small sizes). Read-only (cached)."""
    return _bounds(int(n), int(min_chunk), num_threads(), CHUNKS_PER_THREAD)


@functools.lru_cache(maxsize=1024)
def _bounds(n, min_chunk, threads, per_thread):
    most = max(1, n // max(1, min_chunk))
    threads = max(1, min(threads, most))
    k = 1 if threads == 1 else min(threads * per_thread, most)
    bounds = np.array([n * i // k for i in range(k + 1)], dtype=np.int64)
    bounds.flags.writeable = False
    return bounds


@contextmanager
def one_blas_thread():
    """NumPy's BLAS on one thread for the calling thread inside the block (restored after), where OpenBLAS
    allows it per thread; a no-op elsewhere."""
    set_local = _blas.set_local_threads
    previous = set_local(1) if set_local is not None else None
    try:
        yield
    finally:
        if previous is not None:
            set_local(previous)


def _parallel_ok() -> bool:
    return _launched_pid is None or _launched_pid == os.getpid()


def run(parallel, chunk, bounds: np.ndarray, *args) -> None:
    """Run ``chunk(i, bounds, *args)`` for every chunk ``i`` of ``bounds``: all at once by
    ``parallel(bounds, *args)`` (the chunks of a ``prange``), or one after the other on this thread where there
    is a single chunk or this is a forked child of a process that ran a parallel region. BLAS on one thread
    for this thread during the call (see the module docstring)."""
    global _launched_pid
    set_local = _blas.set_local_threads  # (one_blas_thread inlined: this runs ~35 times a training step)
    previous = set_local(1) if set_local is not None else None
    try:
        if bounds.size > 2 and _parallel_ok():
            with _launch_lock:
                _launched_pid = os.getpid()
                parallel(bounds, *args)
        else:
            for i in range(bounds.size - 1):
                chunk(np.int64(i), bounds, *args)
    finally:
        if previous is not None:
            set_local(previous)
