"""Imports go only downward through the layers (DESIGN.md): backend -> kernels -> autograd -> ops -> nn/optim ->
models -> data -> app. Every ``import`` in every module counts, including those inside functions."""
from __future__ import annotations

import ast
import pathlib

PKG = pathlib.Path(__file__).resolve().parents[1] / "minivae"

LAYERS = {  # first path component inside minivae/ -> rank
    "backend": 0, "kernels": 1, "autograd": 2, "ops": 3, "functional": 3, "nn": 4, "optim": 4, "models": 5,
    "data": 6, "compiler": 6,
}
APP = 7  # everything else: cli, commands, train, evaluate, plots, checkpoint, opcheck, viz, ...


def _layer(parts) -> int:
    return LAYERS.get(parts[0], APP) if parts else APP


def _module_parts(path: pathlib.Path):
    rel = path.relative_to(PKG).with_suffix("")
    parts = list(rel.parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("minivae."):
                    yield node.lineno, a.name.split(".")[1:]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "minivae":
                for a in node.names:
                    yield node.lineno, [a.name]
            elif node.module.startswith("minivae."):
                yield node.lineno, node.module.split(".")[1:]


def test_no_module_imports_from_a_layer_above_its_own():
    violations = []
    for path in sorted(PKG.rglob("*.py")):
        own = _module_parts(path)
        if not own:  # minivae/__init__.py: the package facade re-exports every layer
            continue
        for line, target in _imports(path):
            if _layer(target) > _layer(own):
                violations.append(f"{path.relative_to(PKG.parent)}:{line} imports minivae.{'.'.join(target)}")
    assert not violations, "upward imports:\n" + "\n".join(violations)


def test_the_check_itself_sees_an_upward_import(tmp_path):
    """Guard against a vacuous test: the parser finds a lazy import inside a function."""
    src = tmp_path / "x.py"
    src.write_text("def f():\n    from minivae.ops.elementwise import cast\n    return cast\n")
    assert list(_imports(src)) == [(2, ["ops", "elementwise"])]
    assert _layer(["ops", "elementwise"]) > _layer(["autograd", "tensor"])
