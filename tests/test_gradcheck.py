"""gradcheck itself: it must catch a wrong backward, and say where (input, worst element, both values)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import minivae as mv
from minivae import Function, GradcheckError

WORST = re.compile(r"gradcheck failed for input (\d+) \((.*?)\): worst element \[([^\]]*)\] "
                   r"analytic=(\S+) numeric=(\S+)")


def parse(message):
    m = WORST.search(message)
    assert m, f"unexpected gradcheck message: {message}"
    idx, name, where, analytic, numeric = m.groups()
    return int(idx), name, where, float(analytic), float(numeric)


class Square(Function):
    """Correct: y = x**2, gx = 2 gy x."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, gy):
        (x,) = self.saved
        return 2 * gy * x


class SquareWrongFactor(Square):
    def backward(self, gy):
        (x,) = self.saved
        return 3 * gy * x  # should be 2


class MatVecWrongTranspose(Function):
    """y = W @ x with a transposed index in backward: gx = W @ gy instead of W.T @ gy."""

    def forward(self, w, x):
        self.save_for_backward(w, x)
        return w @ x

    def backward(self, gy):
        w, x = self.saved
        return np.outer(gy.data, x), w @ gy.data  # second should be w.T @ gy


class ScaleSecondWrong(Function):
    """y = a * b; a's gradient right, b's wrong (off by the sign)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, gy):
        a, b = self.saved
        return gy * b, -gy * a


class NoisyBackward(Square):
    def backward(self, gy):
        (x,) = self.saved
        return 2 * gy * x + np.random.default_rng().standard_normal(x.shape) * 1e-3


X = np.array([[0.3, -1.2, 0.7], [2.5, -0.4, 1.1]])  # largest |x| at [1, 0]


def test_correct_custom_function_passes():
    assert mv.gradcheck(Square.apply, [X])
    assert mv.gradcheck(Square.apply, [X], fast_mode=True)


def test_wrong_factor_is_caught_and_the_worst_element_named():
    with pytest.raises(GradcheckError) as info:
        mv.gradcheck(SquareWrongFactor.apply, [X])
    idx, name, where, analytic, numeric = parse(str(info.value))
    assert idx == 0 and name == "input 0"
    # full mode indexes the Jacobian: [output row, input index...]; the worst error is on the diagonal
    # at the largest |x| (flat output 3, input [1, 0]), where analytic = 3x and numeric = 2x
    assert where == "output 3, 1, 0"
    assert analytic == pytest.approx(3 * 2.5, rel=1e-6)
    assert numeric == pytest.approx(2 * 2.5, rel=1e-6)


def test_gradcheck_error_is_an_assertion_error():
    assert issubclass(GradcheckError, AssertionError)
    with pytest.raises(AssertionError):
        mv.gradcheck(SquareWrongFactor.apply, [X])


def test_wrong_factor_caught_in_fast_mode():
    with pytest.raises(GradcheckError) as info:
        mv.gradcheck(SquareWrongFactor.apply, [X], fast_mode=True)
    idx, name, where, analytic, numeric = parse(str(info.value))
    assert idx == 0
    # a failed projection falls back to the full Jacobian to name the worst element: as full mode does
    assert where == "output 3, 1, 0"
    assert analytic == pytest.approx(1.5 * numeric, rel=1e-4)


def test_transposed_index_is_caught():
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((3, 3)), rng.standard_normal(3)
    for fast in (False, True):
        with pytest.raises(GradcheckError) as info:
            mv.gradcheck(MatVecWrongTranspose.apply, [w, x], fast_mode=fast)
        idx, _, _, analytic, numeric = parse(str(info.value))
        assert idx == 1  # the weight gradient is right; the input gradient is not
        assert analytic != pytest.approx(numeric, abs=1e-3)


def test_only_the_wrong_input_is_named_and_custom_names_used():
    a, b = np.array([1.0, 2.0]), np.array([3.0, -4.0])
    with pytest.raises(GradcheckError) as info:
        mv.gradcheck(ScaleSecondWrong.apply, [a, b], names=["a", "b"])
    idx, name, where, analytic, numeric = parse(str(info.value))
    assert (idx, name) == (1, "b")
    assert analytic == pytest.approx(-numeric, rel=1e-6)
    # held fixed, the wrong input is not checked and the check passes
    assert mv.gradcheck(ScaleSecondWrong.apply, [a, mv.Tensor(b)])


def test_raise_exception_false_returns_false():
    assert mv.gradcheck(SquareWrongFactor.apply, [X], raise_exception=False) is False
    assert mv.gradcheck(SquareWrongFactor.apply, [X], fast_mode=True, raise_exception=False) is False
    assert mv.gradcheck(Square.apply, [X], raise_exception=False) is True


def test_non_reentrant_backward_is_reported():
    with pytest.raises(GradcheckError, match="not reentrant"):
        mv.gradcheck(NoisyBackward.apply, [X])


def test_small_errors_within_tolerance_pass_and_tolerance_is_respected():
    class SlightlyOff(Square):
        def backward(self, gy):
            (x,) = self.saved
            return 2 * gy * x * (1 + 1e-4)

    assert mv.gradcheck(SlightlyOff.apply, [X], rtol=1e-3)
    with pytest.raises(GradcheckError):
        mv.gradcheck(SlightlyOff.apply, [X], atol=1e-8, rtol=1e-6)


def test_nothing_to_check_raises():
    with pytest.raises(ValueError, match="nothing to check"):
        mv.gradcheck(Square.apply, [mv.Tensor(X)])
    with pytest.raises(ValueError, match="nothing to check"):
        mv.gradcheck(lambda i: mv.Tensor(i.data * 1.0), [np.array([1, 2])])


def test_gradcheck_does_not_modify_the_callers_arrays():
    x = X.copy()
    mv.gradcheck(Square.apply, [x])
    np.testing.assert_array_equal(x, X)
