"""BLAS GEMM callable from ``@njit`` code: NumPy's own OpenBLAS, reached through its C symbols.

Why: the Numba CPU kernels run each convolution as one parallel jitted function (``prange`` over batch
chunks), and a GEMM inside it must not go back to Python. Numba's ``np.dot`` in nopython mode needs SciPy
(not a dependency); NumPy's wheels ship OpenBLAS (``libscipy_openblas64_``) with the CBLAS interface exported
(``scipy_cblas_sgemm64_``: 64-bit integers), so this module finds that library in the process's memory map
(the one NumPy loaded: one BLAS in the process, one set of threads) and hands its address to jitted code as
a first-class function (Numba's wrapper address protocol): the address is an argument, not a constant baked
into the machine code, so the kernels stay cacheable on disk.

:data:`GEMM` maps a dtype to a callable with the CBLAS signature (row-major only)::

    gemm(order, trans_a, trans_b, m, n, k, alpha, a_ptr, lda, b_ptr, ldb, beta, c_ptr, ldc)
    # C (m x n) = alpha * op(A) (m x k) @ op(B) (k x n) + beta * C; pointers as integers (arr.ctypes.data)

and :data:`SET_LOCAL_THREADS` is ``openblas_set_num_threads_local`` (OpenBLAS >= 0.3.27: the BLAS thread
count of the calling thread only). Where NumPy's BLAS is not such an OpenBLAS (a conda MKL or Accelerate
build), both fall back to jitted C-callable functions: a plain triple-loop GEMM (correct, several times
slower) and a no-op; :data:`SOURCE` says which is in use.
"""
from __future__ import annotations

import ctypes

import numba.experimental.function_type  # noqa: F401  (Numba's typing of first-class functions, refined below)
import numpy as np
from numba import cfunc, types
from numba.extending import intrinsic, typeof_impl

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS enums

_i32, _i64, _ptr = types.int32, types.int64, types.uintp


def _gemm_signature(scalar):
    return types.void(_i32, _i32, _i32, _i64, _i64, _i64, scalar, _ptr, _i64, _ptr, _i64, scalar, _ptr, _i64)


SIGNATURES = {np.dtype(np.float32): _gemm_signature(types.float32),
              np.dtype(np.float64): _gemm_signature(types.float64)}
SET_LOCAL_SIGNATURE = types.int32(_i32)


class _Address(types.WrapperAddressProtocol):
    """A C function at a fixed address, callable from jitted code with ``signature``."""

    def __init__(self, address: int, signature, name: str):
        self._address, self._signature, self.name = address, signature, name
        self.numba_type = types.FunctionType(signature)

    def __wrapper_address__(self):
        return self._address

    def signature(self):
        return self._signature

    def __repr__(self):
        return f"<C function {self.name} at {self._address:#x}>"


@typeof_impl.register(_Address)
def _typeof_address(val, c):
    # Numba's own typeof builds a new FunctionType from the signature at every call of a jitted function
    # (measured ~20 us per argument, 0.6 ms of a 10 ms training step at batch 32); the type never changes
    return val.numba_type


# --------------------------------------------------------------------------- fallbacks (no OpenBLAS)


def _pointer_intrinsic(scalar):
    @intrinsic
    def as_pointer(typingctx, address):
        sig = types.CPointer(scalar)(address)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(types.CPointer(scalar)))

        return sig, codegen

    return as_pointer


def _fallback_gemm(scalar):
    as_pointer = _pointer_intrinsic(scalar)

    def gemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        pa, pb, pc = as_pointer(a), as_pointer(b), as_pointer(c)
        for i in range(m):
            for j in range(n):
                pc[i * ldc + j] = beta * pc[i * ldc + j] if beta != 0 else 0
        for i in range(m):
            for p in range(k):
                aip = alpha * (pa[p * lda + i] if trans_a == TRANS else pa[i * lda + p])
                if trans_b == TRANS:
                    for j in range(n):
                        pc[i * ldc + j] += aip * pb[j * ldb + p]
                else:
                    for j in range(n):
                        pc[i * ldc + j] += aip * pb[p * ldb + j]

    return gemm


def _no_threads(n):
    return 1


def _fallback():
    gemm = {}
    for dtype, sig in SIGNATURES.items():
        scalar = sig.args[6]
        compiled = cfunc(sig)(_fallback_gemm(scalar))  # compiled only where there is no OpenBLAS
        gemm[dtype] = _Address(compiled.address, sig, f"minivae fallback gemm ({dtype})")
    no_op = cfunc(SET_LOCAL_SIGNATURE)(_no_threads)
    return gemm, _Address(no_op.address, SET_LOCAL_SIGNATURE, "no-op set_num_threads_local")


# --------------------------------------------------------------------------- NumPy's OpenBLAS


def _openblas_paths():
    import numpy  # noqa: F401  (NumPy's BLAS is loaded by now)

    try:
        with open("/proc/self/maps") as maps:
            return sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return []


def _find():
    """(gemm per dtype, set_local for jitted code, set_local for Python or None, description)."""
    for path in _openblas_paths():
        try:
            lib = ctypes.CDLL(path)
            set_local = lib.openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        gemm = {}
        for dtype, letter in ((np.dtype(np.float32), "s"), (np.dtype(np.float64), "d")):
            for name in (f"scipy_cblas_{letter}gemm64_", f"cblas_{letter}gemm64_"):  # 64-bit integer CBLAS
                fn = getattr(lib, name, None)
                if fn is not None:
                    gemm[dtype] = _Address(ctypes.cast(fn, ctypes.c_void_p).value, SIGNATURES[dtype], name)
                    break
        if len(gemm) < 2:
            continue
        set_local.argtypes, set_local.restype = [ctypes.c_int], ctypes.c_int
        jit_set_local = _Address(ctypes.cast(set_local, ctypes.c_void_p).value, SET_LOCAL_SIGNATURE,
                                 "openblas_set_num_threads_local")
        return gemm, jit_set_local, set_local, f"OpenBLAS {path.rsplit('/', 1)[-1]} ({gemm[np.dtype(np.float32)].name})"
    gemm, jit_set_local = _fallback()
    return gemm, jit_set_local, None, ("built-in triple-loop GEMM: NumPy's BLAS is not an OpenBLAS with a 64-bit "
                                       "CBLAS and openblas_set_num_threads_local")


#: GEMM per dtype and the per-thread BLAS thread setter for jitted code; ``set_local_threads``: that setter
#: for Python callers, or None (then the GEMM is the single-threaded fallback); SOURCE: which BLAS, in words
GEMM, SET_LOCAL_THREADS, set_local_threads, SOURCE = _find()
