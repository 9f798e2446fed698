"""benchmarks/report.py in its tiny configuration: it runs, writes the README and four readable PNG figures, and
the tables it writes parse and agree with its own results (so that the report code cannot rot). No timing is
asserted: the tiny run's numbers are noise."""
from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIGURES = ("kernels.png", "roofline.png", "step_vs_batch.png", "jit.png")


def _table(lines, first_cell):
    """Header and rows (lists of cells) of the first markdown table whose header starts with ``first_cell``."""
    for i, line in enumerate(lines):
        if line.startswith(f"| {first_cell} |"):
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip("|").split("|")])
            return [c.strip() for c in line.strip("|").split("|")], rows
    raise AssertionError(f"no table starting with {first_cell!r}")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    res = subprocess.run([sys.executable, "benchmarks/report.py", "--tiny", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_report_writes_readme_and_figures(report):
    import matplotlib.image as mpimg

    text = (report / "README.md").read_text()
    for name in FIGURES:
        path = report / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300, (name, img.shape)
        assert img.std() > 0.01, f"{name} is blank"
        assert f"]({name})" in text, f"README does not show {name}"
    assert "## Machine" in text and "SGEMM peak" in text and "python benchmarks/report.py --tiny" in text


def test_report_tables_parse_and_match_results(report):
    lines = (report / "README.md").read_text().splitlines()
    res = json.loads((report / "results.json").read_text())
    head, rows = _table(lines, "batch")  # the medians table comes first
    assert head[:3] == ["batch", "rounds", "minivae ms"]
    assert [int(r[0]) for r in rows] == sorted({r["batch"] for r in res["rounds"]})
    head, rows = _table(lines[lines.index("Every round (processes in the order shown):"):], "batch")
    assert len(rows) == len(res["rounds"])
    for cells, r in zip(rows, res["rounds"]):
        got = dict(zip(head, cells))
        assert float(got["minivae ms"]) == pytest.approx(r["minivae_ms"], abs=0.051)
        peak = float(got["GEMM peak GFLOP/s"])
        assert peak == pytest.approx(r["gemm_peak_gflops"], abs=0.51)
        if got["torch ms"] != "-":  # PyTorch installed: the ratio is minivae over torch of the same round
            m, t = float(got["minivae ms"]), float(got["torch ms"])  # both rounded to 0.1 ms
            lo, hi = (m - 0.05) / (t + 0.05), (m + 0.05) / max(t - 0.05, 1e-9)
            assert lo - 0.006 <= float(got["ratio"]) <= hi + 0.006, got
        assert float(got["of peak"].rstrip("%")) == pytest.approx(100 * r["peak_fraction"], abs=0.51)
    head, rows = _table(lines, "layer")  # the kernel table
    assert {r[1] for r in rows} == set(res["config"]["kernels"])
    assert all(math.isfinite(float(r[3])) and float(r[3]) > 0 for r in rows)
    assert {"numba", "reference"} <= {r[2] for r in rows}
