"""Print the machine a benchmark ran on: CPU model, cores, library versions, Numba's threading, BLAS, GPU.

    python benchmarks/machine.py

Other benchmarks call :func:`header` and print it above their tables.
"""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str:
    try:
        mod = __import__(module)
    except Exception as e:  # noqa: BLE001 - report whatever stops the import
        return f"not available ({type(e).__name__})"
    return getattr(mod, "__version__", "?")


def _numba_threading() -> str:
    import numba
    from numba import njit, prange

    @njit(parallel=True)
    def _touch(n):  # run one parallel region so that the threading layer is chosen
        s = 0
        for i in prange(n):
            s += i
        return s

    try:
        _touch(4)
        layer = numba.threading_layer()
    except Exception as e:  # noqa: BLE001  (any failure is reported, not raised)
        layer = f"unknown ({type(e).__name__})"
    return f"{layer}, {numba.config.NUMBA_NUM_THREADS} threads"


def _blas() -> str:
    try:
        import numpy as np

        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{cfg.get('name')} {cfg.get('version')}{_openblas_core()}"
    except Exception:  # noqa: BLE001  (any failure is reported, not raised)
        return "?"


def _openblas_core() -> str:
    """``, core Haswell (OPENBLAS_CORETYPE=...)``: the kernels a DYNAMIC_ARCH OpenBLAS runs, and the environment
    variable that forces them (this development machine's environment sets ``OPENBLAS_CORETYPE=Haswell``:
    AVX2 kernels on an AVX-512 CPU)."""
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return ""
    for path in paths:
        lib = ctypes.CDLL(path)
        for name in ("openblas_get_corename", "scipy_openblas_get_corename64_", "scipy_openblas_get_corename"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                forced = os.environ.get("OPENBLAS_CORETYPE")
                return f", core {fn().decode()}" + (f" (OPENBLAS_CORETYPE={forced})" if forced else "")
    return ""


def _gpu() -> str:
    try:
        from minivae.backend import gpu_status

        ok, why = gpu_status()
        if not ok:
            return f"none ({why})"
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return f"{name}, {props['totalGlobalMem'] / 2 ** 30:.0f} GiB, cupy {cupy.__version__}"
    except Exception as e:  # noqa: BLE001  (any failure is reported, not raised)
        return f"none ({type(e).__name__}: {e})"


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "?"
    busy = " (other processes are running: timings are perturbed)" if one > 0.5 * (os.cpu_count() or 1) else ""
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min){busy}"


def info() -> dict:
    """The machine as a dict of strings."""
    torch = _version("torch")
    if not torch.startswith("not"):
        import torch as _t

        torch += f" ({_t.get_num_threads()} threads)"
    from minivae.kernels import cpu

    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "numpy": f"{_version('numpy')} (BLAS {_blas()})",
        "numba": f"{_version('numba')} (threading layer {_numba_threading()}; minivae CPU kernels on "
                 f"{cpu.threads()} threads)",
        "torch": torch,
        "cupy": _version("cupy"),
        "gpu": _gpu(),
        "load": _load(),
    }


def header() -> str:
    """A few lines describing the machine, for the top of a benchmark's output."""
    return "\n".join(f"# {k:6s} {v}" for k, v in info().items())


if __name__ == "__main__":
    print(header())
