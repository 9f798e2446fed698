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
    "sphinx.ext.viewcode",
    "myst_nb",  # registers myst-parser for .md and the notebook reader for .ipynb
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "_generated", "**/.ipynb_checkpoints", "conv_vae_loss_trace.txt"]
html_theme = "furo"
html_title = f"minivae {release}"

# --------------------------------------------------------------------------- API reference
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_mock_imports = ["cupy", "torch"]  # optional GPU / benchmark dependencies
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nitpicky = False

#: Modules whose public names are re-exports documented on their home module's page: shown, not indexed.
_REEXPORTING = {"minivae.functional"}


def _public_modules() -> list[tuple[str, bool]]:
    """(module name, is package) for minivae and every submodule without a leading underscore, sorted."""
    import pkgutil

    found = [("minivae", True)]
    for info in pkgutil.walk_packages(minivae.__path__, "minivae."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.append((info.name, info.ispkg))
    return sorted(found)


def _write_api_pages() -> None:
    """One page per public module in docs/api/generated (git-ignored), rewritten only when it changes:
    the module's docstring and members (autodoc) and, for a package, a table of contents of its modules.
    A package's page shows only what the package defines (not its re-exports) and a re-exporting module's
    page is not indexed, so that each object has one home to link to."""
    out = DOCS / "api" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    modules = _public_modules()
    pages = {}
    for name, is_pkg in modules:
        children = [m for m, _ in modules if m.rsplit(".", 1)[0] == name and m != name]
        lines = [name, "=" * len(name), "", f".. automodule:: {name}"]
        if name in _REEXPORTING:
            lines.append("   :no-index:")
        elif is_pkg:  # what the package defines itself; its re-exports are documented where they are defined
            lines.append("   :ignore-module-all:")
        if children:
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


# --------------------------------------------------------------------------- docstrings are not pages
def _location_text(record) -> str:
    location = getattr(record, "location", None)
    if location is None:
        return ""
    if hasattr(location, "source"):  # a docutils node
        from sphinx.util.logging import get_node_location

        return str(get_node_location(location) or "")
    return str(location)


class _DocstringWarningsAreNotErrors(logging.Filter):
    """Report a warning raised while parsing a docstring (location "...docstring of ...") as information.

    ``make docs`` runs with -W so that a broken page, link, toctree, notebook or CLI reference fails the
    build; a docstring whose reStructuredText is imperfect (docstrings are written to be read in the source,
    and change often) is still rendered, and listed at the end of the build instead of failing it. Every
    other warning stays a warning, and with -W an error. Installed first on Sphinx's warning handler, so it
    runs before Sphinx counts the warning.
    """

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        where = _location_text(record)
        if record.levelno >= logging.WARNING and "docstring of" in where:
            try:
                message = record.msg % record.args if record.args else str(record.msg)
            except (TypeError, ValueError):
                message = str(record.msg)
            self.seen.append(f"{where}: {message}")
            return False
        return True


_DOCSTRING_FILTER = _DocstringWarningsAreNotErrors()


def _report_docstring_warnings(app, exception):
    if _DOCSTRING_FILTER.seen:
        print(f"docs: {len(_DOCSTRING_FILTER.seen)} docstring markup warning(s), rendered anyway (not errors):")
        for line in _DOCSTRING_FILTER.seen:
            print("  " + line)


def setup(app):
    for handler in logging.getLogger("sphinx").handlers:
        if handler.level >= logging.WARNING or type(handler).__name__ == "WarningStreamHandler":
            handler.filters.insert(0, _DOCSTRING_FILTER)
    app.connect("build-finished", _report_docstring_warnings)
