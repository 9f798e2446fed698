"""The dtypes the Numba CPU kernels are compiled for, checked at their entry points.

Numba compiles each jitted function per argument type; float16 has no compiled version (and LLVM has no
fast float16 arithmetic on these CPUs), so a float16 array would fail deep inside Numba's type inference
with a page of text. :func:`check_dtypes` wraps the public kernels so they raise one TypeError instead.
"""
from __future__ import annotations

import functools

import numpy as np

#: dtypes the jitted CPU kernels take
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _checked(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for a in (*args, *kwargs.values()):
            if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.dtype not in DTYPES:
                raise TypeError(f"numba CPU kernel {fn.__name__}: dtype {a.dtype} is not supported; these "
                                f"kernels take float32 and float64. Convert with .astype(np.float32), or run "
                                f'kernels.use("reference"), whose NumPy kernels handle {a.dtype}')
        return fn(*args, **kwargs)
    return wrapper


def check_dtypes(namespace: dict, names) -> None:
    """Replace each function ``namespace[name]`` by one that raises TypeError (naming the function, the
    dtype, the accepted dtypes and ``kernels.use("reference")``) for a floating array argument whose
    dtype is not in :data:`DTYPES`."""
    for name in names:
        namespace[name] = _checked(namespace[name])
