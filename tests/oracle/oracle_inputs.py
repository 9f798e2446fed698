"""Hypothesis strategies for the oracle's inputs: shapes (0-d, size-1 and empty dims), broadcasting pairs,
dims/keepdim of reductions, and values from a named domain.

Values come from a NumPy generator seeded by a drawn integer (so two elements never tie and never sit on a
kink such as ``relu``'s 0 or ``clamp``'s bounds, where derivatives are conventions, not maths: those points are
checked by the explicit edge cases in ``test_oracle_edges.py``). The layout (contiguous, transposed, strided,
reversed) is drawn by the test itself.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from oracle_harness import Case

seeds = st.integers(0, 2 ** 31 - 1)


def _away0(rng, s):
    return np.where(rng.random(s) < 0.5, -1.0, 1.0) * (0.25 + np.abs(rng.standard_normal(s)))


DOMAINS = {
    "real": lambda rng, s: rng.standard_normal(s),
    "positive": lambda rng, s: np.exp(0.5 * rng.standard_normal(s)),  # about (0.2, 5)
    "away0": _away0,  # |x| >= 0.25: abs, relu, sign-like kinks and denominators
    "unit": lambda rng, s: rng.uniform(0.05, 0.95, s),  # probabilities
    "near1": lambda rng, s: np.where(rng.random(s) < 0.5, -1.0, 1.0) * rng.uniform(0.6, 1.4, s),  # products
    "wide": lambda rng, s: 4.0 * rng.standard_normal(s),  # sigmoid/softplus/gelu tails
}


def values(draw, shape, domain="real"):
    rng = np.random.default_rng(draw(seeds))
    return np.asarray(DOMAINS[domain](rng, tuple(shape)), dtype=np.float64)


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@st.composite
def unary(draw, domain="real", min_side=0, min_dims=0, max_dims=3, **kwargs):
    """One tensor of any shape (``kwargs`` passed as they are)."""
    shape = draw(shapes(min_dims, max_dims, min_side))
    return Case((values(draw, shape, domain),), dict(kwargs))


@st.composite
def unary_kw(draw, kw_strategy, domain="real", min_side=0, min_dims=0, max_dims=3):
    """One tensor and keyword arguments drawn from ``kw_strategy``."""
    shape = draw(shapes(min_dims, max_dims, min_side))
    return Case((values(draw, shape, domain),), draw(kw_strategy))


@st.composite
def binary(draw, domain_a="real", domain_b="real", min_side=0, diff=(0, 1)):
    """Two tensors whose shapes broadcast together (either may be 0-d; size-1 and empty dims included)."""
    bs = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=min_side,
                                                max_side=3))
    a, b = bs.input_shapes
    return Case((values(draw, a, domain_a), values(draw, b, domain_b)), {}, diff)


@st.composite
def with_scalar(draw, scalar, domain="real", min_side=0):
    """A tensor and a Python number (``x + 2.5``, ``2.5 ** x``)."""
    shape = draw(shapes(0, 3, min_side))
    return Case((values(draw, shape, domain), draw(scalar)), {}, (0,))


def _dims(draw, ndim, allow_none=True, allow_tuple=True):
    """``None``, an int (maybe negative) or a tuple of distinct dims of an ``ndim``-dimensional tensor."""
    kinds = (["none"] if allow_none else []) + ["int"] + (["tuple"] if allow_tuple and ndim > 0 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    n = max(ndim, 1)  # a 0-d tensor takes dim 0 or -1, as PyTorch
    if kind == "int":
        return draw(st.integers(-n, n - 1))
    picked = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(d - ndim if draw(st.booleans()) else d for d in picked)


@st.composite
def reduction(draw, domain="real", min_side=0, allow_none=True, allow_tuple=True, keepdim=True, dim_required=False,
              extra=None):
    """A tensor and ``dim=``/``keepdim=`` (dim omitted when None, unless ``dim_required``)."""
    shape = draw(shapes(0, 3, min_side))
    dim = _dims(draw, len(shape), allow_none and not dim_required, allow_tuple)
    kw = {} if dim is None else {"dim": dim}
    if keepdim and dim is not None:
        kw["keepdim"] = draw(st.booleans())
    if extra is not None:
        kw.update(draw(extra))
    return Case((values(draw, shape, domain),), kw)


@st.composite
def tensors_along(draw, count=(1, 3), same_shape=False, min_dims=1):
    """A list of tensors of one shape except along ``dim`` (``cat``), or of one shape (``stack``)."""
    shape = list(draw(shapes(min_dims, 3, 0, 3)))
    ndim = len(shape)
    n = draw(st.integers(*count))
    if same_shape:
        dim = draw(st.integers(-(ndim + 1), ndim))
        xs = [values(draw, shape) for _ in range(n)]
    else:
        dim = draw(st.integers(-ndim, ndim - 1))
        xs = []
        for _ in range(n):
            s = list(shape)
            s[dim] = draw(st.integers(0, 3))
            xs.append(values(draw, s))
    return Case((xs,), {"dim": dim}, (0,))
