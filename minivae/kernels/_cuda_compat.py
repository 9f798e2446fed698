"""Process-wide set-up and version-specific shims between numba-cuda, CuPy and NumPy, for the launcher
:mod:`minivae.kernels.gpu`.

* :func:`simulated`: whether numba-cuda runs its CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``).
* :func:`configure_real_gpu`, run once before the first launch on a real GPU: sets numba-cuda's
  ``CUDA_ARRAY_INTERFACE_SYNC`` to false (by default numba synchronises the host with the stream a CuPy
  array exports on every launch; the kernels run on that same stream, so the wait is unnecessary and would
  serialise the host with the GPU), silences numba's low-occupancy warnings (small grids are expected at
  small batches), and restores ``np.row_stack`` (removed in NumPy 2.5) as an alias of ``np.vstack``,
  because numba-cuda 0.30 refers to it when it first compiles.
* :func:`stream`: the numba stream wrapping CuPy's current stream, so kernels are ordered with CuPy's own
  work without a host synchronisation.
* :func:`sm_count`: the number of streaming multiprocessors of the current device, read from the device.
* :func:`fast_launch`: a launch path around numba's per-call argument handling (numba-cuda internals;
  falls back to the dispatcher on other versions). ``MINIVAE_GPU_FAST_LAUNCH=0`` disables it.

Everything here changes process-wide state (numba's config, NumPy's namespace, caches keyed by stream and
device) and only on first use on a real GPU; importing the module needs neither a GPU nor CuPy.
"""
from __future__ import annotations

import ctypes
import os

import numba
import numpy as np
from numba import cuda

#: SM count reported where the device has none to read (the simulator runs one block at a time).
FALLBACK_SM_COUNT = 1


def simulated() -> bool:
    """True when numba-cuda runs its CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``): no real GPU."""
    return bool(getattr(numba.config, "ENABLE_CUDASIM", 0))


_configured = False


def configure_real_gpu() -> None:
    """Once per process, before the first launch on a real GPU: see the module docstring."""
    global _configured
    if not _configured:
        from numba.cuda.core import config as cuda_config

        cuda_config.CUDA_ARRAY_INTERFACE_SYNC = False
        cuda_config.CUDA_LOW_OCCUPANCY_WARNINGS = False
        if not hasattr(np, "row_stack"):
            # numba-cuda 0.30 registers an overload for np.row_stack when it first compiles; NumPy 2.5
            # removed that alias of np.vstack. Restore it so that compilation works with both.
            np.row_stack = np.vstack
        _configured = True


_streams: dict = {}


def stream(xp):
    """numba stream wrapping CuPy's current stream (None under the simulator or for NumPy arrays)."""
    if xp is np or simulated():
        return None
    configure_real_gpu()
    ptr = xp.cuda.get_current_stream().ptr
    s = _streams.get(ptr)
    if s is None:
        s = _streams[ptr] = cuda.external_stream(ptr) if ptr else cuda.default_stream()
    return s


_sm_counts: dict = {}


def sm_count(xp=np) -> int:
    """Streaming multiprocessors of the current device (``MULTIPROCESSOR_COUNT``), cached per device.

    ``xp`` is the arrays' module: with CuPy the count is that of CuPy's current device (numba-cuda attaches
    to the context CuPy made current). :data:`FALLBACK_SM_COUNT` where the device exposes no count (the
    CUDA simulator's stand-in device) or none can be read.
    """
    key = None if xp is np else xp.cuda.Device().id
    count = _sm_counts.get(key)
    if count is None:
        try:
            count = int(cuda.get_current_device().MULTIPROCESSOR_COUNT)
        except Exception:  # the simulator's device has no such attribute; no driver; another numba-cuda
            count = FALLBACK_SM_COUNT
        count = _sm_counts[key] = max(1, count)
    return count


# Fast launch path. numba's dispatcher spends ~0.2 ms per launch on CuPy arguments (typing each argument
# from its __cuda_array_interface__, building a StridedMemoryView per array). Every argument here is either
# a C-contiguous CuPy array of the kernel dtype or a Python int, so the numba types are known without
# looking: the kernel is compiled once per argument types through the dispatcher, and later launches pass
# numba's flattened array arguments (meminfo, parent, size, itemsize, data, shape..., strides...) straight
# to cuda.core's launch, as numba's own _Kernel.launch does. Set MINIVAE_GPU_FAST_LAUNCH=0 to disable.
FAST_LAUNCH = os.environ.get("MINIVAE_GPU_FAST_LAUNCH", "1") != "0"
_fast_cache: dict = {}
_type_cache: dict = {}
_config_cache: dict = {}


def _numba_type(a):
    if isinstance(a, (int, np.integer)):
        key = "int64"
    elif a.flags.c_contiguous:
        key = (a.dtype.char, a.ndim)
    else:
        return None
    t = _type_cache.get(key)
    if t is None:  # building numba types is slow (interning): once per dtype and rank
        from numba import types

        t = _type_cache[key] = types.int64 if key == "int64" else types.Array(
            numba.from_dtype(a.dtype), a.ndim, "C")
    return t


def fast_launch(kernel, grid, block, stream, args) -> bool:
    """Launch ``kernel`` without numba's per-call argument handling; False if that path is unavailable."""
    argtypes = tuple(_numba_type(a) for a in args)
    if None in argtypes:
        return False
    key = (kernel, argtypes)
    fn = _fast_cache.get(key)
    if fn is None:
        try:
            from cuda.core import LaunchConfig, launch
            from numba.cuda.cudadrv import driver

            core_stream = driver._to_core_stream(stream)
            compiled = kernel.overloads.get(argtypes) or kernel.compile(argtypes)
            cufunc = compiled._codelibrary.get_cufunc().kernel
        except Exception:  # another numba-cuda version: use its dispatcher
            _fast_cache[key] = False
            return False
        fn = _fast_cache[key] = (launch, LaunchConfig, cufunc, core_stream, stream)
    elif fn is False:
        return False
    launch, config_cls, cufunc, core_stream, numba_stream = fn
    if numba_stream is not stream:  # CuPy's current stream changed since this kernel was cached
        from numba.cuda.cudadrv import driver

        core_stream = driver._to_core_stream(stream)
    kargs = []
    for a in args:
        if isinstance(a, (int, np.integer)):
            kargs.append(ctypes.c_int64(int(a)))
        else:
            kargs += [0, 0, a.size, a.itemsize, a.data.ptr, *a.shape, *a.strides]
    grid3 = (grid, 1, 1) if isinstance(grid, int) else (grid[0], grid[1], 1)
    block3 = (block, 1, 1) if isinstance(block, int) else (block[0], block[1], 1)
    config = _config_cache.get((grid3, block3))
    if config is None:
        config = _config_cache[(grid3, block3)] = config_cls(grid=grid3, block=block3, shmem_size=0)
    launch(core_stream, config, cufunc, *kargs)
    return True
