"""The ``out=`` argument of the kernels that return one array (shared by every kernel set).

A kernel given ``out=`` writes its result into that array and returns it, with the bits of the call without
``out=``: the compiled step's memory planner hands kernels buffers whose lifetimes do not overlap. ``out`` must be
an array of the inputs' array module (NumPy, or CuPy on a GPU), C-contiguous, writeable, of exactly the result's
shape and dtype; anything else raises ValueError naming the expected shape and dtype (nothing is converted: a
silent copy would defeat the buffer reuse). ``out`` must not overlap the kernel's inputs, except where a kernel
says so (``relu_forward(x, out=x)``, ``relu_backward(g, y, out=g)``: elementwise, in place).
"""
from __future__ import annotations

import numpy as np

from minivae.backend import get_array_module
from minivae.kernels import _pool


def check(out, shape, dtype, kernel: str, xp=np) -> None:
    """ValueError unless ``out`` is a C-contiguous writeable array of module ``xp``, shape ``shape``, ``dtype``."""
    shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
    flags = getattr(out, "flags", None)
    ok = (flags is not None and get_array_module(out) is xp and tuple(out.shape) == shape and out.dtype == dtype
          and flags.c_contiguous and getattr(flags, "writeable", True))
    if not ok:
        got = (f"{type(out).__name__} {getattr(out, 'dtype', '')} {tuple(getattr(out, 'shape', ()))}"
               + ("" if flags is None else f" (C-contiguous: {flags.c_contiguous}, "
                  f"writeable: {getattr(flags, 'writeable', True)})"))
        raise ValueError(f"{kernel}: out= must be a C-contiguous writeable {xp.__name__} array of shape {shape} and "
                         f"dtype {dtype.name}; got {got}")


def output(out, shape, dtype, kernel: str, xp=np):
    """``out`` checked by :func:`check`, or a new array when it is None: ``xp.empty(shape, dtype)``, or for NumPy
    :func:`minivae.kernels._pool.empty` (large blocks reused from a cache instead of page-faulted in again)."""
    if out is None:
        return _pool.empty(shape, dtype) if xp is np else xp.empty(shape, dtype=dtype)
    check(out, shape, dtype, kernel, xp)
    return out


def write(out, result, kernel: str):
    """``result`` when ``out`` is None; else ``result`` copied into ``out`` (checked against ``result``'s shape
    and dtype), and ``out``. For kernels whose result comes from a reduction or a library call: the bits are
    ``result``'s."""
    if out is None:
        return result
    check(out, result.shape, result.dtype, kernel, get_array_module(result))
    out[...] = result
    return out


def pair(out, kernel: str):
    """``out=`` of a kernel returning two arrays: None or a 2-tuple (either entry None) -> a 2-tuple."""
    if out is None:
        return None, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise ValueError(f"{kernel}: out= must be None or a pair (gx_out, gW_out), either of them None; "
                         f"got {type(out).__name__}")
    return tuple(out)
