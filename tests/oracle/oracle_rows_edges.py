"""The oracle's table, part 4: fixed edge points, through the same harness as the generated cases.

Random inputs never land on a kink, a tie, a zero base, an empty reduction or a NaN, where an op's value or
derivative is a convention (PyTorch's is the reference: ``relu'(0) = 0``, ``clamp`` passes the gradient at its
bounds, ties of ``max()`` share the gradient, ``d/dw 0**w = 0``, ``mean`` of nothing is NaN...) or where an
implementation loses accuracy (``sigmoid(-20)`` in float32, ``log_softmax`` of large logits). These rows put
inputs exactly there. Each is one fixed ``Case`` (one hypothesis example).
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from oracle_harness import MODES, Case
from oracle_rows import FIRST, FORWARD, Row

NAN, INF = float("nan"), float("inf")


def edge(name, fn, *args, diff=(0,), modes=MODES, kwargs=None, dtypes=("float64", "float32"), **kw):
    case = Case(tuple(np.asarray(a, dtype=np.float64) if isinstance(a, list) else a for a in args), kwargs or {},
                diff)
    return Row(f"edge.{name}", fn, st.just(case), modes=modes, dtypes=dtypes, layouts=("C",), examples=1, **kw)


EDGES = [
    # kinks and ties
    edge("relu_at_0_and_nan", lambda L, x: x.relu(), [0.0, -0.0, NAN, 1.0, -1.0]),
    edge("relu_0d", lambda L, x: L.F.relu(x), np.array(0.7)),
    edge("abs_at_0", lambda L, x: x.abs(), [0.0, -0.0, 2.0, -3.0]),
    edge("clamp_at_bounds", lambda L, x: x.clamp(-0.5, 0.3), [-0.5, 0.3, 0.0, -1.0, 1.0]),
    edge("max_ties", lambda L, x: x.max(), [1.0, 3.0, 3.0, 2.0]),
    edge("max_dim_ties", lambda L, x: x.max(dim=1), [[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]),
    edge("amax_ties", lambda L, x: x.amax(dim=1), [[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]),
    edge("maximum_ties", lambda L, a, b: L.T.maximum(a, b), [1.0, 2.0, 3.0], [1.0, 0.0, 3.0], diff=(0, 1)),
    # second order at 0: PyTorch NaN, minivae 0: listed in docs/differences_from_pytorch.md (finding 8)
    edge("norm_at_0", lambda L, x: x.norm(), [0.0, 0.0, 0.0], modes=("forward", "vjp", "jvp", "fwd_over_rev")),
    # pow at a zero base, zero and unit exponents
    # second order in w at a zero base: PyTorch NaN (log(0)^2 * 0), minivae 0, the derivative of the constant
    # w -> 0 ** w = 0: a divergence kept on purpose (docs/differences_from_pytorch.md), so those modes are left out
    edge("pow_zero_base_in_w", lambda L, b, w: b ** w, [0.0, 0.0, 1.0], [2.0, 0.5, 1.0], diff=(1,),
         modes=("forward", "vjp", "jvp", "fwd_over_rev")),
    edge("pow_x_to_0", lambda L, x: x ** 0, [0.0, 1.0, -2.0]),
    edge("pow_x_to_1", lambda L, x: x ** 1, [0.0, 1.0, -2.0]),
    edge("pow_x_to_2_at_0", lambda L, x: x ** 2, [0.0, -0.0]),
    edge("pow_x_to_1_0d", lambda L, x: x ** 1, np.array(0.0)),
    edge("pow_x_to_3_0d", lambda L, x: x.pow(3), np.array(0.7)),
    # 0-d second derivatives (the silently wrong cases)
    edge("exp_0d", lambda L, x: x.exp(), np.array(0.3)),
    edge("tanh_0d", lambda L, x: x.tanh(), np.array(0.3)),
    edge("sigmoid_0d", lambda L, x: x.sigmoid(), np.array(0.3)),
    edge("div_0d", lambda L, a, b: a / b, np.array(0.3), np.array(-1.7), diff=(0, 1)),
    # accuracy in the tails
    edge("sigmoid_tails", lambda L, x: x.sigmoid(), [-20.0, -100.0, -700.0, 20.0, 100.0]),
    edge("log_sigmoid_minus_20", lambda L, x: x.sigmoid().log(), [-20.0, -30.0, 5.0], dtypes=("float32",)),
    edge("softplus_large", lambda L, x: L.F.softplus(x), [-50.0, 30.0, 100.0]),
    edge("log_softmax_large", lambda L, x: L.F.log_softmax(x, dim=-1), [[1000.0, 0.0, -1000.0]]),
    edge("logsumexp_large", lambda L, x: x.logsumexp(dim=0), [1000.0, 999.0]),
    edge("cross_entropy_large", lambda L, x, t: L.F.cross_entropy(x, t), [[1000.0, 0.0], [0.0, -1000.0]],
         np.array([1, 0])),
    edge("bce_at_0_and_1", lambda L, p, t: L.F.binary_cross_entropy(p, t), [0.0, 1.0, 0.5], [1.0, 0.0, 0.5],
         modes=FORWARD),
    edge("bce_logits_large", lambda L, x, t: L.F.binary_cross_entropy_with_logits(x, t), [100.0, -100.0, 0.0],
         [0.0, 1.0, 0.5]),
    # empty reductions and one-element statistics
    edge("mean_empty_dim", lambda L, x: x.mean(dim=0), np.zeros((0, 3)), modes=FIRST),
    edge("mean_empty_all", lambda L, x: x.mean(), np.zeros((0, 3)), modes=FIRST),
    edge("sum_empty", lambda L, x: x.sum(dim=0), np.zeros((0, 3))),
    edge("mse_loss_empty", lambda L, a, b: L.F.mse_loss(a, b), np.zeros((0,)), np.zeros((0,)), modes=FORWARD),
    edge("var_one_element", lambda L, x: x.var(), [2.0], modes=FORWARD),
    edge("std_one_element_correction0", lambda L, x: x.std(correction=0), [2.0], modes=FORWARD),
    # infinities at the domain's edge
    edge("sqrt_at_0", lambda L, x: x.sqrt(), [0.0, 4.0], modes=FIRST),
    edge("log_at_0", lambda L, x: x.log(), [0.0, 1.0], modes=FIRST),
    edge("div_by_0", lambda L, a, b: a / b, [1.0, -1.0, 0.0], [0.0, 0.0, 0.0], diff=(0,), modes=FORWARD),
    edge("exp_overflow", lambda L, x: x.exp(), [100.0, 1000.0], modes=FIRST, dtypes=("float32",)),
    # axes given as NumPy integers, negative dims of 0-d tensors
    edge("numpy_int_dim", lambda L, x: x.sum(dim=np.int64(1), keepdim=True), [[1.0, 2.0], [3.0, 4.0]]),
    edge("numpy_int_dims_tuple", lambda L, x: x.mean(dim=(np.int32(0), np.int64(-1))), np.ones((2, 3, 2))),
    edge("sum_0d_dim_minus1", lambda L, x: x.sum(dim=-1), np.array(3.0)),
    edge("softmax_0d", lambda L, x: L.F.softmax(x, dim=0), np.array(3.0)),
    # transpose(dim0, dim1) is PyTorch's, not NumPy's axes permutation
    edge("transpose_2d", lambda L, x: x.transpose(0, 1), [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    # dtypes of results
    edge("cast_to_int", lambda L, x: x.to(L.int64), [1.7, -2.2], modes=FORWARD),
    edge("sum_of_bool", lambda L, x: (x > 0).sum(), [1.0, -1.0, 2.0], modes=FORWARD),
    edge("argmax_dtype", lambda L, x: x.argmax(), [1.0, 3.0, 2.0], modes=FORWARD),
    edge("bool_to_float_mean", lambda L, x: (x > 0).float().mean(), [1.0, -1.0, 2.0]),
    edge("python_scalar_keeps_float32", lambda L, x: x * 2.5 + 1, [1.0, 2.0], dtypes=("float32",)),
]


def rows():
    return EDGES
