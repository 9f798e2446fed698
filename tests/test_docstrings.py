"""Every public member of the public API has a docstring (the API pages list undocumented members too, so a
member without one shows up empty on the site: this test names it).

The public API is every module of the package without a leading underscore in its path, less the
application internals that docs/conf.py keeps out of the API index (``INTERNAL``, read from conf.py's source
so the two cannot disagree). A module's members are its ``__all__`` where it has one, else its public names
defined in it; a class's members are the public functions and properties its own body defines (an override
may inherit its docstring, as autodoc shows it).

``tests/undocumented_api.txt`` lists the members that had no docstring when this test was written (their
modules were being rewritten by other work at the time): a member outside that list without a docstring
fails the test; documenting a listed member and deleting its line is the way to shrink it, and
``test_the_known_list_only_shrinks`` fails on lines that are stale.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import minivae

ROOT = Path(__file__).resolve().parents[1]


def _internal() -> tuple[str, ...]:
    tree = ast.parse((ROOT / "docs" / "conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "INTERNAL" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("docs/conf.py defines no INTERNAL tuple")


def public_modules() -> list[str]:
    """The modules whose pages make up the API reference."""
    internal = _internal()
    names = ["minivae"] + [m.name for m in pkgutil.walk_packages(minivae.__path__, "minivae.")]
    return sorted(n for n in names if not any(p.startswith("_") for p in n.split("."))
                  and not any(n == i or n.startswith(i + ".") for i in internal))


def _own_members(module) -> list[tuple[str, object]]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items() if not n.startswith("_")
                 and (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == module.__name__]
    return [(n, getattr(module, n)) for n in names]


def _class_members(cls) -> list[tuple[str, object]]:
    found = []
    for n, obj in vars(cls).items():
        if n.startswith("_"):
            continue
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if inspect.isfunction(obj) or isinstance(obj, property):
            found.append((n, obj))
    return found


def _doc_of(owner, name, obj) -> str:
    if isinstance(obj, property):
        return (obj.__doc__ or "").strip()
    if owner is not None:  # a method: inspect.getdoc walks the class's bases, as autodoc does
        return (inspect.getdoc(getattr(owner, name)) or "").strip()
    return (inspect.getdoc(obj) or "").strip() if (inspect.isclass(obj) or callable(obj)) else "data"


def undocumented() -> list[str]:
    """'module.Name' or 'module.Class.member' for each public member without a docstring."""
    missing = []
    for mod_name in public_modules():
        module = importlib.import_module(mod_name)
        if not (module.__doc__ or "").strip():
            missing.append(mod_name + " (module)")
        for name, obj in _own_members(module):
            home = getattr(obj, "__module__", mod_name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and home != mod_name:
                continue  # a re-export: checked in its home module
            if not (inspect.isclass(obj) or callable(obj)):
                continue  # constants are documented by the module's docstring
            if not _doc_of(None, name, obj):
                missing.append(f"{mod_name}.{name}")
            if inspect.isclass(obj):
                for member, value in _class_members(obj):
                    if not _doc_of(obj, member, value):
                        missing.append(f"{mod_name}.{name}.{member}")
    return sorted(set(missing))


def test_the_public_api_is_found():
    modules = public_modules()
    assert {"minivae", "minivae.autograd.tensor", "minivae.nn.module", "minivae.optim.adam"} <= set(modules)
    assert "minivae.cli" not in modules and "minivae.commands.train" not in modules


KNOWN = ROOT / "tests" / "undocumented_api.txt"


def _known() -> set[str]:
    return {line.strip() for line in KNOWN.read_text().splitlines() if line.strip() and not line.startswith("#")}


def test_every_public_member_has_a_docstring():
    missing = [m for m in undocumented() if m not in _known()]
    assert not missing, (f"{len(missing)} public members have no docstring (they show up empty on the API "
                         f"pages); write one (shapes, dtypes, units, errors raised):\n  " + "\n  ".join(missing)
                         + "\n(the full list now: python -c \"import sys; sys.path.insert(0, 'tests'); "
                           "import test_docstrings as t; print(*t.undocumented(), sep=chr(10))\")")


def test_the_known_list_only_shrinks():
    stale = sorted(_known() - set(undocumented()))
    assert not stale, (f"{KNOWN.name} lists members that are documented now (or gone): delete these lines:\n  "
                       + "\n  ".join(stale))
