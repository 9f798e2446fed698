"""The notebooks in examples/notebooks and the Sphinx site in docs/.

* Every notebook is committed without outputs (they are rendered by the docs build, not kept in git).
* Every notebook runs top to bottom in a real Jupyter kernel (nbclient + ipykernel), and prints what shows
  that it did its job. The executed notebook is stored in the docs build's jupyter-cache, keyed on its code
  cells, so the docs build below renders those outputs instead of running the notebook a second time.
* ``make docs`` (sphinx-build -W) succeeds and the pages it promises exist and hold what they should.

The tests run in the order written (the docs build last, after the notebooks filled the cache). Run alone,
the docs build executes the notebooks itself.
"""
from __future__ import annotations

import html as html_module
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "examples" / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
DOCS = ROOT / "docs"
HTML = DOCS / "_build" / "html"
CACHE = DOCS / "_build" / ".jupyter_cache"  # docs/conf.py's nb_execution_cache_path

#: Text each notebook must print when it worked (each line is checked by the notebook's own assertions
#: or computed from minivae's results, so it cannot appear by accident).
EXPECTED = {
    "backprop_by_hand.ipynb": ["gradcheck passed for W and b", "gradcheck passed for conv2d's input and weight",
                               "max |hand - minivae|", "4 VJPs", "x.grad is None",
                               "Exercise 1: not done yet", "Exercise 2: gradcheck caught it: gradcheck failed for input 0 (x)",
                               "Exercise 3: the smallest error"],
    "conv_vae.ipynb": ["test ELBO after", "library z matches the loop above: True", "over the hidden pixels",
                       "Exercise 1: not done yet", "Exercise 2: a path of 10 images"],
    "kernels_cpu_vs_gpu.ipynb": ["worst relative difference from the reference", "numba is",
                                 "largest difference", "Exercise 1: not done yet", "Exercise 2: an image costs"],
    "higher_order_and_forward_mode.ipynb": ["nested grad agrees with the closed form",
                                            "reverse-over-reverse and forward-over-reverse agree",
                                            "max |Hv - central differences|", "forward and reverse Jacobians agree",
                                            "full-Jacobian checks caught 10", "Exercise 1: not done yet",
                                            "Exercise 2: for n=64, m=1 reverse-mode needs the fewer passes"],
}


def _needs(module: str):
    """Import ``module`` or skip, except on CI, where a missing docs/notebook dependency is a failure."""
    try:
        return pytest.importorskip(module)
    except pytest.skip.Exception:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed; CI installs it with the dev and docs extras (make install)")
        raise


