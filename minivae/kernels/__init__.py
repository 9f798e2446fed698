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

The selection is context-local and is bound to the graph: a node's backward runs on the kernels its forward
ran on (see :func:`selection` and :class:`bound`).
"""
from __future__ import annotations

import importlib
from contextvars import ContextVar
from types import ModuleType

from minivae.backend import CPU, GPU, check_device_name

#: Every kernel an implementation must provide: exactly the ones the ops call (the one list of kernel names;
#: implementations, the test spy and the benchmarks read it from here). ``conv_transpose2d_backward(gy, x, weight,
#: stride, padding) -> (gx, gW)`` gives both gradients of a transposed convolution at once.
KERNELS = (
    "conv2d_forward", "conv2d_backward_weight", "conv2d_backward_bias",
    "conv_transpose2d_forward", "conv_transpose2d_backward",
    "dense_forward", "dense_backward",
    "reparameterize_kl_forward", "reparameterize_kl_backward",
    "bce_with_logits_forward", "bce_with_logits_backward",
    "relu_forward", "relu_backward",
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

#: The selection in force: a tuple of (device, implementation name) pairs, context-local as grad mode is
#: thread-local. Each graph node keeps the selection its forward ran under (:func:`selection`), and the
#: backward engine runs that node's backward under it (:func:`bound`), so backward and every higher-order
#: backward use the implementation the forward used, whatever is selected by then.
_SELECTION: ContextVar[tuple] = ContextVar("minivae_kernel_selection", default=())


def register(device: str, name: str, module_path: str) -> None:
    """Register another implementation (a module defining every kernel in :data:`KERNELS`).

    Select it afterwards with ``use(name, device=device)``. Raises ValueError for an unknown device.
    """
    _MODULES[(check_device_name(device), name)] = module_path
    _FUNCTIONS.clear()


def implementations(device: str | None = None) -> list[str]:
    """Names of the implementations registered for ``device`` (all devices when None)."""
    return sorted({name for (d, name) in _MODULES if device is None or d == device})


def selection() -> tuple:
    """The current selection as an opaque, hashable snapshot (what a graph node keeps)."""
    return _SELECTION.get()


def _selected_name(device: str, snapshot: tuple) -> str:
    for d, name in snapshot:
        if d == device:
            return name
    return _DEFAULTS[device]


def current(device: str = CPU) -> str:
    """The implementation name in use on ``device`` in this context."""
    return _selected_name(check_device_name(device), _SELECTION.get())


def module(device: str = CPU, name: str | None = None) -> ModuleType:
    """The module of implementation ``name`` (default: the current one) on ``device``."""
    name = name or _selected_name(device, _SELECTION.get())
    try:
        path = _MODULES[(device, name)]
    except KeyError:
        raise ValueError(
            f"no kernel implementation {name!r} for device {device!r}; "
            f"registered: {implementations(device)}"
        ) from None
    return importlib.import_module(path)


_FUNCTIONS: dict = {}  # (kernel, device, selection snapshot) -> function; cleared by register()


def get(kernel: str, device: str = CPU):
    """The function implementing ``kernel`` on ``device`` with the implementation selected in this context.

    Looked up once per (kernel, device, selection) and cached: every op's forward asks, so this is on the hot path.
    Raises:
        KeyError: unknown kernel name. ValueError: unknown implementation.
    """
    key = (kernel, device, _SELECTION.get())
    try:
        return _FUNCTIONS[key]
    except KeyError:
        pass
    if kernel not in KERNELS:
        raise KeyError(f"unknown kernel {kernel!r}; known kernels: {', '.join(KERNELS)}")
    fn = _FUNCTIONS[key] = getattr(module(device), kernel)
    return fn


class bound:
    """``with bound(snapshot):`` run code under a selection taken earlier by :func:`selection` (the
    backward engine uses it to run each node's backward on the kernels its forward used)."""

    __slots__ = ("snapshot", "_token")

    def __init__(self, snapshot: tuple):
        self.snapshot = snapshot

    def __enter__(self):
        self._token = _SELECTION.set(self.snapshot)
        return self

    def __exit__(self, *exc):
        _SELECTION.reset(self._token)
        return False


class use:
    """Select the kernel implementation for a device: ``use("reference")`` or ``with use("numba"): ...``.

    The selection is context-local (a :class:`contextvars.ContextVar`): a call changes it for the current
    thread / asyncio task; as a context manager it nests and restores the previous selection on exit. A graph
    built under one selection keeps it: its backward runs on the same kernels even after the block ends.

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
        snapshot = tuple((d, n) for d, n in _SELECTION.get() if d != device) + ((device, name),)
        self._token = _SELECTION.set(tuple(sorted(snapshot)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            _SELECTION.reset(self._token)
        except ValueError:  # exited in another context than it was entered in: nothing to restore there
            pass
        return False
