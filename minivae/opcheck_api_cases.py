"""The gradient-check catalogue's cases for the PyTorch-API ops (elementwise maths, reductions, shape ops,
softmax and the classification losses): :func:`add_cases` is called by :mod:`minivae.opcheck` with its ``add``.

Inputs avoid each op's kinks and ties (``abs`` at 0, ``clamp``'s bounds, ``maximum``'s ties), where finite
differences and subgradients disagree by definition.
"""
from __future__ import annotations

import numpy as np

import minivae.functional as F
from minivae.autograd.tensor import Tensor


def add_cases(add, normal, away_from_zero, positive, fixed) -> None:
    """Register the cases through ``add(op, settings, fn, make_inputs)``; the other arguments are opcheck's
    input helpers (``normal(*shape)`` gives a make_inputs; the others take ``(rng, shape)``)."""
    add("leaky_relu", "negative_slope=0.1", lambda x: F.leaky_relu(x, 0.1), lambda r: [away_from_zero(r, (3, 4))])
    add("gelu", "exact", F.gelu, normal(3, 4))
    add("gelu", "approximate=tanh", lambda x: F.gelu(x, approximate="tanh"), normal(3, 4))
    for name in ("sin", "cos", "erf", "expm1"):
        add(name, "", getattr(F, name), normal(2, 3))
    for name in ("sqrt", "rsqrt", "log1p"):
        add(name, "", getattr(F, name), lambda r: [positive(r, (2, 3))])
    add("abs", "", F.abs, lambda r: [away_from_zero(r, (2, 3))])
    add("reciprocal", "", F.reciprocal, lambda r: [away_from_zero(r, (2, 3), 0.5)])
    add("clone", "", F.clone, normal(2, 3))
    add("cast", "float64 -> float64", lambda x: F.cast(x, np.float64), normal(2, 3))
    add("maximum", "2x3, 3", F.maximum, lambda r: [r.standard_normal((2, 3)), r.standard_normal(3) + 0.05])
    add("minimum", "2x1, 2x3", F.minimum, lambda r: [r.standard_normal((2, 1)), r.standard_normal((2, 3)) + 0.05])
    add("clamp", "[-0.5, 0.7]", lambda x: F.clamp(x, -0.5, 0.7), lambda r: [2 * r.standard_normal((3, 4)) + 0.013])
    add("clip", "min=-0.3", lambda x: F.clip(x, min=-0.3), lambda r: [r.standard_normal((3, 4)) + 0.011])
    mask = np.array([[True, False, True], [False, True, True]])
    add("where", "fixed mask", lambda a, b: F.where(Tensor(mask), a, b),
        lambda r: [r.standard_normal((2, 3)), r.standard_normal(3)])
    add("var", "dim=1", lambda x: F.var(x, dim=1), normal(3, 4))
    add("std", "all, correction=0", lambda x: F.std(x, correction=0), normal(3, 4))
    add("prod", "dim=1", lambda x: F.prod(x, dim=1), lambda r: [positive(r, (3, 4))])
    add("norm", "p=2, dim=1", lambda x: F.norm(x, dim=1), normal(3, 4))
    add("norm", "p=1", lambda x: F.norm(x, p=1), lambda r: [away_from_zero(r, (3, 4))])
    add("max", "all", F.max, normal(3, 4))
    add("max", "dim=1, values", lambda x: F.max(x, 1).values, normal(3, 4))
    add("min", "dim=0, keepdim, values", lambda x: F.min(x, 0, keepdim=True).values, normal(3, 4))
    add("amax", "dim=(0, 2)", lambda x: F.amax(x, (0, 2)), normal(2, 3, 4))
    add("amin", "all", F.amin, normal(3, 4))
    add("logsumexp", "dim=1", lambda x: F.logsumexp(x, 1), normal(3, 4))
    add("softmax", "dim=1", lambda x: F.softmax(x, 1), normal(3, 4))
    add("log_softmax", "dim=0", lambda x: F.log_softmax(x, 0), normal(3, 4))
    add("view", "2x6 -> 3x4", lambda x: F.view(x, 3, 4), normal(2, 6))
    add("squeeze", "3x1x2", F.squeeze, normal(3, 1, 2))
    add("unsqueeze", "dim=1", lambda x: F.unsqueeze(x, 1), normal(3, 2))
    add("flatten", "start_dim=1", lambda x: F.flatten(x, 1), normal(2, 3, 2))
    add("unflatten", "dim=1 -> (3, -1)", lambda x: F.unflatten(x, 1, (3, -1)), normal(2, 6))
    add("expand", "3x1 -> 2x3x4", lambda x: F.expand(x, 2, -1, 4), normal(3, 1))
    add("cat", "dim=0", lambda a, b: F.cat([a, b]), lambda r: [r.standard_normal((1, 3)), r.standard_normal((2, 3))])
    add("stack", "dim=1", lambda a, b: F.stack([a, b], 1), lambda r: [r.standard_normal((2, 3)),
                                                                     r.standard_normal((2, 3))])
    add("chunk", "3 chunks, dim=1", lambda x: F.chunk(x, 3, 1), normal(2, 5))
    add("repeat", "(3, 2, 1)", lambda x: F.repeat(x, 3, 2, 1), normal(2, 3))
    add("gather", "dim=1", lambda x: F.gather(x, 1, np.array([[0, 2, 2], [1, 0, 1]])), normal(2, 3))
    add("index_put", "[:, [0, 2]] = v", lambda x, v: F.index_put(x, (slice(None), np.array([0, 2])), v),
        lambda r: [r.standard_normal((3, 4)), r.standard_normal((3, 1))])
    add("cross_entropy", "class indices", lambda x: F.cross_entropy(x, Tensor(np.array([0, 2, 1]))), normal(3, 4))
    add("nll_loss", "weights, ignore_index", lambda x: F.nll_loss(x, Tensor(np.array([0, 2, -100])),
                                                                  weight=Tensor(np.array([1.0, 2.0, 3.0]))),
        normal(3, 3))
    add("kl_div", "batchmean", lambda x, t: F.kl_div(x, t, reduction="batchmean"),
        lambda r: [r.standard_normal((3, 4)), fixed(r.uniform(0.1, 1.0, (3, 4)))])
    add("binary_cross_entropy", "probabilities", F.binary_cross_entropy,
        lambda r: [r.uniform(0.1, 0.9, (2, 3)), fixed(r.uniform(0.0, 1.0, (2, 3)))])
    add("l1_loss", "mean", F.l1_loss, lambda r: [r.standard_normal((2, 3)), r.standard_normal((2, 3)) + 0.05])
