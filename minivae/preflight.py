"""Checks made before the first epoch, so a run fails in seconds rather than after an epoch of work.

* :func:`check_device`: the device exists (``gpu``: CuPy and a CUDA device are present).
* :func:`check_writable`: a file can be created in the output folder.
* :func:`check_space`: the output folder's file system has room for two checkpoints (the one being
  written and the last good one, which stays until the new one is complete), estimated from the number
  of parameters: each parameter and Adam's two moment arrays of the same size.

Each raises :class:`PreflightError` with one line naming the problem and the fix. The data set is checked
by loading it (``DatasetNotFoundError`` says where it looked).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from minivae import backend


class PreflightError(ValueError):
    """A run cannot start: the device, the output folder or its free space (the message says which)."""


#: bytes a checkpoint holds besides the arrays (zip directory, names, the JSON metadata)
CHECKPOINT_OVERHEAD = 1 << 20


def checkpoint_bytes(num_params: int, itemsize: int = 4, arrays_per_param: int = 3) -> int:
    """Estimated size in bytes of a checkpoint of ``num_params`` parameters (``itemsize`` bytes each):
    the parameters and ``arrays_per_param - 1`` optimizer arrays per parameter (Adam: m and v), plus
    :data:`CHECKPOINT_OVERHEAD`."""
    return int(num_params) * int(itemsize) * int(arrays_per_param) + CHECKPOINT_OVERHEAD


def check_device(device: str) -> None:
    """Raise :class:`PreflightError` when ``device`` is unknown or is ``gpu`` without a usable GPU."""
    try:
        backend.check_device_name(device)
    except ValueError as err:
        raise PreflightError(f"--device: {err}") from None
    if device == backend.GPU:
        ok, why = backend.gpu_status()
        if not ok:
            raise PreflightError(f"--device gpu: no usable GPU ({why}); use --device cpu")


def _probe(out) -> None:
    """Create and close a temporary file in ``out`` (unnamed where the OS supports it)."""
    with tempfile.TemporaryFile(prefix=".preflight.", suffix=".tmp", dir=out):
        pass


def check_writable(out) -> None:
    """Create a file in ``out`` (an unnamed one where the OS allows: a kill at this moment leaves nothing
    behind) and close it; raise :class:`PreflightError` when that fails."""
    try:
        _probe(out)
    except OSError as err:
        raise PreflightError(f"--out {out} is not writable: {err.strerror or err}; choose another --out "
                             f"folder") from None


def check_space(out, num_params: int, itemsize: int = 4) -> int:
    """Raise :class:`PreflightError` unless ``out`` has room for two checkpoints; returns the estimate of
    one checkpoint in bytes."""
    need = checkpoint_bytes(num_params, itemsize)
    free = shutil.disk_usage(Path(out)).free
    if free < 2 * need:
        raise PreflightError(f"--out {out} has {_mib(free)} free; a run of this model needs {_mib(2 * need)} "
                             f"(two checkpoints of about {_mib(need)}); free some space or choose another --out")
    return need


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2 ** 20:.1f} MiB"
