"""Finite-difference gradient checks (float64, central differences) of every op in ``minivae.functional``.

Shapes are tiny: the full-Jacobian mode costs one backward per output element and two forwards per
input element. ``test_every_functional_op_is_covered`` fails when an op is added to ``functional`` without
a case here.
"""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae.kernels.reference import conv_output_size, conv_transpose_output_size

R = np.random.default_rng(1234)


def randn(*shape):
    return R.standard_normal(shape)


def away_from_zero(*shape, margin=0.1):
    """Normal draws pushed away from 0 (for relu's kink and for denominators)."""
    x = R.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


def positive(*shape):
    return R.uniform(0.5, 2.0, shape)


def C(*shape):
    """A constant for a case's fn, drawn once as a default argument (fn must be deterministic)."""
    return R.standard_normal(shape)


def fixed(a):
    """An input held constant by gradcheck (random noise, targets)."""
    return mv.Tensor(np.asarray(a, dtype=np.float64))


# (name, fn, inputs) — inputs are arrays (checked) or fixed Tensors (held constant)
CASES = [
    ("relu", F.relu, [away_from_zero(3, 4)]),
    ("sigmoid", F.sigmoid, [randn(3, 4) * 3]),
    ("softplus", F.softplus, [randn(3, 4) * 3]),
    ("tanh", F.tanh, [randn(3, 4)]),
    ("exp", F.exp, [randn(2, 3)]),
    ("log", F.log, [positive(2, 3)]),
    ("neg", F.neg, [randn(2, 3)]),
    ("cast", lambda x: F.cast(x, np.float64) * x, [randn(2, 3)]),
    ("add", F.add, [randn(2, 3), randn(3)]),
    ("add_broadcast_both", F.add, [randn(2, 1), randn(1, 3)]),
    ("sub", F.sub, [randn(2, 1, 3), randn(4, 1)]),
    ("mul", F.mul, [randn(2, 3), randn(2, 1)]),
    ("mul_scalar_shape", F.mul, [randn(2, 3), randn()]),
    ("div", F.div, [randn(2, 3), away_from_zero(3, margin=0.5)]),
    ("div_broadcast_numerator", F.div, [randn(3), away_from_zero(2, 3, margin=0.5)]),
    ("pow", F.pow, [positive(2, 3), randn(3)]),
    ("pow_scalar_exponent", lambda a: F.pow(a, 3.0), [randn(2, 3)]),
    ("rpow_scalar_base", lambda b: 2.0 ** b, [randn(2, 3)]),
    ("matmul", F.matmul, [randn(2, 3), randn(3, 4)]),
    ("matmul_batched", F.matmul, [randn(2, 2, 3), randn(3, 2)]),
    ("sum_all", F.sum, [randn(2, 3)]),
    ("sum_axis", lambda x: F.sum(x, axis=1), [randn(2, 3, 2)]),
    ("sum_neg_axes_keepdims", lambda x: F.sum(x, axis=(-1, 0), keepdims=True), [randn(2, 3, 2)]),
    ("mean_all", F.mean, [randn(2, 3)]),
    ("mean_axis_keepdims", lambda x: F.mean(x, axis=-2, keepdims=True), [randn(2, 3, 2)]),
    ("reshape", lambda x, c=C(3, 4): F.reshape(x, (3, -1)) * c, [randn(2, 6)]),
    ("permute", lambda x, c=C(3, 4, 2): F.permute(x, (1, 2, 0)) * c, [randn(2, 3, 4)]),
    ("transpose", lambda x, c=C(4, 3, 2): F.transpose(x, 0, 2) * c, [randn(2, 3, 4)]),
    ("t", lambda x, c=C(2, 2): F.t(x) @ c, [randn(2, 3)]),
    ("broadcast_to", lambda x, c=C(3, 2, 4): F.broadcast_to(x, (3, 2, 4)) * c, [randn(2, 1)]),
    ("concatenate", lambda a, b, c=C(2, 5): F.concatenate([a, b], axis=1) * c, [randn(2, 3), randn(2, 2)]),
    ("cat_axis0", lambda a, b, c: F.cat([a, b, c], axis=0), [randn(1, 2), randn(2, 2), randn(1, 2)]),
    ("split_int", lambda x: F.split(x, 2, axis=1), [randn(2, 5)]),
    ("split_list", lambda x: F.split(x, [1, 3], axis=0), [randn(4, 2)]),
    ("getitem_slice", lambda x: F.getitem(x, (slice(1, 3), slice(None, None, 2))), [randn(4, 5)]),
    ("getitem_int_array_repeats", lambda x: F.getitem(x, np.array([2, 0, 2, 2])), [randn(4, 3)]),
    ("getitem_mixed", lambda x: x[np.array([1, 1]), 1:], [randn(3, 3)]),
    ("linear_bias", F.linear, [randn(3, 4), randn(2, 4), randn(2)]),
    ("linear_no_bias", F.linear, [randn(3, 4), randn(2, 4)]),
    ("bce_sum", lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="sum"),
     [randn(2, 5) * 3, R.uniform(0, 1, (2, 5))]),
    ("bce_mean", lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="mean"),
     [randn(2, 5) * 3, R.uniform(0, 1, (2, 5))]),
    ("bce_none", lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
     [randn(2, 3) * 3, fixed((R.uniform(size=(2, 3)) < 0.5).astype(float))]),
    ("mse_mean", F.mse_loss, [randn(2, 3), randn(2, 3)]),
    ("mse_sum", lambda x, t: F.mse_loss(x, t, reduction="sum"), [randn(2, 3), randn(2, 3)]),
    ("mse_none", lambda x, t: F.mse_loss(x, t, reduction="none"), [randn(2, 3), fixed(randn(2, 3))]),
    ("gaussian_nll", lambda x, t: F.gaussian_nll(x, t, sigma=0.7), [randn(2, 1, 2, 2), randn(2, 1, 2, 2)]),
    ("kl_normal", F.kl_normal, [randn(3, 2), randn(3, 2) * 0.5]),
    # noise held fixed; both outputs (z and kl) are checked
    ("reparameterize_kl", F.reparameterize_kl, [randn(3, 2), randn(3, 2) * 0.5, fixed(randn(3, 2))]),
    ("reparameterize_kl_eps_differentiable", F.reparameterize_kl, [randn(2, 2), randn(2, 2), randn(2, 2)]),
    ("reparameterize_kl_z_only", lambda m, lv, e: F.reparameterize_kl(m, lv, e)[0],
     [randn(2, 3), randn(2, 3), fixed(randn(2, 3))]),
    ("reparameterize_kl_kl_only", lambda m, lv, e: F.reparameterize_kl(m, lv, e)[1],
     [randn(2, 3), randn(2, 3), fixed(randn(2, 3))]),
    # the PyTorch-API ops (issue 21)
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.1), [away_from_zero(3, 4)]),
    ("gelu", F.gelu, [randn(3, 4) * 2]),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [randn(3, 4) * 2]),
    ("softplus_beta_threshold", lambda x: F.softplus(x, beta=2.0, threshold=3.0), [away_from_zero(3, 4) * 2]),
    ("clone", lambda x, c=C(2, 3): F.clone(x) * c, [randn(2, 3)]),
    ("abs", F.abs, [away_from_zero(2, 3)]),
    ("sqrt", F.sqrt, [positive(2, 3)]),
    ("rsqrt", F.rsqrt, [positive(2, 3)]),
    ("reciprocal", F.reciprocal, [away_from_zero(2, 3, margin=0.5)]),
    ("log1p", F.log1p, [positive(2, 3)]),
    ("expm1", F.expm1, [randn(2, 3)]),
    ("sin", F.sin, [randn(2, 3)]),
    ("cos", F.cos, [randn(2, 3)]),
    ("erf", F.erf, [randn(2, 3)]),
    ("maximum", F.maximum, [randn(2, 3), randn(3) + 0.05]),
    ("minimum", F.minimum, [randn(2, 1), randn(2, 3) + 0.05]),
    ("clamp", lambda x: F.clamp(x, -0.5, 0.7), [randn(3, 4) * 2 + 0.013]),
    ("clip", lambda x: F.clip(x, min=-0.3), [randn(3, 4) + 0.011]),
    ("where", lambda a, b, c=C(2, 3): F.where(mv.Tensor(c > 0), a, b), [randn(2, 3), randn(3)]),
    ("var", lambda x: F.var(x, dim=1), [randn(3, 4)]),
    ("var_all_biased", lambda x: F.var(x, correction=0), [randn(3, 4)]),
    ("std", lambda x: F.std(x, dim=(0, 1), keepdim=True), [randn(3, 4)]),
    ("prod", lambda x: F.prod(x, dim=1), [positive(3, 4)]),
    ("prod_all", F.prod, [away_from_zero(2, 3)]),
    ("norm", lambda x: F.norm(x, dim=1), [randn(3, 4)]),
    ("norm_p1", lambda x: F.norm(x, p=1), [away_from_zero(3, 4)]),
    ("max", F.max, [randn(3, 4)]),
    ("max_dim", lambda x: F.max(x, 1).values, [randn(3, 4)]),
    ("min", lambda x: F.min(x, dim=0, keepdim=True).values, [randn(3, 4)]),
    ("amax", lambda x: F.amax(x, dim=(0, 2)), [randn(2, 3, 4)]),
    ("amin", F.amin, [randn(3, 4)]),
    ("logsumexp", lambda x: F.logsumexp(x, dim=1), [randn(3, 4) * 3]),
    ("softmax", lambda x, c=C(3, 4): F.softmax(x, dim=1) * c, [randn(3, 4)]),
    ("log_softmax", lambda x, c=C(3, 4): F.log_softmax(x, dim=0) * c, [randn(3, 4)]),
    ("view", lambda x, c=C(3, 4): F.view(x, 3, 4) * c, [randn(2, 6)]),
    ("squeeze", lambda x, c=C(3, 2): F.squeeze(x) * c, [randn(3, 1, 2)]),
    ("unsqueeze", lambda x, c=C(3, 1, 2): F.unsqueeze(x, 1) * c, [randn(3, 2)]),
    ("flatten", lambda x, c=C(2, 6): F.flatten(x, 1) * c, [randn(2, 3, 2)]),
    ("unflatten", lambda x, c=C(2, 3, 2): F.unflatten(x, 1, (3, -1)) * c, [randn(2, 6)]),
    ("expand", lambda x, c=C(2, 3, 4): F.expand(x, 2, -1, 4) * c, [randn(3, 1)]),
    ("stack", lambda a, b, c=C(2, 2, 3): F.stack([a, b], dim=1) * c, [randn(2, 3), randn(2, 3)]),
    ("chunk", lambda x: F.chunk(x, 3, dim=1), [randn(2, 5)]),
    ("repeat", lambda x, c=C(3, 4, 3): F.repeat(x, 3, 2, 1) * c, [randn(2, 3)]),
    ("gather", lambda x: F.gather(x, 1, np.array([[0, 2, 2], [1, 0, 1]])), [randn(2, 3)]),
    ("index_put", lambda x, v: F.index_put(x, (slice(None), np.array([0, 2])), v), [randn(3, 4), randn(3, 1)]),
    ("getitem_bool_mask", lambda x: x[mv.Tensor(np.array([True, False, True]))], [randn(3, 2)]),
    ("cross_entropy", lambda x: F.cross_entropy(x, mv.Tensor(np.array([0, 2, 1]))), [randn(3, 4)]),
    ("cross_entropy_probs_smoothing", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
     [randn(3, 4), fixed(R.dirichlet(np.ones(4), 3))]),
    ("nll_loss", lambda x: F.nll_loss(x, mv.Tensor(np.array([0, 2, -100])), weight=mv.Tensor(np.array([1., 2., 3.]))),
     [randn(3, 3)]),
    ("kl_div", lambda x, t: F.kl_div(x, t, reduction="batchmean"), [randn(3, 4), R.uniform(0.1, 1, (3, 4))]),
    ("binary_cross_entropy", lambda p, t: F.binary_cross_entropy(p, t), [R.uniform(0.1, 0.9, (2, 3)),
                                                                         R.uniform(0, 1, (2, 3))]),
    ("l1_loss", F.l1_loss, [randn(2, 3), randn(2, 3) + 0.05]),
]

