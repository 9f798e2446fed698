"""The kernel-layer features of the compiled step (issue 24), on every kernel set that has them: ``out=`` (the
result written into a given array, which is returned, with the bits of the call without it; a wrong array raises
ValueError), the fused ReLU epilogue ``relu=True`` (the bits of ``relu_forward`` of the unfused result, NaN
included), ReLU's mask read by the following backward (``relu_output=``), and Adam over all parameters in one
call (:func:`minivae.kernels._cpu_adam.adam_step_flat`, the bits of ``adam_step`` per parameter).

"gpu" is the numba-cuda set under the CUDA simulator (the conftest switches it on; tiny sizes: each thread runs
as Python); it is skipped on a machine with neither the simulator nor a GPU. No timings.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from minivae.kernels import _cpu_adam, gpu
from minivae.kernels import cpu as numba_cpu
from minivae.kernels import reference as ref

DTYPES = [np.float32, np.float64]
SETS = {"reference": ref, "numba": numba_cpu, "gpu": gpu}
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NaN inputs, NumPy

IMPLS = ["reference", "numba", pytest.param("gpu", marks=pytest.mark.skipif(
    not gpu.simulated(), reason="the GPU kernels run here under the CUDA simulator only (NUMBA_ENABLE_CUDASIM=1)"))]

# N, C_in, C_out, H, W, (kH, kW), stride, padding, bias: batch 1, odd sizes, folded (L < 64) and per-example paths,
# and C_out*kH*kW >= 32 (the transposed convolution's shared-im2col backward)
CONV = [
    (1, 1, 3, 5, 5, (3, 3), (1, 1), (1, 1), True),
    (5, 3, 4, 7, 6, (3, 3), (2, 2), (1, 1), False),
    (3, 4, 6, 11, 9, (4, 4), (1, 2), (1, 0), True),
    (4, 2, 3, 12, 12, (3, 3), (1, 1), (1, 1), True),
]
GPU_CONV = [(1, 1, 2, 4, 4, (3, 3), (1, 1), (1, 1), True), (2, 2, 2, 5, 4, (2, 2), (2, 1), (0, 1), False)]
DENSE = [(1, 3, 2, True), (5, 7, 4, False), (4, 33, 17, True)]


def _impl_case_pairs():
    """(kernel set, case index) pairs: every CONV case on the CPU sets, the small GPU_CONV ones on the simulator."""
    pairs = []
    for impl in IMPLS:
        name = impl if isinstance(impl, str) else impl.values[0]
        marks = () if isinstance(impl, str) else impl.marks
        for ci in range(len(GPU_CONV if name == "gpu" else CONV)):
            pairs.append(pytest.param(name, ci, marks=marks, id=f"{name}-{ci}"))
    return pairs


def _cases(impl, cases, small):
    return small if impl == "gpu" else cases


def assert_same_bits(a, b):
    """Equal shapes, dtypes and bytes (stricter than array_equal: -0.0 vs 0.0 and NaN payloads count)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    assert a.tobytes() == b.tobytes(), f"max |diff| {np.nanmax(np.abs(a.astype(float) - b.astype(float)))}"


def _inputs(case, dtype, transposed=False, nan=False, seed=0):
    n, c_in, c_out, h, w, k, stride, padding, has_bias = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w)).astype(dtype)
    wshape = (c_in, c_out) + k if transposed else (c_out, c_in) + k
    weight = rng.standard_normal(wshape).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype) if has_bias else None
    if nan:
        x[0, 0, 0, 0] = np.nan
        x[-1, -1, -1, -1] = np.inf
    return x, weight, bias, stride, padding


def _out_like(a):
    return np.full(np.shape(a), 7.0, dtype=np.asarray(a).dtype)  # garbage that must be overwritten


