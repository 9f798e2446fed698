"""Anomaly mode: a NaN made in backward names the op and the user's line of its forward; an array saved for
backward and changed in place (through ``.data`` or an alias) is named at backward time."""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae.autograd import AnomalyError, detect_anomaly


def test_nan_in_backward_names_the_op_and_the_forward_line():
    x = mv.Tensor(np.array([0.0, 1.0]), requires_grad=True)
    with detect_anomaly(), np.errstate(all="ignore"):
        y = F.log(x * 0.0 + x)  # d log / dx at 0: inf; times 0 below gives NaN
        line = __import__("inspect").currentframe().f_lineno - 1
        loss = F.sum(y * 0.0)
        with pytest.raises(AnomalyError) as info:
            loss.backward()
    msg = str(info.value)
    assert "NaN" in msg and "Log" in msg
    assert f"test_anomaly.py:{line}" in msg


def test_in_place_change_of_a_saved_array_is_named():
    x = mv.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = mv.Tensor(np.array([3.0, 4.0]), requires_grad=True)
    with detect_anomaly():
        y = (x * w).sum()
        w.data[...] = 100.0
        with pytest.raises(AnomalyError, match=r"input 1\) of Mul .* was modified in place"):
            y.backward()


def test_rebinding_data_is_caught_too():
    x = mv.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with detect_anomaly():
        y = F.log(x).sum()  # log saves its input
        x.data = np.array([5.0, 6.0])
        with pytest.raises(AnomalyError, match="replaced"):
            y.backward()


def test_a_changed_output_saved_for_backward_is_caught():
    x = mv.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with detect_anomaly():
        e = F.exp(x)
        y = e.sum()
        e.data *= 2.0
        with pytest.raises(AnomalyError, match=r"output 0\) of Exp"):
            y.backward()


def test_without_anomaly_mode_nothing_is_recorded_and_a_clean_backward_passes():
    x = mv.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = F.exp(x)
    assert not hasattr(y.grad_fn, "forward_location")
    with detect_anomaly():
        z = F.exp(x).sum()
        assert z.grad_fn is not None
        z.backward()
    np.testing.assert_allclose(x.grad.data, np.exp([1.0, 2.0]))
