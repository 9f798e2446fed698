"""Where arrays live: NumPy on the CPU ("cpu"), CuPy on a CUDA GPU ("gpu").

This is the bottom layer: it imports nothing else from minivae. Every other layer asks it which array
module an array belongs to (:func:`get_array_module`, as in Chainer and CuPy), and it is the one place
that raises when arrays from two devices meet.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

import numpy as np

CPU = "cpu"
GPU = "gpu"
DEVICES = (CPU, GPU)


class DeviceMismatchError(RuntimeError):
    """Raised when one operation receives arrays that live on different devices."""


class GPUUnavailableError(RuntimeError):
    """Raised when "gpu" is asked for but CuPy or a CUDA device is missing (the message says which)."""


_GPU_EXTRA_HINT = (
    "install the GPU extra: `pip install minivae[gpu]` (CUDA 13 drivers) or `pip install minivae[gpu-cu12]` "
    "(CUDA 12 drivers)"
)


def _cupy() -> ModuleType | None:
    """CuPy if it is installed, else None (importing cupy works without a GPU)."""
    try:
        return importlib.import_module("cupy")
    except ImportError:
        return None


def gpu_status() -> tuple[bool, str]:
    """Whether a real CUDA GPU can be used through CuPy, and if not, why (a sentence for the user)."""
    cp = _cupy()
    if cp is None:
        return False, f"CuPy is not installed; {_GPU_EXTRA_HINT}"
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False, "NUMBA_ENABLE_CUDASIM=1 is set: the CUDA simulator is not a real GPU"
    try:
        if not cp.cuda.is_available():
            return False, "CuPy is installed but no CUDA device or driver was found"
    except Exception as err:  # pragma: no cover - depends on the driver
        return False, f"CuPy could not query the CUDA driver: {err}"
    return True, "CUDA device available"


def gpu_available() -> bool:
    """True when CuPy is installed and a CUDA device answers."""
    return gpu_status()[0]


def require_gpu() -> ModuleType:
    """Return the cupy module, or raise :class:`GPUUnavailableError` saying what is missing."""
    ok, why = gpu_status()
    if not ok:
        raise GPUUnavailableError(f"device 'gpu' requested but unavailable: {why}")
    return _cupy()


def check_device_name(device: str) -> str:
    """``device`` itself if it is ``"cpu"`` or ``"gpu"``; raises ValueError naming the known devices otherwise."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    return device


def is_gpu_array(array) -> bool:
    """True for a CuPy array."""
    cp = _cupy() if type(array).__module__.startswith("cupy") else None
    return cp is not None and isinstance(array, cp.ndarray)


def device_of(array) -> str:
    """"gpu" for a CuPy array, "cpu" for anything else (NumPy arrays and Python scalars)."""
    return GPU if is_gpu_array(array) else CPU


def get_array_module(*arrays) -> ModuleType:
    """``cupy`` if any argument is a CuPy array, else ``numpy`` (like ``cupy.get_array_module``)."""
    for a in arrays:
        if is_gpu_array(a):
            return _cupy()
    return np


def check_same_device(*arrays, op: str = "operation") -> str:
    """Return the common device of ``arrays`` (None entries are ignored).

    Raises:
        DeviceMismatchError: naming both devices and the operation, when CPU and GPU arrays meet.
    """
    device = None
    for a in arrays:
        if a is None:
            continue
        d = device_of(a)
        if device is None:
            device = d
        elif d != device:
            raise DeviceMismatchError(
                f"{op}: expected all arrays on one device, got 'cpu' and 'gpu' arrays together; "
                "move them with .to('cpu') or .to('gpu') first"
            )
    return device or CPU


def to_device(array, device: str):
    """Copy ``array`` to ``device`` ("cpu" -> NumPy, "gpu" -> CuPy); returns it unchanged if already there."""
    check_device_name(device)
    if device_of(array) == device:
        return array
    if device == CPU:
        return array.get()
    return require_gpu().asarray(array)
