"""GEMM callable from ``@njit`` code (SciPy's BLAS) and the BLAS thread limit around it (threadpoolctl).

Why: the Numba CPU kernels run a convolution as one parallel jitted function (``prange`` over batch chunks), and
a GEMM inside it must not go back to Python. SciPy exports its BLAS to compiled code as
``scipy.linalg.cython_blas``; :func:`numba.extending.get_cython_function_address` gives the address of its
``sgemm`` and ``dgemm``, :func:`llvmlite.binding.add_symbol` gives that address a name for Numba's linker, and
jitted code calls the name as a :class:`numba.types.ExternalFunction`. The compiled code holds the name, not the
address, so the kernels stay cacheable on disk (a ctypes function pointer would bake the address in and make them
uncacheable). ``add_symbol`` only adds a name to LLVM's symbol table in this process; nothing a user sees changes.

:func:`gemm` is the row-major GEMM the kernels call (jitted code only)::

    gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    # C (m x n) = alpha * op(A) (m x k) @ op(B) (k x n) + beta * C; a, b, c: addresses (arr.ctypes.data);
    # trans_*: NO_TRANS or TRANS; lda, ldb, ldc: row strides in elements; float32 or float64 (alpha's dtype)

Fortran BLAS is column-major and takes every argument by pointer: a row-major C = op(A) @ op(B) is the
column-major C^T = op(B)^T @ op(A)^T, so :func:`gemm` swaps A and B (and m and n) and passes its integers and
scalars through small arrays.

Threads: SciPy's OpenBLAS runs a large GEMM on its own threads. Inside a ``prange`` chunk that would put two
thread pools on the same cores and, with a BLAS thread count that another thread may change mid-call, make the
bits depend on timing; :func:`one_thread` holds every BLAS library of the process (as threadpoolctl finds them)
at one thread for the duration of a block and restores the counts after.
"""
from __future__ import annotations

import threading

import llvmlite.binding as llvm
import numpy as np
from numba import types
from numba.extending import get_cython_function_address, overload

NO_TRANS, TRANS = np.uint8(ord("N")), np.uint8(ord("T"))  # Fortran BLAS's TRANSA / TRANSB characters


def _fortran_gemm(letter: str) -> types.ExternalFunction:
    """SciPy's ``{letter}gemm`` as a function jitted code can call by name. Its 13 arguments are pointers, declared
    as integers (``arr.ctypes.data``): in every 64-bit C calling convention the two are passed alike."""
    name = f"minivae_scipy_{letter}gemm"
    llvm.add_symbol(name, get_cython_function_address("scipy.linalg.cython_blas", f"{letter}gemm"))
    return types.ExternalFunction(name, types.void(*(types.intp,) * 13))


_FORTRAN = {types.float32: (_fortran_gemm("s"), np.float32), types.float64: (_fortran_gemm("d"), np.float64)}

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
    itemsize = np.dtype(dtype).itemsize

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

_blas_pools = None  # threadpoolctl's controller of the BLAS libraries, made at the first kernel call
_held = threading.local()  # .depth: how many one_thread() blocks this thread is inside


class one_thread:
    """A context manager: every BLAS library threadpoolctl finds in the process at one thread inside the block,
    the previous counts restored after (``threadpoolctl.ThreadpoolController.limit``). Nested blocks in one thread
    set and restore nothing (so a compiled step holds the limit once around its whole replay instead of once per
    kernel call: about 20-40 us each on the development machine)."""

    __slots__ = ("_limiter",)

    def __enter__(self):
        global _blas_pools
        depth = getattr(_held, "depth", 0)
        self._limiter = None
        if depth == 0:
            if _blas_pools is None:
                from threadpoolctl import ThreadpoolController

                _blas_pools = ThreadpoolController().select(user_api="blas")
            self._limiter = _blas_pools.limit(limits=1)
        _held.depth = depth + 1
        return self

    def __exit__(self, *exc):
        _held.depth -= 1
        if self._limiter is not None:
            self._limiter.restore_original_limits()
        return False