def _check_out_and_relu(mod, name, args, nan):
    """``out=`` and ``relu=`` of a forward kernel against the plain call and ``relu_forward`` of it."""
    fn = getattr(mod, name)
    plain = fn(*args)
    out = _out_like(plain)
    got = fn(*args, out=out)
    assert got is out
    assert_same_bits(out, plain)
    expected = mod.relu_forward(plain)
    fused = fn(*args, relu=True)
    assert_same_bits(fused, expected)
    assert plain.flags.c_contiguous and fused.flags.c_contiguous
    out = _out_like(plain)
    assert fn(*args, relu=True, out=out) is out
    assert_same_bits(out, expected)
    if nan:
        assert np.isnan(plain).any() and np.isnan(expected).any()


@pytest.mark.parametrize("impl, ci", _impl_case_pairs())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nan", [False, True])
def test_conv_forward_out_and_relu_epilogue(impl, dtype, nan, ci):
    cases = _cases(impl, CONV, GPU_CONV)
    mod = SETS[impl]
    x, weight, bias, stride, padding = _inputs(cases[ci], dtype, nan=nan)
    _check_out_and_relu(mod, "conv2d_forward", (x, weight, bias, stride, padding), nan)
    xt, wt, bt, _, _ = _inputs(cases[ci], dtype, transposed=True, nan=nan, seed=1)
    op = (stride[0] - 1, 0)  # an output padding below the stride
    _check_out_and_relu(mod, "conv_transpose2d_forward", (xt, wt, bt, stride, padding, op), nan)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize("case", DENSE)
def test_dense_forward_out_and_relu_epilogue(impl, dtype, nan, case):
    n, d_in, d_out, has_bias = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, d_in)).astype(dtype)
    if nan:
        x[0, 0] = np.nan
    weight = rng.standard_normal((d_out, d_in)).astype(dtype)
    bias = rng.standard_normal(d_out).astype(dtype) if has_bias else None
    _check_out_and_relu(SETS[impl], "dense_forward", (x, weight, bias), nan)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (3, 5), (2, 3, 4, 5), ()])
def test_relu_out_and_in_place(impl, dtype, shape):
    mod = SETS[impl]
    rng = np.random.default_rng(3)
    x = np.asarray(rng.standard_normal(shape)).astype(dtype)
    g = np.asarray(rng.standard_normal(shape)).astype(dtype)
    if x.size > 1:
        x.reshape(-1)[:2] = (np.nan, -0.0)
        g.reshape(-1)[-1] = np.nan
    y = mod.relu_forward(x)
    gx = mod.relu_backward(g, y)
    out = _out_like(y)
    assert mod.relu_forward(x, out=out) is out
    assert_same_bits(out, y)
    x2 = x.copy()
    assert mod.relu_forward(x2, out=x2) is x2
    assert_same_bits(x2, y)
    out = _out_like(gx)
    assert mod.relu_backward(g, y, out=out) is out
    assert_same_bits(out, gx)
    g2 = g.copy()
    assert mod.relu_backward(g2, y, out=g2) is g2  # in place, aliasing the gradient
    assert_same_bits(g2, gx)


