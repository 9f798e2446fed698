"""The notebooks in examples/notebooks and the Sphinx site in docs/.

* Every notebook is committed without outputs (they are rendered by the docs build, not kept in git).
* Every notebook runs top to bottom in a real Jupyter kernel (nbclient + ipykernel), and prints what shows
  that it did its job. The executed notebook is stored in the docs build's jupyter-cache, keyed on its code
  cells, so the docs build below renders those outputs instead of running the notebook a second time.
* ``make docs`` (sphinx-build -W) succeeds and the pages it promises exist and hold what they should.

Each notebook is executed once per session (:func:`executed_notebook`, a session fixture), by whichever test asks
first; the docs build asks for every notebook before it starts, so the tests hold in any order or alone.
"""
from __future__ import annotations

import contextlib
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
                               "max |hand - minivae|", "4 VJPs"],
    "conv_vae.ipynb": ["test ELBO after", "library z matches the loop above: True", "over the hidden pixels"],
    "kernels_cpu_vs_gpu.ipynb": ["worst relative difference from the reference", "numba is",
                                 "largest difference"],
    "higher_order_and_forward_mode.ipynb": ["nested grad agrees with the closed form",
                                            "reverse-over-reverse and forward-over-reverse agree",
                                            "max |Hv - central differences|", "forward and reverse Jacobians agree",
                                            "full-Jacobian checks caught 10"],
}


def _needs(module: str):
    """Import ``module`` or skip, except on CI, where a missing docs/notebook dependency is a failure."""
    try:
        return pytest.importorskip(module)
    except pytest.skip.Exception:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed; CI installs it with the dev and docs extras (make install)")
        raise


@contextlib.contextmanager
def _kernel_env():
    """The notebook kernel sees the machine as a learner would: no CUDA simulator (conftest switches it on)."""
    saved = os.environ.pop("NUMBA_ENABLE_CUDASIM", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["NUMBA_ENABLE_CUDASIM"] = saved


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


@pytest.fixture(scope="session")
def executed_notebook():
    """``run(path) -> the executed notebook``: each notebook runs once per session in a real Jupyter kernel (and
    is stored in the docs build's jupyter-cache); later calls return the same result."""
    done = {}

    def run(path):
        if path not in done:
            nbformat, nbclient = _needs("nbformat"), _needs("nbclient")
            _needs("ipykernel")
            nb = nbformat.read(path, as_version=4)
            client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                                             resources={"metadata": {"path": str(path.parent)}})
            with _kernel_env():
                client.execute()  # raises CellExecutionError with the failing cell and its traceback
            _store_for_docs(nb, path)
            done[path] = nb
        return done[path]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_in_a_jupyter_kernel(path, executed_notebook):
    nb = executed_notebook(path)
    errors = [out for cell in nb.cells for out in cell.get("outputs", []) if out.output_type == "error"]
    assert not errors
    text = _text_of(nb)
    missing = [line for line in EXPECTED[path.name] if line not in text]
    assert not missing, f"{path.name} ran but did not print {missing}"
    images = [out for cell in nb.cells for out in cell.get("outputs", [])
              if "data" in out and ({"image/png", "image/svg+xml"} & set(out.data))]
    if path.name != "backprop_by_hand.ipynb" or _dot_installed():
        assert images, f"{path.name} ran but showed no figure"


def _dot_installed() -> bool:
    import shutil

    return shutil.which("dot") is not None


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors(executed_notebook):
    _needs("sphinx")
    _needs("myst_nb")
    for path in NOTEBOOKS:  # the cache the build renders from, whatever ran before
        executed_notebook(path)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", "docs/_build/html"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"`{' '.join(cmd[2:])}` failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"

    def page(rel: str, raw: bool = False) -> str:
        """The page's HTML (``raw``) or its text: tags removed (code is split into highlighting spans)."""
        path = HTML / rel
        assert path.is_file(), f"docs build did not write {rel}"
        text = path.read_text(encoding="utf-8")
        return text if raw else html_module.unescape(re.sub(r"<[^>]+>", "", text))

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
