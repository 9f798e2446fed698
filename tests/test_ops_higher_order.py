"""Second-order (gradgradcheck) and forward-mode (JVP) checks of every op in ``minivae.functional``, in float64
against central differences, on the same cases as ``test_ops_gradcheck.py`` (full Jacobians), and the conv ops
over the same stride / padding / output_padding grid (smaller shapes: the full Jacobian of a gradient is big).

``test_every_op_has_a_second_order_and_a_forward_case`` fails when an op is added to ``functional`` without
cases here; ``test_every_function_has_a_jvp_rule`` when a Function subclass in ``minivae.ops`` lacks a JVP.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae.autograd.function import Function
from test_ops_gradcheck import CASES, CONV_OPS, NOT_DIFFERENTIABLE, SHORT

R = np.random.default_rng(4321)


def randn(*shape):
    return R.standard_normal(shape)


def test_every_op_has_a_second_order_and_a_forward_case():
    covered = {name for name, _, _ in CASES}
    missing = [op for op in F.__all__ if op not in CONV_OPS | NOT_DIFFERENTIABLE and not any(
        c == SHORT.get(op, op) or c.startswith(SHORT.get(op, op) + "_") for c in covered)]
    assert not missing, f"functional ops without a second-order / forward-mode case: {missing}"
    assert CONV_OPS <= {"conv2d", "conv_transpose2d"} and CONV_OPS <= set(F.__all__)


def _functions():
    import minivae.ops as ops_pkg
    import pkgutil
    import importlib

    found = set()
    for info in pkgutil.iter_modules(ops_pkg.__path__):
        mod = importlib.import_module(f"minivae.ops.{info.name}")
        for _, obj in inspect.getmembers(mod, inspect.isclass):
            if issubclass(obj, Function) and obj is not Function and obj.__module__.startswith("minivae.ops"):
                found.add(obj)
    return sorted(found, key=lambda c: c.__name__)


def test_every_function_has_a_jvp_rule():
    classes = _functions()
    assert len(classes) >= 25
    missing = [c.__name__ for c in classes if c.jvp is Function.jvp]
    assert not missing, f"ops without a forward-mode (JVP) rule: {missing}"
    undocumented = [c.__name__ for c in classes if "JVP" not in (c.__doc__ or "") and "jvp" not in (c.__doc__ or "")]
    assert not undocumented, f"ops whose docstring does not give the JVP: {undocumented}"


@pytest.mark.parametrize("name, fn, inputs", CASES, ids=[c[0] for c in CASES])
def test_gradgradcheck_full(name, fn, inputs):
    assert mv.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("name, fn, inputs", CASES, ids=[c[0] for c in CASES])
def test_forward_mode_full(name, fn, inputs):
    """Every JVP column against central differences (and the VJP rows too: both must match the same numbers)."""
    assert mv.gradcheck(fn, inputs, check_forward_ad=True)


@pytest.mark.parametrize("name", ["sigmoid", "matmul", "linear_bias", "bce_sum", "reparameterize_kl", "div",
                                  "getitem_int_array_repeats", "split_list"])
def test_forward_reverse_adjoint_identity_fast(name):
    _, fn, inputs = next(c for c in CASES if c[0] == name)
    assert mv.gradcheck(fn, inputs, check_forward_ad=True, fast_mode=True, n_directions=3)


# --------------------------------------------------------------------------- conv grids, second order and JVP
CONV_GRID2 = [(1, 2, 2, 4, 5, 3, 2), (2, 1, 2, 4, 4, 2, 2)]  # (N, C_in, C_out, H, W, kH, kW)


@pytest.mark.parametrize("shape", CONV_GRID2, ids=lambda s: "N{}Ci{}Co{}_{}x{}_k{}x{}".format(*s))
@pytest.mark.parametrize("stride", [1, 2, (2, 1)])
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_conv2d_second_order_and_forward(shape, stride, padding, bias):
    n, ci, co, h, w, kh, kw = shape
    inputs = [randn(n, ci, h, w), randn(co, ci, kh, kw)] + ([randn(co)] if bias else [])

    def fn(*args):
        return F.conv2d(args[0], args[1], args[2] if bias else None, stride=stride, padding=padding)

    assert mv.gradgradcheck(fn, inputs)
    assert mv.gradcheck(fn, inputs, check_forward_ad=True)


@pytest.mark.parametrize("shape", CONV_GRID2, ids=lambda s: "N{}Ci{}Co{}_{}x{}_k{}x{}".format(*s))
@pytest.mark.parametrize("stride, output_padding", [(1, 0), (2, 0), (2, 1), ((2, 1), (1, 0))])
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_conv_transpose2d_second_order_and_forward(shape, stride, output_padding, padding, bias):
    n, ci, co, h, w, kh, kw = shape
    h, w = max(h - 2, 2), max(w - 2, 2)
    inputs = [randn(n, ci, h, w), randn(ci, co, kh, kw)] + ([randn(co)] if bias else [])

    def fn(*args):
        return F.conv_transpose2d(args[0], args[1], args[2] if bias else None, stride=stride, padding=padding,
                                  output_padding=output_padding)

    assert mv.gradgradcheck(fn, inputs)
    assert mv.gradcheck(fn, inputs, check_forward_ad=True)


def test_third_order_through_a_conv_and_a_nonlinearity():
    """The graph of a double backward is differentiated once more (gradgradcheck of a gradient)."""
    x, w = randn(1, 1, 4, 4), randn(2, 1, 2, 2)

    def grad_fn(x, w):
        y = F.tanh(F.conv2d(x, w, stride=2)).sum()
        return mv.autograd.grad(y, [x, w], create_graph=True)

    assert mv.gradgradcheck(grad_fn, [x, w])


def test_gradgradcheck_catches_a_wrong_second_derivative():
    class CubeConstGrad(Function):
        """y = x^3 with a VJP that treats 3x^2 as a constant (first order right, second order wrong). JVP too."""

        def forward(self, x):
            self.save_for_backward(x)
            return x ** 3

        def backward(self, gy):
            (x,) = self.saved
            return gy * mv.Tensor(3 * x ** 2)

        def jvp(self, dx):
            (x,) = self.saved
            return dx * mv.Tensor(3 * x ** 2)

    x = randn(3)
    assert mv.gradcheck(CubeConstGrad.apply, [x])
    with pytest.raises(mv.GradcheckError, match=r"gradgradcheck failed for input 0 \(input 0\): worst element"):
        mv.gradgradcheck(CubeConstGrad.apply, [x])
