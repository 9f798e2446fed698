"""examples/backprop_walkthrough.py runs and reports agreement (and would report a wrong VJP)."""
from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "backprop_walkthrough.py"


@pytest.fixture
def walkthrough():
    spec = importlib.util.spec_from_file_location("backprop_walkthrough", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_walkthrough_reports_agreement(walkthrough, capsys):
    assert walkthrough.main() == 0
    out = capsys.readouterr().out
    for step in ("== forward ==", "== backward by minivae", "== backward by hand", "== finite differences"):
        assert step in out
    compared = [line for line in out.splitlines() if "max |hand - minivae|" in line]
    assert len(compared) == 14 and all(line.endswith("ok") for line in compared)
    assert "gradcheck passed" in out
    assert "15/15 checks agree" in out and "MISMATCH" not in out
    assert "Conv2d" in out and "ReparameterizeKL" in out  # the trace table


def test_walkthrough_notices_a_wrong_vjp(walkthrough, capsys, monkeypatch):
    from minivae.ops.activation import ReLU

    monkeypatch.setattr(ReLU, "backward", lambda self, gy: gy)  # forget relu's mask
    assert walkthrough.main() == 1
    out = capsys.readouterr().out
    assert "g_c" in out and "MISMATCH" in out and "gradcheck FAILED" in out


def test_walkthrough_runs_as_a_script():
    proc = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "checks agree: hand VJPs, minivae's backward and finite differences agree." in proc.stdout