#: ops in ``functional`` that are not differentiable (comparisons, indices): no gradient case
NOT_DIFFERENTIABLE = {"eq", "ne", "lt", "le", "gt", "ge", "argmax", "argmin"}

# conv ops get their own grids below
CONV_OPS = {"conv2d", "conv_transpose2d"}


# case-name prefixes of ops whose cases go by a short name
SHORT = {"binary_cross_entropy_with_logits": "bce", "mse_loss": "mse"}


def test_every_functional_op_is_covered():
    covered = {name for name, _, _ in CASES}
    missing = []
    for op in F.__all__:
        if op in CONV_OPS or op in NOT_DIFFERENTIABLE:
            continue
        key = SHORT.get(op, op)
        if not any(c == key or c.startswith(key + "_") for c in covered):
            missing.append(op)
    assert not missing, f"functional ops without a gradcheck case: {missing}"


@pytest.mark.parametrize("name, fn, inputs", CASES, ids=[c[0] for c in CASES])
def test_gradcheck_full(name, fn, inputs):
    assert mv.gradcheck(fn, inputs)


FAST = ["sigmoid", "matmul", "linear_bias", "bce_sum", "reparameterize_kl", "getitem_int_array_repeats", "div"]


@pytest.mark.parametrize("name", FAST)
def test_gradcheck_fast(name):
    _, fn, inputs = next(c for c in CASES if c[0] == name)
    assert mv.gradcheck(fn, inputs, fast_mode=True, n_directions=3)


