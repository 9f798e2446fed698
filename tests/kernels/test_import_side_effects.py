"""Importing minivae (and its Numba CPU kernels) changes nothing process-wide that a user could observe: no
``mallopt`` call, no signal handler, no environment variable, no thread count (Numba's, the BLAS libraries' as
threadpoolctl reports them where it is installed, the CPU affinity), no running threads."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

_CHILD = r"""
import ctypes, json, os, signal, sys, threading
import numpy, numba, scipy.linalg.cython_blas  # the dependencies' own set-up is theirs: snapshot after them
calls = []
_real_cdll = ctypes.CDLL
class _SpyCDLL(_real_cdll):  # records every C function looked up through ctypes
    def __getattr__(self, name):
        calls.append(name)
        return super().__getattr__(name)
    def __getitem__(self, name):
        calls.append(name)
        return super().__getitem__(name)
ctypes.CDLL = _SpyCDLL
def snapshot():
    try:
        from threadpoolctl import threadpool_info
        pools = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    except ImportError:
        pools = None
    return dict(env=dict(os.environ), threads=numba.get_num_threads(), pools=pools,
                affinity=sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                alive=threading.active_count(),
                signals={s.name: repr(signal.getsignal(s)) for s in signal.valid_signals()
                         if isinstance(s, signal.Signals)})
before = snapshot()
import minivae, minivae.functional, minivae.kernels.cpu  # noqa: F401  (imported for what importing does)
after = snapshot()
print(json.dumps(dict(before=before, after=after, calls=calls, blas_loaded="scipy_openblas32" in sys.modules)))
"""


def test_importing_minivae_changes_nothing_process_wide():
    out = subprocess.run([sys.executable, "-c", _CHILD], cwd=ROOT, capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert "mallopt" not in res["calls"], res["calls"]
    assert not res["blas_loaded"]  # the kernels' GEMM library loads at the first kernel call, not on import
    for key in ("env", "threads", "affinity", "alive", "signals"):
        assert res["after"][key] == res["before"][key], key
    if res["before"]["pools"] is not None:  # the thread pools loaded before the import keep their thread counts
        after = res["after"]["pools"]
        assert {path: after.get(path) for path in res["before"]["pools"]} == res["before"]["pools"]
