"""The backward trace: one record per VJP, in execution order, with shapes, dtypes and gradient norms."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae.autograd.trace import Trace, TraceRecord, active, trace


def _leaf(rng, *shape, dtype=np.float64, grad=True):
    return mv.Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=grad)


def test_records_follow_execution_order_with_shapes_dtype_and_norms(rng):
    x = _leaf(rng, 3, 4)
    y = F.exp(x * 2.0)
    loss = F.sum(y)
    with trace() as t:
        loss.backward()
    assert [r.op for r in t.records] == ["Sum", "Exp", "Mul"]
    assert [r.index for r in t.records] == [0, 1, 2]
    s, e, m = t.records
    assert all(isinstance(r, TraceRecord) for r in t.records)
    assert s.input_shapes == ((3, 4),) and s.output_shapes == ((),)
    assert m.input_shapes == ((3, 4), ()) and m.output_shapes == ((3, 4),)
    assert {r.dtype for r in t.records} == {"float64"}
    # Sum: output gradient 1, input gradient ones(3, 4) of norm sqrt(12)
    assert s.grad_output_norms == (1.0,)
    assert s.grad_input_norms[0] == pytest.approx(math.sqrt(12))
    # Exp: gx = gy * exp(2x); Mul: gx = 2 exp(2x); the constant 2.0 gets no gradient
    expected = np.linalg.norm(np.exp(2 * x.data))
    assert e.grad_input_norms[0] == pytest.approx(expected)
    assert m.grad_output_norms[0] == pytest.approx(expected)
    assert m.grad_input_norms[0] == pytest.approx(2 * expected)
    assert m.grad_input_norms[1] is None
    assert np.allclose(x.grad.data, 2 * np.exp(2 * x.data))


def test_float32_graph_reports_float32(rng):
    x = _leaf(rng, 2, 3, dtype=np.float32)
    with trace() as t:
        F.sum(F.tanh(x)).backward()
    assert [r.dtype for r in t.records] == ["float32", "float32"]


def test_seconds_are_recorded_and_total_is_their_sum(rng):
    x = _leaf(rng, 4, 4)
    with trace() as t:
        F.sum(F.relu(x) * x).backward()
    assert len(t) == 3
    assert all(isinstance(r.seconds, float) and r.seconds >= 0.0 for r in t.records)
    assert t.total_seconds == pytest.approx(math.fsum(r.seconds for r in t.records))


def test_tracing_does_not_change_gradients(rng):
    xs = rng.standard_normal((2, 5))
    grads = []
    for traced in (False, True):
        x = mv.Tensor(xs.copy(), requires_grad=True)
        loss = F.sum(F.sigmoid(x) * F.softplus(x))
        if traced:
            with trace():
                loss.backward()
        else:
            loss.backward()
        grads.append(x.grad.data)
    assert np.array_equal(grads[0], grads[1])


def test_no_recording_outside_the_block_and_active_is_reset(rng):
    assert active() is None
    x = _leaf(rng, 3)
    with trace() as t:
        assert active() is t
        F.sum(x * x).backward()
    assert active() is None
    n = len(t.records)
    F.sum(x * x).backward()
    assert len(t.records) == n == 2


def test_nested_traces_record_in_the_innermost_only(rng):
    x = _leaf(rng, 3)
    with trace() as outer:
        F.sum(x).backward()
        with trace() as inner:
            F.sum(F.exp(x)).backward()
        F.sum(x * x).backward()
    assert [r.op for r in inner.records] == ["Sum", "Exp"]
    assert [r.op for r in outer.records] == ["Sum", "Sum", "Mul"]


def test_trace_is_closed_when_backward_raises(rng):
    x = _leaf(rng, 3)
    loss = F.sum(x * x)
    loss.backward()
    with pytest.raises(RuntimeError, match="second time"):
        with trace():
            loss.backward()  # the graph was freed
    assert active() is None


def test_multi_output_op_reports_one_norm_per_output(rng):
    x = _leaf(rng, 4, 3)
    a, b = F.split(x, 2, axis=0)
    loss = F.sum(a * 3.0)  # b gets no gradient: zeros are fed to Split's VJP
    with trace() as t:
        loss.backward()
    split = [r for r in t.records if r.op == "Split"][0]
    assert split.output_shapes == ((2, 3), (2, 3))
    assert split.grad_output_norms[0] == pytest.approx(3.0 * math.sqrt(6))
    assert split.grad_output_norms[1] == 0.0


def test_conv_linear_reparameterize_kl_graph_order_and_table(rng):
    x = _leaf(rng, 1, 1, 5, 5)
    w, b = _leaf(rng, 2, 1, 3, 3), _leaf(rng, 2)
    w_mu, w_lv = _leaf(rng, 2, 18), _leaf(rng, 2, 18)
    eps = mv.Tensor(rng.standard_normal((1, 2)))
    h = F.reshape(F.relu(F.conv2d(x, w, b)), (1, 18))
    z, kl = F.reparameterize_kl(F.linear(h, w_mu), F.linear(h, w_lv), eps)
    loss = F.sum(z * z) + F.sum(kl)
    with trace() as t:
        loss.backward()
    ops = [r.op for r in t.records]
    assert ops.index("ReparameterizeKL") < ops.index("Linear") < ops.index("ReLU") < ops.index("Conv2d")
    assert ops.count("Linear") == 2
    reparam = t.records[ops.index("ReparameterizeKL")]
    assert reparam.output_shapes == ((1, 2), (1,))
    assert reparam.grad_input_norms[2] is None  # eps is held fixed
    conv = t.records[ops.index("Conv2d")]
    assert conv.input_shapes == ((1, 1, 5, 5), (2, 1, 3, 3), (2,))
    assert conv.grad_input_norms == pytest.approx(
        (np.linalg.norm(x.grad.data), np.linalg.norm(w.grad.data), np.linalg.norm(b.grad.data)))
    table = t.table()
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["#", "op"] and "time [us]" in lines[0]
    assert len(lines) == 2 + len(t.records) + 1
    assert "Conv2d" in table and "1x1x5x5, 2x1x3x3, 2" in table
    assert lines[-1].startswith(f"{len(t.records)} VJPs, total")
    assert str(t) == table


def test_table_of_an_empty_trace():
    t = Trace()
    assert t.records == [] and t.total_seconds == 0.0
    assert t.table().splitlines()[-1].startswith("0 VJPs")