def test_gradcheck_accepts_float32_inputs_and_checks_in_float64():
    x = R.standard_normal((2, 3)).astype(np.float32)
    seen = []

    def fn(t):
        seen.append(t.dtype)
        return F.tanh(t)

    with pytest.warns(UserWarning, match="input 0 is float32, not float64"):
        assert mv.gradcheck(fn, [x])
    assert set(seen) == {np.dtype(np.float64)}


# --------------------------------------------------------------------------- conv2d grid

CONV_GRID = [
    # (N, C_in, C_out, H, W, kH, kW)
    (2, 2, 3, 5, 6, 3, 2),   # non-square kernel and input
    (1, 1, 2, 4, 4, 3, 3),   # batch 1, square
    (2, 3, 1, 5, 4, 2, 3),
]


@pytest.mark.parametrize("shape", CONV_GRID, ids=lambda s: "N{}Ci{}Co{}_{}x{}_k{}x{}".format(*s))
@pytest.mark.parametrize("stride", [1, 2, (2, 1)])
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_gradcheck_conv2d(shape, stride, padding, bias):
    n, ci, co, h, w, kh, kw = shape
    x, wt = randn(n, ci, h, w), randn(co, ci, kh, kw)
    inputs = [x, wt] + ([randn(co)] if bias else [])

    def fn(*args):
        return F.conv2d(args[0], args[1], args[2] if bias else None, stride=stride, padding=padding)

    assert mv.gradcheck(fn, inputs)


