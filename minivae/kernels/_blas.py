"""GEMM callable from ``@njit`` code (OpenBLAS as ``scipy-openblas32`` ships it) and the BLAS thread limit around it
(threadpoolctl).

Why: the Numba CPU kernels run a convolution as one parallel jitted function (``prange`` over batch chunks), and
a GEMM inside it must not go back to Python. The GEMM is OpenBLAS's Fortran ``sgemm`` / ``dgemm`` from the
``scipy-openblas32`` package, the OpenBLAS build NumPy and SciPy ship in their wheels, published for compiled code
to link against: it loads its library on import (``scipy_openblas32.dll``) and exports ``scipy_sgemm_`` and
``scipy_dgemm_`` (32-bit integers). We take it rather than SciPy's copy (``scipy.linalg.cython_blas``, the fallback
where the package is missing) because SciPy 1.17 bundles OpenBLAS 0.3.30, whose GEMMs ran the conv VAE's kernels
10-20% slower than 0.3.31 and later (``benchmarks/results/2026-12-07-issue22-blas-and-pool.txt``).
:func:`llvmlite.binding.add_symbol` gives the function's address a name for Numba's linker, and jitted code calls
the name as a :class:`numba.types.ExternalFunction`. The compiled code holds the name, not the address, so the
kernels stay cacheable on disk (a ctypes function pointer would bake the address in and make them uncacheable).
``add_symbol`` only adds a name to LLVM's symbol table in this process. Nothing is loaded or named on import: the
first :class:`one_thread` block does it (:func:`load`), before any kernel that calls :func:`gemm` is compiled or
loaded from the cache.

:func:`gemm` is the row-major GEMM the kernels call (jitted code only)::

    gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    # C (m x n) = alpha * op(A) (m x k) @ op(B) (k x n) + beta * C; a, b, c: addresses (arr.ctypes.data);
    # trans_*: NO_TRANS or TRANS; lda, ldb, ldc: row strides in elements; float32 or float64 (alpha's dtype)

Fortran BLAS is column-major and takes every argument by pointer: a row-major C = op(A) @ op(B) is the
column-major C^T = op(B)^T @ op(A)^T, so :func:`gemm` swaps A and B (and m and n) and passes its integers and
scalars through small arrays.

Threads: OpenBLAS runs a large GEMM on its own threads. Inside a ``prange`` chunk that would put two thread pools
on the same cores and, with a BLAS thread count that another thread may change mid-call, make the bits depend on
timing; :class:`one_thread` holds the BLAS libraries the kernels call at one thread for the duration of a block and
restores the counts after: those threadpoolctl finds when the first block starts, after :func:`load`, so NumPy's
(``dense`` calls ``np.dot``) and the GEMM's among them. A BLAS library loaded later (SciPy's, PyTorch's) is not
called by the kernels and is left alone.
"""
from __future__ import annotations

import ctypes
import threading

import llvmlite.binding as llvm
import numpy as np
from numba import types
from numba.extending import overload

NO_TRANS, TRANS = np.uint8(ord("N")), np.uint8(ord("T"))  # Fortran BLAS's TRANSA / TRANSB characters


# The names jitted code calls, per dtype: 13 pointers each, declared as integers (arr.ctypes.data; in every 64-bit C
# calling convention the two are passed alike). load() points them at a library.
_GEMM = types.void(*(types.intp,) * 13)
_FORTRAN = {types.float32: (types.ExternalFunction("minivae_sgemm", _GEMM), np.dtype(np.float32)),
            types.float64: (types.ExternalFunction("minivae_dgemm", _GEMM), np.dtype(np.float64))}
_loaded = []  # the library the names point into, once load() ran


def load() -> str:
    """Name the GEMMs for Numba's linker (once per process; see the module docstring). Returns the library used."""
    if not _loaded:
        try:
            import scipy_openblas32

            for letter in "sd":
                fn = getattr(scipy_openblas32.dll, f"scipy_{letter}gemm_")
                llvm.add_symbol(f"minivae_{letter}gemm", ctypes.cast(fn, ctypes.c_void_p).value)
            _loaded.append(f"scipy-openblas32 {scipy_openblas32.__version__}")
        except ImportError:  # the package has no wheel for this platform: SciPy's own OpenBLAS
            from numba.extending import get_cython_function_address

            for letter in "sd":
                llvm.add_symbol(f"minivae_{letter}gemm",
                                get_cython_function_address("scipy.linalg.cython_blas", f"{letter}gemm"))
            _loaded.append("scipy.linalg.cython_blas")
    return _loaded[0]


#: dtypes :func:`gemm` takes
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Row-major ``C = alpha * op(A) @ op(B) + beta * C`` for jitted code (see the module docstring)."""
    raise TypeError("minivae.kernels._blas.gemm is called from jitted (@njit) code only")


@overload(gemm)
def _gemm_for(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    if alpha not in _FORTRAN:
        return None
    fortran, dtype = _FORTRAN[alpha]
    itemsize = dtype.itemsize

    def row_major_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        # column-major C^T (n x m) = op(B)^T (n x k) @ op(A)^T (k x m): B first, then A
        flags = np.empty(2, dtype=np.uint8)
        flags[0], flags[1] = trans_b, trans_a
        ints = np.empty(6, dtype=np.int32)
        ints[0], ints[1], ints[2], ints[3], ints[4], ints[5] = n, m, k, ldb, lda, ldc
        scalars = np.empty(2, dtype=dtype)
        scalars[0], scalars[1] = alpha, beta
        f, i, s = flags.ctypes.data, ints.ctypes.data, scalars.ctypes.data
        fortran(f, f + 1, i, i + 4, i + 8, s, b, i + 12, a, i + 16, s + itemsize, c, i + 20)

    return row_major_gemm


# --------------------------------------------------------------------------- BLAS threads

_pools = None             # threadpoolctl's controllers of the BLAS libraries, found at the first block
_held = threading.local()  # .depth: how many one_thread() blocks this thread is inside


class one_thread:
    """A context manager: the BLAS libraries the kernels call (:func:`libraries`) at one thread inside the block,
    the previous counts restored after (``LibController.set_num_threads``). Nested blocks in one thread set and
    restore nothing (so a compiled step holds the limit once around its whole replay instead of once per kernel
    call). The first block of the process also runs :func:`load`."""

    __slots__ = ("_saved",)

    def __enter__(self):
        global _pools
        depth = getattr(_held, "depth", 0)
        self._saved = ()
        if depth == 0:
            if _pools is None:
                load()  # first, so that threadpoolctl finds the library it loads
                from threadpoolctl import ThreadpoolController

                _pools = ThreadpoolController().select(user_api="blas").lib_controllers
            self._saved = tuple((lib, n) for lib in _pools if (n := lib.get_num_threads()) != 1)
            for lib, _ in self._saved:
                lib.set_num_threads(1)
        _held.depth = depth + 1
        return self

    def __exit__(self, *exc):
        _held.depth -= 1
        for lib, n in self._saved:
            lib.set_num_threads(n)
        return False


def libraries() -> list[str]:
    """Paths of the BLAS libraries :class:`one_thread` holds (those loaded when its first block started)."""
    with one_thread():
        return [lib.filepath for lib in _pools]
