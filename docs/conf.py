"""Sphinx configuration of minivae's documentation site: ``make docs`` builds it into docs/_build/html.

Pages are Markdown (myst-parser); the API reference pages are written here, one per public module found by
walking the package, and filled by autodoc, so new modules and functions appear without editing any page; the
CLI reference comes from the argparse parser (sphinx-argparse); the notebooks in examples/notebooks are
copied into docs/notebooks and executed by myst-nb (outputs cached in docs/_build/.jupyter_cache, keyed on
the code cells, which ``tests/test_notebooks.py`` fills as it runs them); the CLI reference is the
``--help`` text of every sub-command, taken from the argparse parser at build time.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import minivae  # noqa: E402  (after the sys.path / environment set-up above)

project = "minivae"
author = "the minivae developers"
copyright = "minivae developers"  # noqa: A001 - Sphinx's name
release = version = minivae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # a packaged MathJax 3 copied into _static/mathjax: formulas render offline
    "sphinx.ext.viewcode",
    "myst_nb",  # registers myst-parser for .md and the notebook reader for .ipynb
]
smartquotes = False  # flags and messages are quoted literally: --data-dir, 'nope', (0, 0)

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "_generated", "**/.ipynb_checkpoints", "conv_vae_loss_trace.txt"]
html_theme = "furo"
html_title = f"minivae {release}"

# --------------------------------------------------------------------------- API reference
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"  # no half lists: the docstring's Args, typed
viewcode_follow_imported_members = False  # a re-export links to no source: its home module's page does
autodoc_mock_imports = ["cupy", "torch"]  # optional GPU / benchmark dependencies
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # a dataclass's "Attributes:" as a field list; its fields are documented once, as members
nitpicky = False

#: Modules whose public names are re-exports documented on their home module's page: shown, not indexed.
_REEXPORTING = {"minivae.functional"}

#: The application behind the ``minivae`` command (its reference is the CLI page): pages are built, so that
#: source links resolve, but they are orphans, outside the API index (docs/api/index.rst) and the sidebar.
INTERNAL = ("minivae.cli", "minivae.commands", "minivae.config_checks", "minivae.checkpoint", "minivae.train",
            "minivae.evaluate", "minivae.plots", "minivae.preflight", "minivae.runs", "minivae.signals",
            "minivae.run_checks")


def is_internal(name: str) -> bool:
    """Whether module ``name`` belongs to the application internals (:data:`INTERNAL`)."""
    return any(name == m or name.startswith(m + ".") for m in INTERNAL)


def _public_modules() -> list[tuple[str, bool]]:
    """(module name, is package) for minivae and every submodule without a leading underscore, sorted."""
    import pkgutil

    found = [("minivae", True)]
    for info in pkgutil.walk_packages(minivae.__path__, "minivae."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.append((info.name, info.ispkg))
    return sorted(found)


def _reexports(module_name: str) -> list[tuple[str, str]]:
    """(name, full name where it is defined) for each name of module ``module_name``'s ``__all__`` (else
    each public name whose object is defined in another minivae module), in that order."""
    import importlib

    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    found = []
    for n in names:
        obj = getattr(module, n)
        home = getattr(obj, "__module__", None)
        if home and home.startswith("minivae.") and home != module_name and hasattr(obj, "__qualname__"):
            found.append((n, f"{home}.{obj.__qualname__}"))
    return found


def _write_api_pages() -> None:
    """One page per module in docs/api/generated (git-ignored), rewritten only when it changes: the
    module's docstring and members (autodoc, undocumented ones included, so that none is silently left out;
    ``tests/test_docstrings.py`` fails on those) and, for a sub-package, a table of contents of its modules.
    docs/api/index.rst groups the packages as PyTorch's reference does. A package's page shows only what the
    package defines (not its re-exports) and a re-exporting module's page is not indexed, so that each object
    has one home to link to. Internal modules get orphan pages (no index entry)."""
    out = DOCS / "api" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    modules = _public_modules()
    pages = {}
    for name, is_pkg in modules:
        internal = is_internal(name)
        children = [m for m, _ in modules if m.rsplit(".", 1)[0] == name and m != name]
        lines = [":orphan:", ""] if internal else []
        lines += [name, "=" * len(name), "", f".. automodule:: {name}"]
        if name in _REEXPORTING:  # the docstring, then each name linked to the page of the module defining it
            lines += ["   :no-members:", "", "Its names, each documented where it is defined:", ""]
            lines += [f"* :py:obj:`{n} <{home}>`" for n, home in _reexports(name)]
        elif is_pkg:  # what the package defines itself; its re-exports are documented where they are defined
            lines.append("   :ignore-module-all:")
        if children and name != "minivae" and not internal:  # the root's children are grouped by api/index
            lines += ["", ".. toctree::", "   :maxdepth: 1", ""] + [f"   {c}" for c in children]
        pages[f"{name}.rst"] = "\n".join(lines) + "\n"
    for stale in out.glob("*.rst"):
        if stale.name not in pages:
            stale.unlink()
    for filename, text in pages.items():
        path = out / filename
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


_write_api_pages()

# --------------------------------------------------------------------------- CLI reference
def _write_cli_page() -> None:
    """docs/_generated/cli.md (git-ignored, included by cli.md): ``minivae --help`` and ``minivae COMMAND
    --help`` for every sub-command, as argparse prints them at 88 columns (the page width), from the parser."""
    import argparse

    from minivae.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"
    try:
        parser = build_parser()
        sections = [("minivae", parser)]
        for action in parser._actions:  # argparse keeps sub-parsers in its sub-parsers action
            if isinstance(action, argparse._SubParsersAction):
                sections += [(f"minivae {name}", sub) for name, sub in action.choices.items()]
        text = "".join(f"## `{title}`\n\n```text\n{sub.format_help().rstrip()}\n```\n\n"
                       for title, sub in sections)
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    path = DOCS / "_generated" / "cli.md"
    path.parent.mkdir(exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


_write_cli_page()

# --------------------------------------------------------------------------- Markdown and notebooks
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = os.environ.get("MINIVAE_DOCS_EXECUTE", "cache")  # "off" renders the notebooks without running
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
#: notebooks rendered without running them (glob patterns, space-separated), e.g. "*conv_vae*" for a quick build
nb_execution_excludepatterns = os.environ.get("MINIVAE_DOCS_SKIP_NOTEBOOKS", "").split()
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# The notebooks live in examples/notebooks (where a learner opens them); Sphinx reads only files under docs/,
# so they are copied into docs/notebooks (git-ignored) on every build.
_NB_SRC, _NB_DST = ROOT / "examples" / "notebooks", DOCS / "notebooks"
_NB_DST.mkdir(exist_ok=True)
for _stale in _NB_DST.glob("*.ipynb"):
    if not (_NB_SRC / _stale.name).exists():
        _stale.unlink()
for _nb in sorted(_NB_SRC.glob("*.ipynb")):
    if not (_NB_DST / _nb.name).exists() or (_NB_DST / _nb.name).read_bytes() != _nb.read_bytes():
        shutil.copyfile(_nb, _NB_DST / _nb.name)


# --------------------------------------------------------------------------- math offline
mathjax_path = "mathjax/tex-chtml.js"  # served from the built site (sphinx-mathjax-offline copies it there)

# --------------------------------------------------------------------------- warnings are errors
#: Docstrings whose reStructuredText still draws a warning, each named. ``make docs`` runs with -W, so any
#: other warning (a page, a link, a toctree, a notebook, a docstring) fails the build; these few are shown as
#: a list at the end of the build instead, until their modules (rewritten in parallel) fix them. Keep it short.
KNOWN_DOCSTRING_WARNINGS = {
    "minivae.kernels.cpu.conv_transpose2d_backward",
    "minivae.kernels.reference.conv2d_backward_input",
    "minivae.kernels.gpu.conv2d_forward",
}


class _KnownDocstringWarnings(logging.Filter):
    """Turn a warning located in the docstring of an object of :data:`KNOWN_DOCSTRING_WARNINGS` into a line
    printed at the end of the build; every other warning passes (and with -W fails the build)."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        location = getattr(record, "location", None)
        where = str(location) if isinstance(location, str) else ""
        if record.levelno >= logging.WARNING and "docstring of " in where \
                and where.split("docstring of ", 1)[1].split(":")[0] in KNOWN_DOCSTRING_WARNINGS:
            self.seen.append(f"{where}: {record.getMessage()}")
            return False
        return True


_KNOWN = _KnownDocstringWarnings()


def _report_known(app, exception):
    if _KNOWN.seen:
        print(f"docs: {len(_KNOWN.seen)} known docstring warning(s) (conf.py KNOWN_DOCSTRING_WARNINGS):")
        for line in _KNOWN.seen:
            print("  " + line)


def setup(app):
    for handler in logging.getLogger("sphinx").handlers:
        if type(handler).__name__ == "WarningStreamHandler":
            handler.filters.insert(0, _KNOWN)
    app.connect("build-finished", _report_known)