@pytest.mark.parametrize("shape", CONV_GRID, ids=lambda s: "N{}Ci{}Co{}_{}x{}_k{}x{}".format(*s))
@pytest.mark.parametrize("stride, output_padding", [(1, 0), (2, 0), (2, 1), ((2, 1), (1, 0))])
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_gradcheck_conv_transpose2d(shape, stride, output_padding, padding, bias):
    n, ci, co, h, w, kh, kw = shape
    h, w = max(h - 2, 2), max(w - 2, 2)  # the output grows: keep the input smaller
    x, wt = randn(n, ci, h, w), randn(ci, co, kh, kw)
    inputs = [x, wt] + ([randn(co)] if bias else [])

    def fn(*args):
        return F.conv_transpose2d(args[0], args[1], args[2] if bias else None, stride=stride, padding=padding,
                                  output_padding=output_padding)

    assert mv.gradcheck(fn, inputs)


def test_gradcheck_conv_fast_mode():
    x, w, b = randn(2, 2, 6, 5), randn(3, 2, 3, 2), randn(3)
    assert mv.gradcheck(lambda *a: F.conv2d(*a, stride=2, padding=1), [x, w, b], fast_mode=True)
    xt, wt = randn(2, 3, 3, 4), randn(3, 2, 3, 2)
    assert mv.gradcheck(lambda *a: F.conv_transpose2d(*a, stride=2, padding=1, output_padding=1), [xt, wt],
                        fast_mode=True)


def test_gradcheck_conv_with_input_held_fixed():
    """Only the weight checked (the input is a constant); the input gradient is not needed then."""
    x = fixed(randn(1, 2, 4, 5))
    assert mv.gradcheck(lambda a, w: F.conv2d(a, w, padding=1), [x, randn(2, 2, 3, 3)])
    assert mv.gradcheck(lambda a, w: F.conv_transpose2d(a, w, stride=2), [x, randn(2, 1, 2, 3)])


def test_conv_output_shapes_follow_pytorch_formulas():
    for (n, ci, co, h, w, kh, kw) in CONV_GRID:
        for s in (1, 2):
            for p in (0, 1):
                y = F.conv2d(mv.Tensor(randn(n, ci, h, w)), mv.Tensor(randn(co, ci, kh, kw)), stride=s, padding=p)
                assert y.shape == (n, co, (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1)
                assert y.shape[2:] == (conv_output_size(h, kh, s, p), conv_output_size(w, kw, s, p))
                for op in range(s):
                    yt = F.conv_transpose2d(mv.Tensor(randn(n, ci, h, w)), mv.Tensor(randn(ci, co, kh, kw)),
                                            stride=s, padding=p, output_padding=op)
                    assert yt.shape == (n, co, (h - 1) * s - 2 * p + kh + op, (w - 1) * s - 2 * p + kw + op)
                    assert yt.shape[2] == conv_transpose_output_size(h, kh, s, p, op)
