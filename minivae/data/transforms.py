"""Array transforms for image batches (NumPy in, NumPy out)."""
from __future__ import annotations

import numpy as np

__all__ = ["to_float", "binarize", "binarize_stochastic", "one_hot"]


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images ``(N, H, W)`` or ``(N, 1, H, W)`` (0-255) -> float32 ``(N, 1, H, W)`` in [0, 1].

    Float input is taken to be in [0, 1] already and only reshaped / cast.  Raises
    :class:`ValueError` for other shapes."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected images of shape (N, H, W) or (N, 1, H, W), got {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return x.astype(np.float32, copy=False)


def binarize(x: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Fixed-threshold binarisation, as in the TensorFlow CVAE tutorial: ``1`` where
    ``x > threshold``, else ``0``, in ``x``'s dtype (same shape)."""
    x = np.asarray(x)
    return (x > threshold).astype(x.dtype)


def binarize_stochastic(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One Bernoulli(``x``) draw per element (``x`` in [0, 1]); ``0``/``1`` in ``x``'s dtype."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise ValueError(f"binarize_stochastic expects probabilities in a float array, got {x.dtype}")
    return (rng.random(x.shape, dtype=np.float64) < x).astype(x.dtype)


def one_hot(labels: np.ndarray, num_classes: int, dtype=np.float32) -> np.ndarray:
    """Integer labels of shape ``(N,)`` -> ``(N, num_classes)`` one-hot rows of ``dtype``.

    Raises :class:`ValueError` for non-integer labels or labels outside ``0..num_classes-1``."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}")
    out = np.zeros(labels.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, labels[..., None].astype(np.intp), 1, axis=-1)
    return out
