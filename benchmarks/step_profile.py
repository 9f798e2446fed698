"""Where the conv VAE's training step spends its time, per parallel kernel call of the Numba CPU kernels.

    python benchmarks/step_profile.py                   # batch 32 and 128
    python benchmarks/step_profile.py --batch 64 --steps 100

Every Numba CPU kernel runs its work as one parallel call (``minivae.kernels._cpu_threads.run``); this script
wraps that function with a clock (``time.perf_counter`` around each call, in the calling thread, so each row is
the wall time of the call including the threads' launch and join) and trains the TF-tutorial conv VAE (latent 2,
Adam 1e-3, float32, random Bernoulli(0.5) images) for ``--steps`` steps after 5 warm-up steps. Printed per
batch size: the median step time, then one row per (chunk function, shape of its first array): milliseconds per
step and share of the step; the last row is everything outside those calls (the autograd engine, Adam, the
kernel wrappers, the dense layers' and the loss's NumPy work). The clock itself costs about a microsecond per
call (about 30 calls a step). Single runs on a shared machine: compare rows within a run, not across runs.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def profile(batch: int, steps: int) -> dict:
    """``{"step_s": median step seconds, "rows": [(chunk name, shape, seconds per step), ...] largest first}``."""
    from minivae.kernels import _cpu_conv, _cpu_elementwise, _cpu_threads
    from minivae.models import ConvVAE
    from minivae.optim import Adam
    from minivae.train import train_step

    totals = collections.defaultdict(float)
    real_run = _cpu_threads.run
    users = (_cpu_conv, _cpu_elementwise)  # the kernel modules that launch through run()

    def timed_run(chunk, bounds, *args):
        t0 = time.perf_counter()
        real_run(chunk, bounds, *args)
        shape = next((a.shape for a in args if isinstance(a, np.ndarray)), ())
        totals[(getattr(chunk, "py_func", chunk).__name__, shape)] += time.perf_counter() - t0

    rng = np.random.default_rng(0)
    x = (rng.random((batch, 1, 28, 28)) < 0.5).astype(np.float32)
    model = ConvVAE(latent_dim=2, rng=np.random.default_rng(0))
    opt = Adam(model.parameters(), lr=1e-3)
    for m in users:
        m.run = timed_run
    try:
        for _ in range(5):
            train_step(model, opt, x, rng)
        totals.clear()
        ts = []
        for _ in range(steps):
            t0 = time.perf_counter()
            train_step(model, opt, x, rng)
            ts.append(time.perf_counter() - t0)
    finally:
        for m in users:
            m.run = real_run
    assert _cpu_threads.run is real_run
    rows = sorted(((name, shape, t / steps) for (name, shape), t in totals.items()), key=lambda r: -r[2])
    return {"step_s": float(np.median(ts)), "mean_step_s": float(np.mean(ts)), "rows": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    p.add_argument("--steps", type=int, default=60)
    args = p.parse_args(argv)
    from machine import header

    print(header())
    print(f"# command: python benchmarks/step_profile.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    for b in args.batch:
        r = profile(b, args.steps)
        mean = r["mean_step_s"]
        print(f"\n## batch {b}: step {1e3 * r['step_s']:.2f} ms (median of {args.steps}), mean {1e3 * mean:.2f} ms")
        print(f"{'chunk function':32s} {'first array':20s} {'ms/step':>8s} {'of step':>8s}")
        for name, shape, t in r["rows"]:
            print(f"{name:32s} {str(shape):20s} {1e3 * t:8.3f} {100 * t / mean:7.1f}%")
        rest = mean - sum(t for _, _, t in r["rows"])
        print(f"{'outside the parallel calls':53s} {1e3 * rest:8.3f} {100 * rest / mean:7.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
