"""The study tools of engine v2 run and say what they claim: examples/higher_order.py, examples/
forward_vs_reverse.py, benchmarks/jacobian_modes.py (tiny sweep), trace() and draw_graph on a double backward."""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import numpy as np

import minivae as mv
import minivae.functional as F
from minivae.autograd import grad, trace
from minivae.viz import graph_source

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(*args):
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_higher_order_example_agrees_with_closed_forms_and_finite_differences():
    out = _run("examples/higher_order.py")
    diffs = [float(x) for x in re.findall(r"^\s+\d\s+\S+\s+\S+\s+(\S+)\s+\d+$", out, flags=re.M)]
    assert len(diffs) == 4 and max(diffs) < 1e-12  # tanh derivatives 1-4
    assert float(re.search(r"central differences of the gradient\| = (\S+);", out).group(1)) < 1e-6
    assert float(re.search(r"max \|Hv - numeric\| = (\S+),", out).group(1)) < 1e-6
    m = re.search(r"double backward (\S+), central differences (\S+)", out)
    assert abs(float(m.group(1)) - float(m.group(2))) < 1e-6
    before, after = (float(v) for v in re.search(r"before the Adam step (\S+) nats, after (\S+) nats", out).groups())
    assert after < before
    assert "graph nodes" in out and " s\n" in out


def test_forward_vs_reverse_example():
    out = _run("examples/forward_vs_reverse.py")
    assert float(re.search(r"max difference (\S+)", out).group(1)) < 1e-12
    a, b = (float(v) for v in re.findall(r"> = (\S+) \(", out))
    assert abs(a - b) < 1e-12


def test_jacobian_benchmark_runs_and_writes_the_plot(tmp_path):
    png = tmp_path / "modes.png"
    out = _run("benchmarks/jacobian_modes.py", "--quick", "--repeats", "1", "--plot", str(png))
    rows = [line.split() for line in out.splitlines() if line.startswith(("tall", "wide", "decoder"))]
    assert len(rows) == 8
    assert all(float(r[-1]) < 1e-10 for r in rows)  # both strategies give the same Jacobian
    assert [int(r[3]) for r in rows] == [int(r[1]) for r in rows]  # forward passes = n
    assert png.stat().st_size > 10_000


def test_trace_and_draw_graph_of_a_double_backward():
    x = mv.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    w = mv.Tensor(np.array([2.0, 1.0]), requires_grad=True)
    (gx,) = grad(F.tanh(x * w).sum(), x, create_graph=True)
    penalty = (gx * gx).sum()
    src = graph_source(penalty, names={x: "x", w: "w"})
    # the recorded VJP of tanh, gy * (1 - y^2), appears as ops of the second graph
    assert "Tanh" in src and "Sub" in src and 'label="x\\n2 float64"' in src
    with trace() as t:
        penalty.backward()
    ops = [r.op for r in t.records]
    assert ops[0] == "Sum" and "Tanh" in ops and "Sub" in ops
    # d/dw of sum((w (1 - tanh(xw)^2))^2), by central differences
    def pen(wv):
        xw = x.data * wv
        return np.sum((wv * (1 - np.tanh(xw) ** 2)) ** 2)
    h = 1e-6
    numeric = [(pen(w.data + h * e) - pen(w.data - h * e)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(w.grad.data, numeric, rtol=1e-6)
