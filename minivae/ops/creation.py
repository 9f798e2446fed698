"""Tensor factories with PyTorch's names and keywords: tensor, zeros, ones, full, empty, arange, linspace, eye,
rand, randn, randint, the ``_like`` forms, and ``manual_seed`` with a default random generator.

Every factory takes ``dtype=`` (a NumPy dtype, its name, or ``minivae.float32`` etc.), ``device=`` ("cpu" or
"gpu") and ``requires_grad=``. The default floating dtype is float32, as in PyTorch; integer data gives int64.
Random numbers come from NumPy's PCG64 generator: the same seed gives the same numbers on every run, but not
the numbers PyTorch draws (see the docs page "Differences from PyTorch").
"""
from __future__ import annotations

import numbers

import numpy as np

from minivae import backend
from minivae.autograd import capture
from minivae.autograd.tensor import Tensor

_GENERATOR = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the default generator used by ``rand``, ``randn``, ``randint`` and the ``_like`` forms (PyTorch's
    ``torch.manual_seed``); returns it. Raises ValueError for a negative seed."""
    global _GENERATOR
    if int(seed) < 0:
        raise ValueError(f"manual_seed: seed must be non-negative, got {seed}")
    _GENERATOR = np.random.default_rng(int(seed))
    return _GENERATOR


def default_generator() -> np.random.Generator:
    """The generator the random factories draw from (replaced by :func:`manual_seed`)."""
    return _GENERATOR


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = tuple(int(n) for n in size)
    if any(n < 0 for n in out):
        raise ValueError(f"negative dimension in size {out}")
    return out


def _finish(array, dtype, device, requires_grad, default=np.float32) -> Tensor:
    dtype = np.dtype(default if dtype is None else dtype)
    array = np.asarray(array).astype(dtype, copy=False)
    if device is not None and backend.check_device_name(device) != backend.CPU:
        array = backend.to_device(array, device)
    return Tensor(array, requires_grad=requires_grad)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (``torch.tensor``): Python floats become float32, ints int64,
    bools bool; a NumPy array keeps its dtype. Raises TypeError for non-numeric data or ``requires_grad`` on a
    non-floating dtype."""
    if isinstance(data, Tensor):
        data = data.data
    array = backend.to_device(data, backend.CPU) if backend.is_gpu_array(data) else np.array(data)
    if dtype is None:
        if array.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)):
            dtype = np.float32
        else:
            dtype = array.dtype
    return _finish(array, dtype, device, requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory and dtype (``torch.from_numpy``): a change of one shows in the other.

    Raises TypeError for anything but a NumPy array of a numeric dtype."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a NumPy ndarray, got {type(array).__name__}")
    return Tensor(array)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of ``size`` (ints or one tuple), float32 by default (``torch.zeros``)."""
    return _finish(np.zeros(_size(size)), dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of ``size``, float32 by default (``torch.ones``)."""
    return _finish(np.ones(_size(size)), dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` (minivae fills it with zeros; PyTorch leaves it uninitialised)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def _scalar_dtype(value):
    if isinstance(value, bool):
        return np.bool_
    if isinstance(value, numbers.Integral):
        return np.int64
    return np.float32


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (``torch.full``; the dtype follows the value: float32,
    int64 or bool, unless ``dtype`` is given)."""
    return _finish(np.full(_size((size,)), fill_value), dtype, device, requires_grad, _scalar_dtype(fill_value))


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``[start, end)`` in steps of ``step`` (``torch.arange``; ``arange(n)`` is ``0..n-1``); int64 when every
    argument is an int, else float32. Raises ValueError for a zero step."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
    return _finish(np.arange(start, end, step), dtype, device, requires_grad, np.int64 if ints else np.float32)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (``torch.linspace``), float32."""
    if steps < 0:
        raise ValueError(f"linspace: number of steps must be non-negative, got {steps}")
    return _finish(np.linspace(start, end, int(steps)), dtype, device, requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """The ``n x m`` identity matrix (``m = n`` by default), float32 (``torch.eye``)."""
    return _finish(np.eye(n, n if m is None else m), dtype, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples on ``[0, 1)`` of ``size``, float32, from the default generator (``torch.rand``)."""
    dtype, shape = np.dtype(np.float32 if dtype is None else dtype), _size(size)
    kind = dtype if dtype in (np.float32, np.float64) else np.float64
    return _random("rand", lambda gen: gen.random(shape, dtype=kind), dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples of ``size``, float32, from the default generator (``torch.randn``)."""
    dtype, shape = np.dtype(np.float32 if dtype is None else dtype), _size(size)
    kind = dtype if dtype in (np.float32, np.float64) else np.float64
    return _random("randn", lambda gen: gen.standard_normal(shape, dtype=kind), dtype, device, requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Integers uniform on ``[low, high)`` of ``size`` (``torch.randint(low, high, size)`` or
    ``randint(high, size)``), int64. Raises ValueError when ``high <= low`` or no size is given."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise ValueError("randint: pass a size, e.g. randint(0, 10, (3,))")
        low, high, size = 0, low, high
    if high <= low:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    shape = _size((size,))
    return _random("randint", lambda gen: gen.integers(low, high, shape), dtype, device, requires_grad, np.int64)


def _random(what: str, draw, dtype, device, requires_grad: bool, default=None) -> Tensor:
    """``draw(generator)`` from the default generator, as a Tensor of ``dtype`` on ``device``. While
    :func:`minivae.compile` records a step, the draw is reported, so that a replay draws new numbers."""
    t = _finish(draw(_GENERATOR), dtype, device, requires_grad, default)
    recorder = capture.active()
    if recorder is not None:
        recorder.random(lambda: _finish(draw(_GENERATOR), dtype, device, False, default).data, t.data, what)
    return t


def _like(t: Tensor, dtype, device):
    return (t.dtype if dtype is None else dtype), (t.device if device is None else device)


def zeros_like(t, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``t``'s shape, dtype and device (``torch.zeros_like``)."""
    dtype, device = _like(t, dtype, device)
    return zeros(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Ones of ``t``'s shape, dtype and device (``torch.ones_like``)."""
    dtype, device = _like(t, dtype, device)
    return ones(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` in ``t``'s shape, dtype and device (``torch.full_like``)."""
    dtype, device = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def rand_like(t, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform ``[0, 1)`` samples in ``t``'s shape, dtype and device (``torch.rand_like``)."""
    dtype, device = _like(t, dtype, device)
    return rand(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def randn_like(t, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples in ``t``'s shape, dtype and device (``torch.randn_like``)."""
    dtype, device = _like(t, dtype, device)
    return randn(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def randint_like(t, low, high=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Integers uniform on ``[low, high)`` (or ``[0, low)``) in ``t``'s shape (``torch.randint_like``)."""
    dtype, device = _like(t, dtype, device)
    low, high = (0, low) if high is None else (low, high)
    return randint(low, high, t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


__all__ = ["tensor", "from_numpy", "zeros", "ones", "empty", "full", "arange", "linspace", "eye", "rand", "randn",
           "randint",
           "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "randint_like", "manual_seed",
           "default_generator"]