def _kernel_env(monkeypatch) -> None:
    """The notebook kernel sees the machine as a learner would: no CUDA simulator (conftest switches it on);
    it imports the minivae of this checkout (not another one an editable install may point to)."""
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_the_notebooks_are_there():
    assert {p.name for p in NOTEBOOKS} == set(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nbformat = _needs("nbformat")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, (f"{path.name}: code cells {dirty} hold outputs; strip them with "
                       f"`jupyter nbconvert --clear-output --inplace {path.relative_to(ROOT)}`")


def _text_of(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif "data" in out:
                parts.append(str(out.data.get("text/plain", "")))
    return "\n".join(parts)


def _store_for_docs(nb, path: Path) -> None:
    """Put the executed notebook in the jupyter-cache the docs build reads (myst-nb's "cache" mode)."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    CACHE.parent.mkdir(parents=True, exist_ok=True)
    get_cache(str(CACHE)).cache_notebook_bundle(
        CacheBundleIn(nb, str(path)), check_validity=False, overwrite=True)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_in_a_jupyter_kernel(path, monkeypatch):
    nbformat = _needs("nbformat")
    nbclient = _needs("nbclient")
    _needs("ipykernel")
    _kernel_env(monkeypatch)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError with the failing cell and its traceback
    errors = [out for cell in nb.cells for out in cell.get("outputs", []) if out.output_type == "error"]
    assert not errors
    text = _text_of(nb)
    missing = [line for line in EXPECTED[path.name] if line not in text]
    assert not missing, f"{path.name} ran but did not print {missing}"
    images = [out for cell in nb.cells for out in cell.get("outputs", [])
              if "data" in out and ({"image/png", "image/svg+xml"} & set(out.data))]
    if path.name != "backprop_by_hand.ipynb" or _dot_installed():
        assert images, f"{path.name} ran but showed no figure"
    _store_for_docs(nb, path)


def _dot_installed() -> bool:
    import shutil

    return shutil.which("dot") is not None


def _build_site():
    """Run ``make docs``'s sphinx-build (-W: every warning an error) once per session: (status, output)."""
    if "build" not in _SITE:
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")  # the notebooks' kernels too
        cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", "docs/_build/html"]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        _SITE["build"] = (proc.returncode, f"`{' '.join(cmd[2:])}` failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return _SITE["build"]


_SITE: dict = {}


@pytest.fixture()
def site():
    """The built site (docs/_build/html); a build that failed fails the test using it."""
    _needs("sphinx")
    _needs("myst_nb")
    status, output = _build_site()
    if status != 0:
        pytest.fail("the docs build failed (see test_docs_build_with_warnings_as_errors):\n" + output[-2000:])
    return HTML


def page(rel: str, raw: bool = False) -> str:
    """The page's HTML (``raw``) or its text: tags removed (code is split into highlighting spans)."""
    path = HTML / rel
    assert path.is_file(), f"docs build did not write {rel}"
    text = path.read_text(encoding="utf-8")
    return text if raw else html_module.unescape(re.sub(r"<[^>]+>", "", text))


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors():
    _needs("sphinx")
    _needs("myst_nb")
    status, output = _build_site()
    assert status == 0, output

    assert "make demo" in page("getting_started.html") and "make test" in page("getting_started.html")
    concepts = page("concepts.html")
    assert "class Tanh" in concepts and "kernels.use" in concepts  # the op's real source, the registry
    cli = page("cli.html")
    for command in ("minivae train", "minivae evaluate", "minivae sample", "minivae plot", "minivae data",
                    "minivae gradcheck"):
        assert command in cli
    assert "--latent-dim" in cli and "--iw-samples" in cli
    assert "What the user sees" in page("bad_inputs.html")
    # the API reference: one page per public module, with the docstrings' content
    assert "draw_graph" in page("api/generated/minivae.viz.html")
    assert "masked_log_likelihood" in page("api/generated/minivae.models.inpaint.html")
    assert "Adam" in page("api/generated/minivae.optim.adam.html")
    assert "requires_grad" in page("api/generated/minivae.autograd.tensor.html")
    # the notebooks, rendered with their outputs
    for name, lines in EXPECTED.items():
        stem = Path(name).stem
        assert lines[0] in page(f"notebooks/{stem}.html"), f"{name}: its page lacks the output {lines[0]!r}"
        raw = page(f"notebooks/{stem}.html", raw=True)
        assert "<img" in raw or "<svg" in raw, f"{name}: no figure on its page"


@pytest.mark.slow
def test_no_internal_link_points_to_a_missing_page_or_anchor(site):
    """Every relative link of every page (source back-links, cross-references, the sidebar) lands on a file
    that exists and, where it names one, on an anchor of that page (Sphinx's linkcheck, internal links only)."""
    from urllib.parse import unquote, urldefrag

    pages = sorted(site.rglob("*.html"))
    ids = {}
    for path in pages:
        text = path.read_text(encoding="utf-8")
        ids[path.resolve()] = set(re.findall(r'\sid="([^"]+)"', text))
    broken = []
    for path in pages:
        for href in re.findall(r'<a\s[^>]*href="([^"]*)"', path.read_text(encoding="utf-8")):
            href = html_module.unescape(href)
            if re.match(r"^[a-z][a-z0-9+.-]*:", href) or href.startswith("//"):
                continue  # external: not checked (the site must work offline, so there are few)
            target, fragment = urldefrag(href)
            dest = (path.parent / unquote(target)).resolve() if target else path.resolve()
            if dest.is_dir():
                dest = dest / "index.html"
            if not dest.exists():
                broken.append(f"{path.relative_to(site)}: {href} (no such file)")
            elif fragment and dest.suffix == ".html" and fragment not in ids.get(dest, set()):
                broken.append(f"{path.relative_to(site)}: {href} (no such anchor)")
    assert len(pages) > 50
    assert not broken, f"{len(broken)} broken internal links:\n  " + "\n  ".join(broken[:40])


@pytest.mark.slow
def test_the_api_index_is_grouped_and_leaves_out_the_internals(site):
    index = page("api/index.html")
    for group in ("minivae.autograd", "minivae.functional", "minivae.nn", "minivae.optim", "minivae.models",
                  "minivae.kernels", "minivae.data", "Testing and inspection tools"):
        assert group in index
    sidebar = page("api/index.html", raw=True)
    for internal in ("minivae.signals", "minivae.preflight", "minivae.runs", "minivae.commands", "minivae.cli"):
        assert f"generated/{internal}.html" not in sidebar, f"{internal} is listed in the API index"
    # undocumented public members are listed (so that tests/test_docstrings.py's list is what shows empty)
    assert 'id="minivae.nn.module.Module.parameters"' in page("api/generated/minivae.nn.module.html", raw=True)


@pytest.mark.slow
def test_flags_and_messages_are_quoted_literally(site):
    for rel in ("cli.html", "bad_inputs.html", "getting_started.html", "index.html"):
        text = page(rel)
        smart = sorted(set(re.findall("[\u2018\u2019\u201c\u201d\u2013\u2014]", text)) - _SOURCE_DASHES.get(rel, set()))
        assert not smart, f"{rel}: typographic characters {smart} where the source has ASCII quotes and dashes"
    assert "--data-dir" in page("bad_inputs.html") and "(0, 0)" in page("bad_inputs.html")


#: characters a page's source really holds (they are not smartquotes' work)
_SOURCE_DASHES: dict = {}


@pytest.mark.slow
def test_the_landing_page_shows_the_quickstart_and_the_pictures(site):
    raw = page("index.html", raw=True)
    assert "make demo" in page("index.html") and "gradcheck: True" in page("index.html")
    for image in ("demo_reconstructions.png", "demo_manifold.png", "readme_graph.png"):
        assert image in raw and (site / "_images" / image).is_file(), image
    assert "notebooks/backprop_by_hand.html" in raw


def _chromium() -> str:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    msg = "chromium is not installed (`make tools` installs Debian's chromium)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def _rendered_dom(browser: str, path: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran (MathJax typesets on load), from headless Chromium."""
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
           "--virtual-time-budget=20000", "--dump-dom", path.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and "</html>" in proc.stdout, f"chromium failed on {path}: {proc.stderr[-2000:]}"
    return proc.stdout


def _visible_tex(dom: str) -> list[str]:
    """Raw TeX delimiters left in the text a reader sees (scripts, code and typeset math removed)."""
    for tag in ("script", "style", "pre", "code", "mjx-container", "mjx-assistive-mml"):
        dom = re.sub(rf"<{tag}\b.*?</{tag}>", " ", dom, flags=re.S)
    text = html_module.unescape(re.sub(r"<[^>]+>", " ", dom))
    return re.findall(r"\\\(.{0,40}|\\\[.{0,40}|\$\$.{0,40}", text)


@pytest.mark.slow
def test_every_formula_is_typeset_offline_in_chromium(site, tmp_path):
    """MathJax comes with the site (_static/mathjax), so a machine without internet shows formulas, not TeX."""
    browser = _chromium()
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax is not copied into the site"
    with_math = [p for p in sorted(site.rglob("*.html")) if re.search(r'class="math[ "]', p.read_text(encoding="utf-8"))]
    assert {"concepts.html", "notebooks/backprop_by_hand.html"} <= {str(p.relative_to(site)) for p in with_math}
    for path in with_math:
        raw = path.read_text(encoding="utf-8")
        assert "cdn.jsdelivr" not in raw and "mathjax/tex-chtml.js" in raw, f"{path.name} loads MathJax from a CDN"
        dom = _rendered_dom(browser, path, tmp_path / "profile")
        typeset, formulas = dom.count("<mjx-container"), len(re.findall(r'class="math[ "]', raw))
        leftover = _visible_tex(dom)
        assert typeset >= formulas and not leftover, (
            f"{path.relative_to(site)}: {typeset} of {formulas} formulas typeset; raw TeX visible: {leftover[:5]}")
