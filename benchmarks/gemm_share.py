"""How much of the conv VAE's training step is GEMM: the step timed with the Numba CPU kernels' GEMM as it is,
and with the GEMM replaced by ``C = 0`` (a jitted function of the same C signature, so everything else runs
unchanged: im2col/col2im, bias, ReLU, BCE, the dense layers, the engine, Adam).

    python benchmarks/gemm_share.py                  # batch 32 and 128
    python benchmarks/gemm_share.py --batch 64 --rounds 8

The two settings alternate in one process, ``--rounds`` times, each round the median of ``--steps`` steps
(after 3 warm-up steps); printed: the medians over the rounds, in ms, and the difference as the GEMM's share.
The ``C = 0`` steps train on zero convolution outputs: their numbers are timings, not a model. The dense
layers' GEMMs (NumPy's ``np.dot``, under 1% of the step) are not replaced.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _zero_gemms():
    """A ``C = 0`` function per dtype with the CBLAS GEMM signature of :mod:`minivae.kernels._blas`."""
    from numba import cfunc

    from minivae.kernels import _blas

    def make(sig):
        as_pointer = _blas._pointer_intrinsic(sig.args[6])

        def zero_c(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
            pc = as_pointer(c)
            for i in range(m):
                for j in range(n):
                    pc[i * ldc + j] = 0

        return _blas._Address(cfunc(sig)(zero_c).address, sig, "C = 0")

    return {dtype: make(sig) for dtype, sig in _blas.SIGNATURES.items()}


def measure(batch: int, rounds: int, steps: int) -> dict:
    """Median step times (seconds) with the real GEMM and with ``C = 0``, alternating in this process."""
    import time

    from minivae.kernels import _blas
    from minivae.models import ConvVAE
    from minivae.optim import Adam
    from minivae.train import train_step

    real, zero = dict(_blas.GEMM), _zero_gemms()
    rng = np.random.default_rng(0)
    x = (rng.random((batch, 1, 28, 28)) < 0.5).astype(np.float32)
    model = ConvVAE(latent_dim=2, rng=np.random.default_rng(0))
    opt = Adam(model.parameters(), lr=1e-3)
    times = {"gemm": [], "zero": []}
    try:
        for _ in range(3):
            train_step(model, opt, x, rng)
        for _ in range(rounds):
            for key, gemm in (("gemm", real), ("zero", zero)):
                _blas.GEMM.update(gemm)
                ts = []
                for _ in range(steps):
                    t0 = time.perf_counter()
                    train_step(model, opt, x, rng)
                    ts.append(time.perf_counter() - t0)
                times[key].append(float(np.median(ts)))
    finally:
        _blas.GEMM.update(real)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=15)
    args = p.parse_args(argv)
    from machine import header

    print(header())
    print(f"# command: python benchmarks/gemm_share.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"{'batch':>5s} {'step ms':>8s} {'step with C = 0 ms':>18s} {'GEMM ms':>8s} {'GEMM share':>10s}")
    for b in args.batch:
        r = measure(b, args.rounds, args.steps)
        g = r["gemm"] - r["zero"]
        print(f"{b:5d} {1e3 * r['gemm']:8.2f} {1e3 * r['zero']:18.2f} {1e3 * g:8.2f} {100 * g / r['gemm']:9.0f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
