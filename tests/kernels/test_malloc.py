"""minivae.kernels._malloc: glibc keeps a training step's freed arrays for reuse (no page faults per step), when
asked (the ``minivae train`` command asks; importing minivae does not)."""
from __future__ import annotations

import ctypes
import json
import os
import pathlib
import subprocess
import sys

import pytest

from minivae.kernels import _malloc

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Rounds of ten 3 MB arrays allocated and freed, as a training step does with its activations. With glibc's
# default (dynamic) thresholds the 30 MB freed each round exceed the trim threshold and go back to the OS, so
# every round faults its pages in again; with minivae's thresholds they stay in the heap.
_CHILD = r"""
import json, resource, sys
import numpy as np
import minivae.kernels.cpu  # noqa: F401  (importing sets nothing)
from minivae.kernels import _malloc
applied = _malloc.keep_freed_memory()  # as the train command does, unless disabled
def round_():
    arrays = [np.ones(3 << 18, dtype=np.float32) for _ in range(10)]
    del arrays
round_(); round_()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    round_()
print(json.dumps(dict(faults=(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 5,
                      applied=applied, page=resource.getpagesize())))
"""


def _glibc() -> bool:
    try:
        ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return True


def _faults(**env) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    e.update(env)
    out = subprocess.run([sys.executable, "-c", _CHILD], env=e, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _glibc(), reason="mallopt is glibc's; other C libraries are left alone")
def test_freed_arrays_are_reused_without_page_faults():
    kept = _faults()
    default = _faults(MINIVAE_KEEP_FREED_MEMORY="0")
    assert kept["applied"] and not default["applied"]
    # 30 MB per round (7,680 pages of 4 KiB, 480 of 64 KiB): the default refaults most, minivae's setting almost none
    pages = 10 * (3 << 20) // default["page"]
    assert default["faults"] > 0.4 * pages, default
    assert kept["faults"] < 0.04 * pages, kept


def test_user_malloc_tuning_is_respected(monkeypatch):
    monkeypatch.setattr(_malloc, "_applied", None)
    assert _malloc.keep_freed_memory({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"}) is False
    monkeypatch.setattr(_malloc, "_applied", None)
    assert _malloc.keep_freed_memory({"MALLOC_TRIM_THRESHOLD_": "1"}) is False
    monkeypatch.setattr(_malloc, "_applied", None)
    assert _malloc.keep_freed_memory({"MINIVAE_KEEP_FREED_MEMORY": "0"}) is False
