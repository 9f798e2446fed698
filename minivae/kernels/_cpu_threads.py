"""What the Numba CPU kernel modules (:mod:`minivae.kernels._cpu_conv`, :mod:`minivae.kernels._cpu_elementwise`)
share: the dtype check at their entry, the batch chunks and :func:`run`, which runs a kernel's chunks in parallel.

A kernel splits its batch (or, for the elementwise kernels, its elements) into a few fixed chunks per thread
(:func:`chunk_bounds`) and hands one jitted function, ``chunk(i, bounds, *args)`` (the work of chunk ``i``), to
:func:`run`. :func:`run` calls the one parallel driver, :func:`_parallel`: a ``prange`` over the chunks on Numba's
thread pool, no Python between chunks. Chunks that call a GEMM are marked :func:`calls_blas`; :func:`run` holds
the BLAS at one thread while they run (:func:`minivae.kernels._blas.one_thread`, threadpoolctl), so exactly
``num_threads()`` threads are busy.

The driver calls the chunk through its address (:func:`_call`), the address of the chunk compiled for the call's
argument types (:func:`_entry_point`), rather than by name. Called by name, Numba would link the chunk's compiled
code into the driver and LLVM would optimise it all over again there (in the ``prange`` body and in the driver), once
per kernel; through its address, each chunk is compiled once and each driver is a few lines (the cold compile of the
kernels about halves: ``benchmarks/compile_time.py``), for one dictionary lookup per parallel call.

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
from numba import _dispatcher, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from minivae.kernels import _blas

#: chunks per thread in a call: more than one, so that the per-chunk work stays small enough for the
#: im2col buffers to sit in cache and the chunks of the two threads even out
CHUNKS_PER_THREAD = 2

_launch_lock = threading.Lock()  # one parallel launch at a time (see the module docstring)
_launched_pid = None             # the process whose thread pool has run a parallel region
_BLAS_CHUNKS = set()             # the chunk functions marked calls_blas
_entry_points = {}               # (chunk, fingerprint of its arguments' types) -> its compiled address


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


def calls_blas(chunk):
    """Mark a chunk function that calls :func:`minivae.kernels._blas.gemm` (returns it unchanged)."""
    _BLAS_CHUNKS.add(chunk)
    return chunk


def run(chunk, bounds: np.ndarray, *args) -> None:
    """Run ``chunk(i, bounds, *args)`` for every chunk ``i`` of ``bounds``: all at once (:func:`_parallel`, given the
    address of ``chunk`` compiled for these arguments' types), or one after the other on this thread where there is
    a single chunk or this is a forked child of a process that ran a parallel region. The BLAS on one thread during
    the call where ``chunk`` is marked :func:`calls_blas`."""
    global _launched_pid
    in_parallel = bounds.size > 2 and _launched_pid in (None, os.getpid())
    with _launch_lock, _blas.one_thread() if chunk in _BLAS_CHUNKS else nullcontext():
        if not in_parallel:
            for i in range(bounds.size - 1):
                chunk(np.int64(i), bounds, *args)
            return
        _launched_pid = os.getpid()
        key = (chunk, _type_key((bounds, args)))
        address = _entry_points.get(key)
        if address is None:
            address = _entry_points[key] = _entry_point(chunk, (np.int64(0), bounds, *args))
        _parallel(address, bounds, args)


def _type_key(values):
    """A hashable key of the Numba types of ``values``: the fingerprint Numba's dispatchers find their compiled
    versions by (``numba._dispatcher``, private, in C: under a microsecond), else ``numba.typeof`` (slower)."""
    try:
        return _dispatcher.compute_fingerprint(values)
    except (AttributeError, NotImplementedError):  # another Numba; or values without a fingerprint
        return numba.typeof(values)


def _entry_point(chunk, args) -> int:
    """The address of ``chunk`` compiled for the Numba types of ``args`` (from the disk cache where it is there).
    Raises TypeError for a chunk that returns a value (:func:`_call` calls it as returning nothing)."""
    sig = tuple(numba.typeof(a) for a in args)
    chunk.compile(sig)
    compiled = chunk.overloads[sig]
    if compiled.signature.return_type != types.none:
        raise TypeError(f"chunk {chunk.__name__} returns {compiled.signature.return_type}; a chunk writes its "
                        f"results into its arguments and returns nothing")
    return compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)


@njit(cache=True, nogil=True, parallel=True)
def _parallel(address, bounds, args):
    """``chunk(i, bounds, *args)`` for every chunk ``i``, ``chunk`` the compiled function at ``address``
    (:func:`_call`), a ``prange``: the chunks run on Numba's threads."""
    for i in prange(bounds.size - 1):
        _call(address, np.int64(i), bounds, args)


@intrinsic
def _call(typingctx, address, i, bounds, args):
    """``chunk(i, bounds, *args)`` where ``address`` is the entry point of ``chunk`` compiled for exactly these
    argument types (:func:`_entry_point`; :func:`run` looks it up by their types): the call Numba itself emits
    for a first-class function (``__call_first_class_function_pointer`` in ``numba/core/lowering.py``), an
    exception in the chunk included."""
    sig = types.void(i, bounds, *args)

    def codegen(context, builder, signature, llargs):
        conv = context.call_conv
        fn = builder.inttoptr(llargs[0], conv.get_function_type(sig.return_type, sig.args).as_pointer())
        values = [llargs[1], llargs[2], *cgutils.unpack_tuple(builder, llargs[3])]
        status, _ = conv.call_function(builder, fn, sig.return_type, sig.args, values)
        with cgutils.if_unlikely(builder, status.is_error):
            conv.return_status_propagate(builder, status)
        return context.get_dummy_value()

    return types.void(address, i, bounds, args), codegen
