"""Kernels: pure array functions (no autodiff) with one name each, and a registry that picks an
implementation per device.

Implementations (each a module defining every name in :data:`KERNELS`):

========== ======= =================================================================
name       device  module
========== ======= =================================================================
reference  cpu     :mod:`minivae.kernels.reference` (plain NumPy, the ground truth)
reference  gpu     the same module on CuPy arrays
numba      cpu     :mod:`minivae.kernels.cpu` (Numba ``@njit``)
numba      gpu     :mod:`minivae.kernels.gpu` (numba-cuda ``@cuda.jit`` on CuPy arrays)
========== ======= =================================================================

The autograd layer asks :func:`get` for a kernel by name and device and never names an implementation.
Users choose one with :func:`use`, as a call or as a context manager::

    minivae.kernels.use("reference")            # from now on, on the CPU
    with minivae.kernels.use("numba", device="cpu"):
        ...
"""
from __future__ import annotations

import importlib
from types import ModuleType

from minivae.backend import CPU, GPU, check_device_name

#: Every kernel an implementation must provide.
KERNELS = (
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_backward_bias",
    "conv_transpose2d_forward", "conv_transpose2d_backward_input", "conv_transpose2d_backward_weight",
    "dense_forward", "dense_backward",
    "reparameterize_kl_forward", "reparameterize_kl_backward",
    "bce_with_logits_forward", "bce_with_logits_backward",
)

#: (device, implementation name) -> module path.
_MODULES: dict[tuple[str, str], str] = {
    (CPU, "reference"): "minivae.kernels.reference",
    (GPU, "reference"): "minivae.kernels.reference",
    (CPU, "numba"): "minivae.kernels.cpu",
    (GPU, "numba"): "minivae.kernels.gpu",
    (GPU, "cupy"): "minivae.kernels.cublas",
}

_DEFAULTS = {CPU: "numba", GPU: "numba"}
_selected: dict[str, str] = {}


def register(device: str, name: str, module_path: str) -> None:
    """Register another implementation (a module defining every kernel in :data:`KERNELS`)."""
    _MODULES[(check_device_name(device), name)] = module_path


def implementations(device: str | None = None) -> list[str]:
    """Names of the implementations registered for ``device`` (all devices when None)."""
    return sorted({name for (d, name) in _MODULES if device is None or d == device})


def current(device: str = CPU) -> str:
    """The implementation name in use on ``device``."""
    return _selected.get(check_device_name(device), _DEFAULTS[device])


def module(device: str = CPU, name: str | None = None) -> ModuleType:
    """The module of implementation ``name`` (default: the current one) on ``device``."""
    name = name or current(device)
    try:
        path = _MODULES[(device, name)]
    except KeyError:
        raise ValueError(
            f"no kernel implementation {name!r} for device {device!r}; "
            f"registered: {implementations(device)}"
        ) from None
    return importlib.import_module(path)


def get(kernel: str, device: str = CPU):
    """The function implementing ``kernel`` on ``device`` with the current implementation.

    Raises:
        KeyError: unknown kernel name. ValueError: unknown implementation.
    """
    if kernel not in KERNELS:
        raise KeyError(f"unknown kernel {kernel!r}; known kernels: {', '.join(KERNELS)}")
    return getattr(module(device), kernel)


class use:
    """Select the kernel implementation for a device: ``use("reference")`` or ``with use("numba"): ...``.

    Args:
        name: an implementation from :func:`implementations`.
        device: "cpu" (default) or "gpu".
    Raises:
        ValueError: unknown device or implementation (checked at once, not at the first kernel call).
    """

    def __init__(self, name: str, device: str = CPU):
        check_device_name(device)
        if (device, name) not in _MODULES:
            raise ValueError(f"no kernel implementation {name!r} for device {device!r}; "
                             f"registered: {implementations(device)}")
        self.device = device
        self._previous = _selected.get(device)
        _selected[device] = name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._previous is None:
            _selected.pop(self.device, None)
        else:
            _selected[self.device] = self._previous
        return False
