"""The conv VAE training step three ways, in interleaved fresh processes: minivae eager (op by op), minivae
compiled (``minivae.compile``: the plan replayed), PyTorch CPU eager; then the replay's time at batch 2 on one
thread, and the peak memory of eager and compiled steps (tracemalloc, NumPy's allocations).

    python benchmarks/compiled_step.py                     # batch 32 and 128, 5 rounds
    python benchmarks/compiled_step.py --batch 32 --rounds 3 --steps 20

Each round runs the three processes one after the other (the order rotates), each timing ``--steps`` steps after
three warm-up steps (the JIT cache load, and for the compiled step its two recording calls: compile time is
reported apart, as the warm-up's wall time); the ratios are taken per round, the medians over rounds reported.
Threads: minivae's kernels and PyTorch both use their defaults (2 on the development machine).
Data: random Bernoulli(0.5) images (the step's cost does not depend on the pixel values).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, statistics, sys, time, tracemalloc
import numpy as np
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
kind, batch, steps = {kind!r}, {batch}, {steps}
host = kind.endswith("-host")
kind = kind.replace("-host", "")
kernel_time = [0.0]
if host:  # time every kernel call (wrapped before the model and the plan look them up)
    from minivae import kernels
    from minivae.kernels import _cpu_adam
    import functools
    def timed(fn):
        @functools.wraps(fn)  # (inspect.signature still sees out= and relu=: the passes look)
        def call(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                kernel_time[0] += time.perf_counter() - t0
        return call
    get = kernels.get
    kernels.get = lambda name, device="cpu": timed(get(name, device))
    for name in ("adam_step", "adam_step_flat"):
        setattr(_cpu_adam, name, timed(getattr(_cpu_adam, name)))
rng = np.random.default_rng(0)
x = (rng.random((8, batch, 1, 28, 28)) < 0.5).astype(np.float32)
if kind == "torch":
    import torch
    from pytorch_reference import build_torch_conv_vae, torch_train_step
    torch.manual_seed(0)
    model = build_torch_conv_vae(2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    step = lambda b: torch_train_step(model, opt, torch.from_numpy(b))
else:
    from minivae.models import ConvVAE
    from minivae.optim import Adam
    from minivae.steps import ELBOStep, sample_eps
    model = ConvVAE(latent_dim=2, rng=np.random.default_rng(0))
    opt = Adam(model.parameters(), lr=1e-4)
    runner = ELBOStep(model, opt, compiled=(kind == "compiled"))
    step = lambda b: runner(b, sample_eps(rng, len(b), 2, np.float32, "cpu"))
t0 = time.perf_counter()
for s in range(3):
    step(x[s % 8])
warm = time.perf_counter() - t0
times, ktimes = [], []
for s in range(steps):
    kernel_time[0] = 0.0
    t0 = time.perf_counter()
    step(x[s % 8])
    times.append(time.perf_counter() - t0)
    ktimes.append(kernel_time[0])
peak = None
if kind != "torch":
    tracemalloc.start()
    step(x[0])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
print(json.dumps({{"ms": 1e3 * statistics.median(times), "warm_s": warm, "peak_bytes": peak,
                  "kernel_ms": 1e3 * statistics.median(ktimes)}}))
"""


def child(kind: str, batch: int, steps: int, env=None) -> dict:
    code = CHILD.format(root=str(ROOT), bench=str(ROOT / "benchmarks"), kind=kind, batch=batch, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine import header  # the machine header every benchmark prints

    print(header())
    kinds = ["eager", "compiled", "torch"]
    results = {}
    for batch in args.batch:
        rows = []
        for r in range(args.rounds):
            order = kinds[r % 3:] + kinds[:r % 3]
            rows.append({k: child(k, batch, args.steps) for k in order})
        results[batch] = rows
        med = {k: statistics.median(row[k]["ms"] for row in rows) for k in kinds}
        c_e = [row["compiled"]["ms"] / row["eager"]["ms"] for row in rows]
        c_t = [row["compiled"]["ms"] / row["torch"]["ms"] for row in rows]
        e_t = [row["eager"]["ms"] / row["torch"]["ms"] for row in rows]
        print(f"\nbatch {batch}: median ms per step over {args.rounds} rounds ({args.steps} steps each)")
        print(f"  eager {med['eager']:.2f} ms   compiled {med['compiled']:.2f} ms   PyTorch {med['torch']:.2f} ms")
        print(f"  compiled/eager  median {statistics.median(c_e):.3f}  per round {' '.join(f'{v:.3f}' for v in c_e)}")
        print(f"  compiled/torch  median {statistics.median(c_t):.3f}  per round {' '.join(f'{v:.3f}' for v in c_t)}")
        print(f"  eager/torch     median {statistics.median(e_t):.3f}  per round {' '.join(f'{v:.3f}' for v in e_t)}")
        print(f"  warm-up (3 steps: JIT cache load; compiled: + the two recording calls) s: eager "
              f"{statistics.median(row['eager']['warm_s'] for row in rows):.2f}, compiled "
              f"{statistics.median(row['compiled']['warm_s'] for row in rows):.2f}")
        print(f"  peak traced memory of one step (tracemalloc, MiB): eager "
              f"{statistics.median(row['eager']['peak_bytes'] for row in rows) / 2**20:.2f}, compiled "
              f"{statistics.median(row['compiled']['peak_bytes'] for row in rows) / 2**20:.2f}")
    import os

    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    b2 = {k: child(k, 2, 200, env=env) for k in ("eager-host", "compiled-host")}
    print("\nbatch 2, one thread, median of 200 steps (kernel time: inside the kernel functions of minivae.kernels "
          "and the fused Adam, timed around each call; host time: the rest)")
    for k in ("eager", "compiled"):
        r = b2[f"{k}-host"]
        print(f"  {k:9s} step {r['ms']:.3f} ms   in kernels {r['kernel_ms']:.3f} ms   "
              f"host {r['ms'] - r['kernel_ms']:.3f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": results, "batch2_one_thread_ms": b2}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
