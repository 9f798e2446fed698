"""Argument checks shared by the ops: each raises an error that names the op and the problem."""
from __future__ import annotations

import numbers
import operator


def _is_int(v) -> bool:
    """A Python or NumPy integer (``numbers.Integral``: ``np.int64(2)`` counts), not a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def pair(value, name: str, op: str, minimum: int = 0) -> tuple[int, int]:
    """``value`` as an ``(h, w)`` pair of Python ints >= ``minimum`` (an int is used for both). NumPy
    integers are accepted as ints are. Raises TypeError (not an int or pair of ints) or ValueError (too
    small), naming ``op`` and ``name``."""
    if _is_int(value):
        value = (value, value)
    try:
        h, w = value
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None
    if not all(_is_int(v) for v in (h, w)):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if h < minimum or w < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(h), int(w)


def check_floating(op: str, **arrays) -> None:
    """All given arrays (None skipped) are floating point and share one dtype; raises TypeError."""
    dtypes = {}
    for name, a in arrays.items():
        if a is None:
            continue
        if a.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be a floating-point tensor, got dtype {a.dtype}")
        dtypes[name] = a.dtype
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{k}={v}" for k, v in dtypes.items())
        raise TypeError(f"{op}: expected one dtype for all inputs, got {listing}; convert with .astype()")


def check_ndim(op: str, name: str, array, ndim: int, layout: str) -> None:
    """Raise ValueError naming the op unless ``array`` has ``ndim`` dimensions."""
    if array.ndim != ndim:
        raise ValueError(f"{op}: {name} must have {ndim} dimensions {layout}, got shape {tuple(array.shape)}")


def check_same_shape(op: str, **arrays) -> None:
    """Raise ValueError naming the op and each shape unless all arrays share one shape."""
    shapes = {k: tuple(v.shape) for k, v in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"{op}: shapes must match, got " + ", ".join(f"{k} {v}" for k, v in shapes.items()))


def normalize_dim(dim, ndim: int, op: str) -> int:
    """``dim`` (an int, NumPy ints included; negative counts from the end) as an index in ``[0, ndim)``.

    A 0-d tensor accepts dims 0 and -1, as PyTorch. Raises IndexError naming ``op``, ``dim`` and ``ndim``, and
    TypeError for a dim that is not an integer.
    """
    try:
        d = operator.index(dim)
    except TypeError:
        raise TypeError(f"{op}: dim must be an int, got {dim!r}") from None
    n = max(ndim, 1)
    if not -n <= d < n:
        raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions "
                         f"(expected a dim in [{-n}, {n - 1}])")
    return d % n


def normalize_dims(dim, ndim: int, op: str) -> tuple:
    """``dim`` (None for every dim, an int or a sequence of ints) as a sorted tuple of distinct indices; () for
    a 0-d tensor. Raises IndexError / TypeError as :func:`normalize_dim`, ValueError for a repeated dim."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if not isinstance(dim, (tuple, list)) else tuple(dim)
    out = [normalize_dim(d, ndim, op) for d in dims]
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim!r} names a dimension twice")
    return () if ndim == 0 else tuple(sorted(out))


def pick(op: str, dim, axis, name: str = "dim"):
    """PyTorch's ``dim`` keyword, with NumPy's ``axis`` accepted as an alias (not both)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: got both {name}= and its NumPy alias; pass one")
        return axis
    return dim
