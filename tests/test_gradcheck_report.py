"""One measuring routine behind gradcheck, gradgradcheck and opcheck: its report, its refusals, its warnings."""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae import Function, GradcheckError, opcheck
from minivae.autograd.gradcheck import measure

X = np.array([[0.3, -1.2, 0.7], [2.5, -0.4, 1.1]])


class WrongJVP(Function):
    """y = x^2 with a right VJP and a JVP off by a factor 1.5."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * x * 2.0

    def jvp(self, dx):
        (x,) = self.saved_tensors
        return dx * x * 3.0


def test_report_fields_and_opcheck_uses_the_same_numbers():
    r = measure(F.tanh, [X])
    assert r.passed and r.mode == "full" and r.message == "" and r.worst is None
    assert 0 < r.max_abs_error < 1e-8
    o = opcheck.check_op("tanh", [X])
    assert (o.max_abs_error, o.max_rel_error, o.passed) == (r.max_abs_error, r.max_rel_error, r.passed)


def test_wrong_jvp_is_caught_in_forward_mode_only():
    assert mv.gradcheck(WrongJVP.apply, [X])  # reverse mode is right
    with pytest.raises(GradcheckError, match=r"input 0 \(input 0\): worst element \[output 3, 1, 0\] forward=7.5 "
                                              r"numeric=5"):
        mv.gradcheck(WrongJVP.apply, [X], check_forward_ad=True)
    with pytest.raises(GradcheckError, match=r"worst element \[output 3, 1, 0\] forward=7.5"):
        mv.gradcheck(WrongJVP.apply, [X], check_forward_ad=True, fast_mode=True)  # falls back to name the element
    r = opcheck.check_op(WrongJVP, [X], forward_ad=True)
    assert not r.passed and "d out[3] / d x[1, 0]" in r.message


def test_float32_inputs_warn_as_pytorch_does():
    with pytest.warns(UserWarning, match="input 0 is float32, not float64"):
        mv.gradcheck(F.tanh, [X.astype(np.float32)])


@pytest.mark.parametrize("kwargs, message", [
    ({"eps": 0.0}, "eps must be > 0, got 0.0"), ({"eps": -1e-6}, "eps must be > 0"),
    ({"atol": -1.0}, "atol and rtol must be >= 0"), ({"rtol": -0.1}, "atol and rtol must be >= 0"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mv.gradcheck(F.tanh, [X], **kwargs)
    with pytest.raises(ValueError, match=message):
        mv.gradgradcheck(F.tanh, [X], **kwargs)


def test_nan_is_named_as_the_cause_not_reentrancy():
    with np.errstate(invalid="ignore"):
        with pytest.raises(GradcheckError, match="NaN in the inputs or outputs"):
            mv.gradcheck(F.log, [np.array([-1.0, 2.0])])
        with pytest.raises(GradcheckError, match="NaN in the inputs or outputs"):
            mv.gradcheck(F.tanh, [np.array([np.nan, 2.0])])


def test_gradgradcheck_checks_grad_outputs_given_by_the_caller():
    v = np.array([[1.0, 0.5, -1.0], [0.2, 0.3, 2.0]])
    assert mv.gradgradcheck(F.tanh, [X], grad_outputs=[v])
    assert mv.gradgradcheck(F.tanh, [X], grad_outputs=[mv.Tensor(v)])  # a Tensor without grad: held fixed
    with pytest.raises(ValueError, match="got 2 grad_outputs for 1 outputs"):
        mv.gradgradcheck(F.tanh, [X], grad_outputs=[v, v])
    r = mv.gradgradcheck(F.tanh, [X], fast_mode=True, report=True)
    assert r.passed and r.mode == "fast"
