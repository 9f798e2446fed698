"""A cache of freed blocks for the Numba CPU kernels' large results (a caching allocator, like PyTorch's for CUDA).

Why: a training step makes and drops the same large arrays every step (at batch 128 the conv VAE's activations
and gradients are 3-13 MB each). NumPy takes them from glibc's ``malloc``, which serves such a block with a fresh
``mmap`` or gives it back to the system when the heap's free top grows past a threshold; the next step then
page-faults the same memory in again: about 2,900 faults (11 MiB) a step at batch 128 on random images, which made
the eager step 20-30% slower (``benchmarks/results/2026-12-07-issue22-blas-and-pool.txt``). The fix is ours to
make, not the process's: nothing here changes ``malloc``'s settings; only arrays the kernels return come from the
cache, and memory returns to it only when no array uses it any more.

How: :func:`empty` gives a block of at least :data:`MIN_BYTES` a small owner object (``_Lease``) and returns
``np.asarray(lease)``, an array on the block through the owner's ``__array_interface__``. NumPy keeps the owner as
the array's base, and every view of the array, or view of a view, keeps it alive (NumPy stops collapsing a view's
base chain at an object that is not an ndarray). When the last of them is gone, CPython deletes the owner and
``_Lease.__del__`` puts the block back on the free list of its size in bytes, for the next :func:`empty` of the
same size. At most :data:`MAX_CACHED_BYTES` of free blocks are kept; past that a freed block is released.

Contents of a block from :func:`empty` are undefined (as ``np.empty``). Its arrays are ordinary C-contiguous
writeable ndarrays, except that ``flags.owndata`` is False (they are views of the block) and ``ndarray.resize``
refuses them. :func:`empty_cache` releases every free block (``torch.cuda.empty_cache``); :func:`cached_bytes`
says how much is kept.
"""
from __future__ import annotations

import math
import threading

import numpy as np

#: arrays smaller than this (bytes) are plain ``np.empty``: glibc's heap serves them without faults
MIN_BYTES = 1 << 17
#: the most bytes of free blocks kept for reuse; a block freed past this is released to ``malloc``
MAX_CACHED_BYTES = 256 << 20

# The free lists are shared by all threads (a block may come back in any of them). Reentrant: a garbage collection
# while this thread holds the lock can delete a lease, whose __del__ takes it again.
_lock = threading.RLock()
_free: dict[int, list] = {}    # block size in bytes -> free blocks of that size: (1-D uint8 array, its address)
_cached = [0]                  # bytes in _free


class _Lease:
    """The owner of one block while arrays use it: the base of the array :func:`empty` returns."""

    __slots__ = ("block", "__array_interface__")

    def __init__(self, block: tuple, shape: tuple, dtype: np.dtype):
        self.block = block
        self.__array_interface__ = {"data": (block[1], False), "shape": shape, "typestr": dtype.str, "version": 3}

    def __del__(self):
        _return(self.block)


def _return(block: tuple) -> None:
    """Put a block no array uses any more on its free list (or drop it past :data:`MAX_CACHED_BYTES`)."""
    nbytes = block[0].nbytes
    with _lock:
        if _cached[0] + nbytes <= MAX_CACHED_BYTES:
            _free.setdefault(nbytes, []).append(block)
            _cached[0] += nbytes


def empty(shape, dtype) -> np.ndarray:
    """A new C-contiguous array of ``shape`` and ``dtype`` (contents undefined, as ``np.empty``); from a cached
    block when it has at least :data:`MIN_BYTES` (see the module docstring)."""
    dtype = np.dtype(dtype)
    shape = tuple(map(int, shape))
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    block = None
    with _lock:
        blocks = _free.get(nbytes)
        if blocks:
            block = blocks.pop()
            _cached[0] -= nbytes
    if block is None:
        array = np.empty(nbytes, dtype=np.uint8)
        block = (array, array.ctypes.data)
    return np.asarray(_Lease(block, shape, dtype))


def cached_bytes() -> int:
    """Bytes of free blocks kept for reuse."""
    return _cached[0]


def empty_cache() -> None:
    """Release every free block to ``malloc`` (arrays in use keep theirs, which come back to the cache when they
    are dropped)."""
    with _lock:
        _free.clear()
        _cached[0] = 0
