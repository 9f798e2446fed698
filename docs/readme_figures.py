"""Regenerate the figures of the README and of the site's landing page, in docs/images.

    python docs/readme_figures.py                   # the graph of the README's example
    python docs/readme_figures.py --run runs/demo   # also the two figures of a `make demo` run

The graph: the README's Python example is run in a temporary folder and the graph it recorded is drawn to
``readme_graph.png``, its DOT text kept beside it (``readme_graph.dot``): ``tests/test_readme.py`` fails
when the example's graph no longer matches that text (the picture is then stale). With ``--run``: ``minivae
plot RUN`` draws the run's figures, ``reconstructions.png`` and ``manifold.png`` are copied to
``demo_reconstructions.png`` and ``demo_manifold.png``, and the run's settings and final test ELBO go to
``demo_run.json``, which the test compares with the number the README quotes.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
IMAGES = DOCS / "images"


def readme_example() -> str:
    """The first ```python block of README.md."""
    return re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)


def run_readme_example() -> tuple[str, dict]:
    """Run the README's example in a temporary folder: (what it printed, its variables)."""
    code = readme_example()
    namespace: dict = {}
    out = io.StringIO()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, str(ROOT / "README.md"), "exec"), namespace)
        finally:
            os.chdir(cwd)
    return out.getvalue(), namespace


def graph_source(namespace: dict) -> str:
    """The DOT text of the example's graph, drawn as the README's last line draws it."""
    from minivae.viz import draw_graph

    ns = namespace
    return draw_graph(ns["loss"], format="dot", names={ns["x"]: "x", ns["W"]: "W", ns["b"]: "b", ns["t"]: "t"},
                      use_graphviz=True).source


def write_graph() -> None:
    from minivae.viz import draw_graph

    _, ns = run_readme_example()
    drawing = draw_graph(ns["loss"], IMAGES / "readme_graph.png", names={ns["x"]: "x", ns["W"]: "W", ns["b"]: "b", ns["t"]: "t"})
    (IMAGES / "readme_graph.dot").write_text(graph_source(ns))
    print(f"wrote {drawing.path} and {IMAGES / 'readme_graph.dot'}")


def write_demo(run: Path) -> None:
    from minivae.cli import main

    metrics = json.loads((run / "metrics.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        if main(["plot", str(run), "--out", tmp]) != 0:
            raise SystemExit(f"minivae plot {run} failed")
        for name in ("reconstructions", "manifold"):
            shutil.copyfile(Path(tmp) / f"{name}.png", IMAGES / f"demo_{name}.png")
    last = metrics["epochs"][-1]
    summary = {"config": metrics.get("config"), "epochs": len(metrics["epochs"]), "test_elbo": last["test_elbo"]}
    (IMAGES / "demo_run.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {IMAGES}/demo_reconstructions.png, demo_manifold.png, demo_run.json "
          f"(quote it as: {demo_phrase(summary)})")


def demo_phrase(summary: dict) -> str:
    """How the README and the landing page quote the pictured run: "test ELBO -195.9 nats after 10 epochs"."""
    n = summary["epochs"]
    return f"test ELBO {summary['test_elbo']:.1f} nats after {n} epoch{'s' if n != 1 else ''}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=None, help="a `make demo` run folder (default: graph only)")
    args = parser.parse_args(argv)
    IMAGES.mkdir(exist_ok=True)
    write_graph()
    if args.run:
        write_demo(args.run)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
