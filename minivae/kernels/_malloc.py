"""Keep freed memory for reuse instead of handing it back to the OS after every training step (glibc only).

Why: a training step allocates and frees the same large arrays every step (at batch 128 the conv VAE's
activations and gradients are 3-13 MB each, about 40 MB in all). glibc's ``malloc`` serves a block above its
mmap threshold with a fresh ``mmap`` and returns it with ``munmap``, and gives the top of the heap back with
``brk`` once more than the trim threshold is free there. Both thresholds start at 128 KiB and only grow as
blocks are freed, so where they end up depends on the process's allocation history, not on the step: after
loading binarised Fashion-MNIST they happened to be large enough and a step at batch 128 took 44 ms; on random
Bernoulli(0.5) images of the same shape (a smaller allocation history) every step page-faulted about 5,000
pages (20 MB) back in and took 70 ms (measured on the 2-core development machine; the same slowdown was first
seen as "Bernoulli images are 25% slower", issue 14). Arithmetic was never data-dependent.

:func:`keep_freed_memory` fixes both thresholds with ``mallopt`` (which also stops glibc from moving them):
blocks up to 32 MiB (glibc's largest mmap threshold) come from the heap, and up to 256 MiB of free heap is
kept before it is trimmed. It changes the whole process, so importing minivae never calls it: the ``minivae
train`` command does, for its own run, and so may a user's training script. It does nothing when the
C library has no ``mallopt`` (not glibc), or when the user tunes ``malloc`` already (``GLIBC_TUNABLES`` naming
``glibc.malloc``, or ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` set), or when
``MINIVAE_KEEP_FREED_MEMORY=0``.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: mallopt refuses more
TRIM_THRESHOLD = 256 << 20

_applied: bool | None = None


def _user_tunes_malloc(environ) -> bool:
    return ("glibc.malloc" in environ.get("GLIBC_TUNABLES", "") or "MALLOC_MMAP_THRESHOLD_" in environ
            or "MALLOC_TRIM_THRESHOLD_" in environ or environ.get("MINIVAE_KEEP_FREED_MEMORY") == "0")


def keep_freed_memory(environ=os.environ) -> bool:
    """Set glibc's mmap and trim thresholds once per process (see the module docstring). Returns whether
    they are set by minivae in this process."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if _user_tunes_malloc(environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
