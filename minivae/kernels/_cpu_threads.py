"""What the Numba CPU kernel modules (:mod:`minivae.kernels._cpu_conv`, :mod:`minivae.kernels._cpu_elementwise`)
share: the dtype check at their entry, the batch chunks and :func:`run`, which launches a kernel's parallel driver.

A kernel call splits its batch (or, for the elementwise kernels, its elements) into a few fixed chunks per
thread (:func:`chunk_bounds`) and runs them with :func:`run`: one parallel jitted function (a ``prange`` over the
chunks, on Numba's thread pool). Drivers whose chunks call a GEMM are marked :func:`calls_blas`; :func:`run` holds
the BLAS at one thread while they run (:func:`minivae.kernels._blas.one_thread`, threadpoolctl), so exactly
``num_threads()`` threads are busy.

Deterministic: the chunk bounds depend only on the size, ``min_chunk`` and ``num_threads()``; each chunk
writes its own outputs (partial sums are added in chunk order by the caller), never depending on which thread
ran it or when; every chunk's GEMMs run on one BLAS thread.

What Numba does not do for us, and so stays here (two lines in :func:`run`):

* one call at a time (``_launch_lock``): Numba's ``workqueue`` threading layer (the one it falls back to where
  neither TBB nor OpenMP is installed) aborts the process when two Python threads launch parallel functions at
  once; the lock also keeps two calls from interleaving their BLAS thread limits (the OpenBLAS count is
  process-wide: one call's restore must not reach another call's chunks);
* forked children (``_launched_pid``): GNU OpenMP (Numba's ``omp`` layer on Linux) cannot start a parallel region
  in a child forked after the parent ran one (Numba terminates the child); there the chunks run one after the
  other on the calling thread, with the same bounds, so the same bits.
"""
from __future__ import annotations

import functools
import os
import threading
from contextlib import nullcontext

import numba
import numpy as np

from minivae.kernels import _blas

#: chunks per thread in a call: more than one, so that the per-chunk work stays small enough for the
#: im2col buffers to sit in cache and the chunks of the two threads even out
CHUNKS_PER_THREAD = 2

_launch_lock = threading.Lock()  # one parallel launch at a time (see the module docstring)
_launched_pid = None             # the process whose thread pool has run a parallel region
_BLAS_DRIVERS = set()            # the parallel drivers marked calls_blas


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


def one_blas_thread():
    """A context manager: the BLAS libraries the kernels call (NumPy's and the GEMM's) at one thread inside the
    block, restored after (threadpoolctl)."""
    return _blas.one_thread()


def calls_blas(driver):
    """Mark a parallel driver whose chunks call :func:`minivae.kernels._blas.gemm` (returns it unchanged)."""
    _BLAS_DRIVERS.add(driver)
    return driver


def run(parallel, chunk, bounds: np.ndarray, *args) -> None:
    """Run ``chunk(i, bounds, *args)`` for every chunk ``i`` of ``bounds``: all at once by
    ``parallel(bounds, *args)`` (the chunks of a ``prange``), or one after the other on this thread where there
    is a single chunk or this is a forked child of a process that ran a parallel region. The BLAS on one thread
    during the call where ``parallel`` is marked :func:`calls_blas`."""
    global _launched_pid
    in_parallel = bounds.size > 2 and _launched_pid in (None, os.getpid())
    with _launch_lock, _blas.one_thread() if parallel in _BLAS_DRIVERS else nullcontext():
        if in_parallel:
            _launched_pid = os.getpid()
            parallel(bounds, *args)
        else:
            for i in range(bounds.size - 1):
                chunk(np.int64(i), bounds, *args)
