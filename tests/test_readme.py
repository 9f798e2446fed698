"""The README is a newcomer's first page: short, its example prints what it says, its pictures are there and
current, its links stay inside the repository; the site's landing page shows the same; the getting-started
tour runs as written."""
from __future__ import annotations

import importlib.util
import json
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
INDEX = ROOT / "docs" / "index.md"


def _figures_module():
    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "docs" / "readme_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_readme_is_short_and_starts_with_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 120, f"README.md has {len(text.splitlines())} lines; keep it to 120"
    first_block = _blocks(text, "bash")[0]
    assert first_block.splitlines()[0].startswith("make demo") and first_block.splitlines()[1].startswith("make test")
    assert text.index("make demo") < 1200  # in the first screen


def test_readme_example_prints_what_the_readme_shows():
    figures = _figures_module()
    text = README.read_text()
    code = _blocks(text, "python")[0]
    assert len([line for line in code.splitlines() if line.strip() and not line.startswith("import")]) <= 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        printed, _ = figures.run_readme_example()
    shown = text.split(code, 1)[1]
    assert printed == _blocks(shown, "text")[0], "the README's output block differs from what its example prints"


def test_the_landing_page_shows_the_same_example_and_output():
    readme, index = README.read_text(), INDEX.read_text()
    assert _blocks(readme, "python")[0] == _blocks(index, "python")[0]
    assert _blocks(readme, "text")[0] == _blocks(index, "text")[0]
    assert _blocks(readme, "bash")[0] == _blocks(index, "bash")[0]
    for image in ("demo_reconstructions.png", "demo_manifold.png", "readme_graph.png"):
        assert f"images/{image}" in readme and f"images/{image}" in index


def test_the_graph_picture_is_current():
    pytest.importorskip("graphviz")
    figures = _figures_module()
    _, namespace = figures.run_readme_example()
    committed = (ROOT / "docs" / "images" / "readme_graph.dot").read_text()
    assert figures.graph_source(namespace) == committed, (
        "the README's example records another graph now: run `python docs/readme_figures.py` and commit "
        "docs/images/readme_graph.png and .dot")


def test_the_demo_numbers_quoted_are_those_of_the_run_pictured():
    run = json.loads((ROOT / "docs" / "images" / "demo_run.json").read_text())
    quoted = _figures_module().demo_phrase(run)
    assert quoted in README.read_text() and quoted in INDEX.read_text()


def _links(text: str) -> list[str]:
    md = re.findall(r"\]\(([^)\s]+)\)", text)
    html = re.findall(r"""<img[^>]*\ssrc=["']([^"']+)["']""", text)
    return md + html


def test_every_readme_link_is_inside_the_repository_and_exists():
    links = _links(README.read_text())
    assert len(links) >= 8
    outside = [link for link in links if re.match(r"^[a-z]+:", link) or link.startswith(("/", "../"))]
    assert not outside, f"README.md links outside the repository: {outside}"
    missing = [link for link in links if not (ROOT / link.split("#")[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
    for link in links:
        assert (ROOT / link.split("#")[0]).resolve().is_relative_to(ROOT)


def test_getting_started_tour_runs_without_warnings():
    code = _blocks((ROOT / "docs" / "getting_started.md").read_text(), "python")[0]
    assert "create_graph=True" in code and "forward_ad" in code
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(code, "docs/getting_started.md", "exec"), {})
