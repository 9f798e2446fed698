"""Parameter initialisers and the generator they draw from.

* :func:`kaiming_uniform` with ``a = sqrt(5)`` is PyTorch's default for ``Linear``/``Conv2d``/
  ``ConvTranspose2d`` weights (He et al. 2015, "Delving deep into rectifiers", eq. 16, with PyTorch's
  choice of ``a``): ``U(-b, b)``, ``b = gain * sqrt(3 / fan_in)``, ``gain = sqrt(2 / (1 + a^2))``, which
  gives ``b = 1 / sqrt(fan_in)``. Biases: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, also PyTorch's default.
* :func:`glorot_uniform` (Glorot & Bengio 2010, eq. 16) is Keras' default: ``b = sqrt(6 / (fan_in + fan_out))``.

``fan_in``/``fan_out`` follow PyTorch: for a weight of shape ``(a, b, *kernel)``, ``fan_in = b * prod(kernel)``
and ``fan_out = a * prod(kernel)`` (so for ConvTranspose2d's ``(C_in, C_out, kH, kW)`` weight, fan_in counts
C_out, exactly as PyTorch computes it).
"""
from __future__ import annotations

import math

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the generator used by the initialisers (as ``torch.manual_seed``); returns it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator() -> np.random.Generator:
    """The NumPy generator the initialisers draw from by default."""
    return _generator


def fan_in_and_fan_out(shape: tuple) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shape, as ``torch.nn.init._calculate_fan_in_and_fan_out``."""
    if len(shape) < 2:
        raise ValueError(f"fan in/out need a weight with at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def uniform(shape, bound: float, dtype=np.float32, rng: np.random.Generator | None = None) -> np.ndarray:
    """Fill with draws from ``U(low, high)``, in place."""
    rng = rng or _generator
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_uniform(shape, a: float = math.sqrt(5), dtype=np.float32, rng=None) -> np.ndarray:
    """He / Kaiming uniform initialisation (He et al. 2015, eq. 10) with PyTorch's ``a`` argument, in place."""
    fan_in, _ = fan_in_and_fan_out(tuple(shape))
    gain = math.sqrt(2.0 / (1 + a * a))
    return uniform(shape, gain * math.sqrt(3.0 / fan_in), dtype, rng)


def glorot_uniform(shape, dtype=np.float32, rng=None) -> np.ndarray:
    """Glorot / Xavier uniform initialisation (Glorot & Bengio 2010, eq. 16), in place."""
    fan_in, fan_out = fan_in_and_fan_out(tuple(shape))
    return uniform(shape, math.sqrt(6.0 / (fan_in + fan_out)), dtype, rng)


def bias_uniform(weight_shape, n_out: int, dtype=np.float32, rng=None) -> np.ndarray:
    """PyTorch's default bias initialisation: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, in place."""
    fan_in, _ = fan_in_and_fan_out(tuple(weight_shape))
    return uniform((n_out,), 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0, dtype, rng)


INITIALISERS = {"kaiming_uniform": kaiming_uniform, "glorot_uniform": glorot_uniform}