@pytest.mark.parametrize("impl, ci", _impl_case_pairs())
@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_kernels_out(impl, dtype, ci):
    cases = _cases(impl, CONV, GPU_CONV)
    mod = SETS[impl]
    x, weight, bias, stride, padding = _inputs(cases[ci], dtype)
    y = mod.conv2d_forward(x, weight, bias, stride, padding)
    gy = np.random.default_rng(4).standard_normal(y.shape).astype(dtype)
    k = weight.shape[2:]
    for name, args in (("conv2d_backward_bias", (gy,)), ("conv2d_backward_weight", (gy, x, k, stride, padding))):
        plain = getattr(mod, name)(*args)
        out = _out_like(plain)
        assert getattr(mod, name)(*args, out=out) is out
        assert_same_bits(out, plain)
    # a transposed convolution with conv2d's weight: its output gradient has x's shape, its input gy's
    gx, gw = mod.conv_transpose2d_backward(x, gy, weight, stride, padding)
    for want in ((True, True), (True, False), (False, True)):
        outs = tuple(_out_like(a) if w else None for a, w in zip((gx, gw), want))
        got = mod.conv_transpose2d_backward(x, gy, weight, stride, padding, out=outs)
        for g, o, plain in zip(got, outs, (gx, gw)):
            if o is not None:
                assert g is o
            assert_same_bits(g, plain)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_output_mask_in_the_following_backward(impl, dtype):
    mod = SETS[impl]
    if "relu_output" not in inspect.signature(mod.conv_transpose2d_backward).parameters:
        pytest.skip("no relu_output= on this kernel set")
    case = _cases(impl, CONV, GPU_CONV)[-1]
    x, weight, _, stride, padding = _inputs(case, dtype, transposed=True)
    rng = np.random.default_rng(5)
    y = mod.conv_transpose2d_forward(x, weight, None, stride, padding, (0, 0))
    relu_y = mod.relu_forward(y - np.asarray(0.3, dtype))
    relu_y.reshape(-1)[0] = np.nan
    gy = rng.standard_normal(y.shape).astype(dtype)
    expected = mod.conv_transpose2d_backward(mod.relu_backward(gy, relu_y), x, weight, stride, padding)
    got = mod.conv_transpose2d_backward(gy, x, weight, stride, padding, relu_output=relu_y)
    for a, b in zip(got, expected):
        assert_same_bits(a, b)
    xd = rng.standard_normal((3, 5)).astype(dtype)
    wd = rng.standard_normal((4, 5)).astype(dtype)
    yd = mod.relu_forward(mod.dense_forward(xd, wd, None))
    gd = rng.standard_normal(yd.shape).astype(dtype)
    expected = mod.dense_backward(mod.relu_backward(gd, yd), xd, wd)
    for a, b in zip(mod.dense_backward(gd, xd, wd, relu_output=yd), expected):
        assert_same_bits(a, b)


def _wrong_outs(shape, dtype):
    other = np.float64 if dtype == np.float32 else np.float32
    wrong = [np.empty(shape, dtype=other), np.empty(tuple(shape) + (1,), dtype=dtype)]
    if len(shape) >= 2 and shape[0] > 1 and shape[-1] > 1:
        wrong.append(np.empty(shape, dtype=dtype, order="F"))
    ro = np.empty(shape, dtype=dtype)
    ro.flags.writeable = False
    wrong.append(ro)
    return wrong


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_wrong_out_raises_value_error_naming_the_expected_array(impl, dtype):
    mod = SETS[impl]
    x, weight, bias, stride, padding = _inputs(_cases(impl, CONV, GPU_CONV)[-1], dtype)
    y = mod.conv2d_forward(x, weight, bias, stride, padding)
    gy = np.ones_like(y)
    xd, wd = np.ones((3, 5), dtype), np.ones((4, 5), dtype)
    calls = [
        (lambda o: mod.conv2d_forward(x, weight, bias, stride, padding, out=o), y.shape),
        (lambda o: mod.conv2d_forward(x, weight, bias, stride, padding, out=o, relu=True), y.shape),
        (lambda o: mod.conv_transpose2d_forward(gy, weight, None, stride, padding, (0, 0), out=o), None),
        (lambda o: mod.conv2d_backward_bias(gy, out=o), (y.shape[1],)),
        (lambda o: mod.conv2d_backward_weight(gy, x, weight.shape[2:], stride, padding, out=o), weight.shape),
        (lambda o: mod.conv_transpose2d_backward(x, gy, weight, stride, padding, out=(o, None)), gy.shape),
        (lambda o: mod.conv_transpose2d_backward(x, gy, weight, stride, padding, out=(None, o)), weight.shape),
        (lambda o: mod.dense_forward(xd, wd, None, out=o), (3, 4)),
        (lambda o: mod.dense_forward(xd, wd, wd[:, 0], out=o, relu=True), (3, 4)),
        (lambda o: mod.relu_forward(y, out=o), y.shape),
        (lambda o: mod.relu_backward(gy, y, out=o), y.shape),
    ]
    for call, shape in calls:
        if shape is None:
            shape = call(None).shape
        for bad in _wrong_outs(shape, dtype):
            with pytest.raises(ValueError, match=rf"out=.*shape \({shape[0]},"):
                call(bad)
    with pytest.raises(ValueError, match="pair"):
        mod.conv_transpose2d_backward(x, gy, weight, stride, padding, out=np.empty(3))


