"""The ports of PyTorch's tutorials in examples/ print PyTorch's numbers.

Each tutorial file is run twice in this process: as it is (minivae), and with its imports of minivae swapped for
PyTorch's (``import torch as minivae``, ``import torch.nn.functional as F``, ``from torch import``), so that the
very same code runs on PyTorch. Random draws: in both runs ``rand``/``rand_like``/``randn``/``randn_like`` draw
from one fresh PyTorch generator seeded with 0 (float32 draws, cast to the asked dtype; minivae's as minivae
tensors), so that the printed numbers can be compared; minivae's own generator is checked in
test_oracle_semantics.py.

The printed outputs are compared as token streams: every number (as a float, to the printed precision: 1e-4)
and every True/False, in order, after removing what the reprs print differently by design (documented in the
tutorial files): ``dtype=...``, ``requires_grad=True``, ``grad_fn=<...>``, ``device='...'``, and objects
printed as ``<... at 0x...>`` (a grad_fn's repr names PyTorch's or minivae's class). Shapes print as
``torch.Size([3, 4])`` and ``(3, 4)``: the same numbers. The labels (text before a colon) must match too.
"""
from __future__ import annotations

import contextlib
import io
import pathlib
import re

import numpy as np
import torch

import minivae

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d*)?(?:e[+-]?\d+)?|True|False")
NOISE = [re.compile(p) for p in (r",?\s*dtype=[\w.]+", r",?\s*requires_grad=True", r",?\s*grad_fn=<[^>]*>",
                                 r",?\s*device='\w+'", r"<[^<>]* at 0x[0-9a-f]+>", r"torch\.\w+")]


def _torch_source(src: str) -> str:
    src = re.sub(r"^import minivae$", "import torch as minivae", src, flags=re.M)
    src = src.replace("import minivae.functional as F", "import torch.nn.functional as F")
    return src.replace("from minivae import", "from torch import")


_ORIGINAL = {name: getattr(torch, name) for name in ("rand", "randn")}


def _draw(name, generator, args, dtype):
    """PyTorch's ``rand``/``randn`` (``*_like`` too) from ``generator``, drawn in float32, then cast."""
    shape = tuple(args[0].shape) if name.endswith("_like") else args
    values = _ORIGINAL[name.replace("_like", "")](*shape, generator=generator)
    return values, dtype


def _patch_random(lib: str, monkeypatch) -> None:
    """Both runs draw ``rand``/``randn``/``*_like`` from one fresh PyTorch generator seeded with 0 (not the global
    one, which PyTorch's layer initialisation also consumes), so the tutorials' random tensors are equal."""
    generator = torch.Generator().manual_seed(0)
    for name in ("rand", "rand_like", "randn", "randn_like"):
        def draw(*args, dtype=None, requires_grad=False, _name=name, **kw):
            values, dtype = _draw(_name, generator, args, dtype)
            if lib == "torch":
                like = args[0].dtype if _name.endswith("_like") and args[0].is_floating_point() else torch.float32
                return values.to(dtype or like).requires_grad_(requires_grad)
            like = args[0].dtype if _name.endswith("_like") and np.dtype(args[0].dtype).kind == "f" else None
            return minivae.tensor(values.numpy(), dtype=dtype or like or minivae.float32,
                                  requires_grad=requires_grad)
        monkeypatch.setattr(torch if lib == "torch" else minivae, name, draw)


def run(path: pathlib.Path, lib: str, monkeypatch) -> str:
    src = path.read_text()
    _patch_random(lib, monkeypatch)
    if lib == "torch":
        src = _torch_source(src)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(src, str(path), "exec"), {"__name__": "__main__"})  # noqa: S102 - our own example file
    monkeypatch.undo()
    return out.getvalue()


def tokens(text: str) -> list:
    for pattern in NOISE:
        text = pattern.sub("", text)
    return [t if t in ("True", "False") else float(t) for t in NUMBER.findall(text)]


def labels(text: str) -> list:
    return [line.split(":")[0].strip() for line in text.splitlines() if re.match(r"^[A-Za-z].*:", line)]


def compare(path, monkeypatch):
    want = run(path, "torch", monkeypatch)
    got = run(path, "minivae", monkeypatch)
    assert labels(got) == labels(want), f"labels differ:\nminivae:\n{got}\nPyTorch:\n{want}"
    tg, tw = tokens(got), tokens(want)
    assert len(tg) == len(tw), f"minivae printed {len(tg)} numbers, PyTorch {len(tw)}:\nminivae:\n{got}\n" \
                               f"PyTorch:\n{want}"
    for k, (g, w) in enumerate(zip(tg, tw)):
        if isinstance(w, str) or isinstance(g, str):
            assert g == w, f"token {k}: minivae {g}, PyTorch {w}:\nminivae:\n{got}\nPyTorch:\n{want}"
        else:
            assert abs(g - w) <= 1e-4 * max(1.0, abs(w)), \
                f"number {k}: minivae {g}, PyTorch {w}:\nminivae:\n{got}\nPyTorch:\n{want}"
    return got


def test_tensors_tutorial_prints_pytorchs_numbers(monkeypatch):
    got = compare(EXAMPLES / "tutorial_tensors.py", monkeypatch)
    assert "t: " in got and "First column" in got


def test_autograd_tutorial_prints_pytorchs_numbers(monkeypatch):
    got = compare(EXAMPLES / "tutorial_autograd.py", monkeypatch)
    assert "Call after zeroing gradients" in got


def test_from_numpy_exists_and_shares_memory():
    n = np.ones(3)
    t = minivae.from_numpy(n)
    np.add(n, 1, out=n)
    assert t.numpy().tolist() == [2.0, 2.0, 2.0] and t.dtype == np.float64