# --------------------------------------------------------------------------- Adam over all parameters in one call


def _params(dtype, sizes, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in sizes]


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_step_flat_has_the_bits_of_adam_step_per_parameter(dtype):
    shapes = [(3, 4), (7,), (1,), (2, 3, 5), (0,), (33,)]
    sizes = [int(np.prod(s)) for s in shapes]
    lo = np.cumsum([0] + sizes[:-1])
    segments = np.stack([lo, lo + sizes], axis=1).astype(np.int64)
    params = _params(dtype, shapes, 0)
    flat_p = np.concatenate([p.reshape(-1) for p in params])
    flat_m, flat_v = np.zeros_like(flat_p), np.zeros_like(flat_p)
    ms, vs = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    steps = np.zeros(len(shapes), dtype=np.int64)
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8
    for it in range(6):
        grads = _params(dtype, shapes, 10 + it)
        live = [k for k in range(len(shapes)) if not (k == 2 and it < 3)]  # parameter 2 starts late: t differs
        for k in live:
            steps[k] += 1
            _cpu_adam.adam_step(params[k], grads[k], ms[k], vs[k], lr, b1, b2, eps, int(steps[k]))
        flat_g = np.concatenate([g.reshape(-1) for g in grads])
        _cpu_adam.adam_step_flat(flat_p, flat_g, flat_m, flat_v, segments[live], lr, b1, b2, eps, steps[live])
        for k in range(len(shapes)):
            a, b = segments[k]
            assert_same_bits(flat_p[a:b], params[k].reshape(-1))
            assert_same_bits(flat_m[a:b], ms[k].reshape(-1))
            assert_same_bits(flat_v[a:b], vs[k].reshape(-1))


def test_adam_step_flat_rejects_bad_arguments():
    p = np.zeros(6, np.float32)
    seg = np.array([[0, 3], [3, 6]], np.int64)
    steps = np.array([1, 1], np.int64)
    args = (1e-3, 0.9, 0.999, 1e-8)
    with pytest.raises(ValueError, match="float32/float64"):
        _cpu_adam.adam_step_flat(p, p.astype(np.float64), p.copy(), p.copy(), seg, *args, steps)
    with pytest.raises(ValueError, match="segments"):
        _cpu_adam.adam_step_flat(p, p.copy(), p.copy(), p.copy(), seg + 1, *args, steps)
    with pytest.raises(ValueError, match="steps"):
        _cpu_adam.adam_step_flat(p, p.copy(), p.copy(), p.copy(), seg, *args, steps[:1])
    with pytest.raises(ValueError, match="steps"):
        _cpu_adam.adam_step_flat(p, p.copy(), p.copy(), p.copy(), seg, *args, steps * 0)


# --------------------------------------------------------------------------- one contract on every set

KEYWORDS = {
    "conv2d_forward": {"out", "relu"}, "conv_transpose2d_forward": {"out", "relu"}, "dense_forward": {"out", "relu"},
    "relu_forward": {"out"}, "relu_backward": {"out"}, "conv2d_backward_bias": {"out"},
    "conv2d_backward_weight": {"out"}, "conv_transpose2d_backward": {"out", "relu_output"},
    "dense_backward": {"relu_output"},
}


@pytest.mark.parametrize("impl", ["reference", "numba", "gpu", "cupy"])
def test_every_kernel_set_takes_the_same_keyword_only_arguments_with_neutral_defaults(impl):
    from minivae.kernels import cublas

    mod = {**SETS, "cupy": cublas}[impl]
    for name, expected in KEYWORDS.items():
        params = inspect.signature(getattr(mod, name)).parameters.values()
        kw = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
        assert set(kw) == expected, (impl, name, kw)
        assert all(d in (None, False) for d in kw.values()), (impl, name, kw)
