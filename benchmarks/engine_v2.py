"""Engine v2 costs: the first-order training step before and after the redesign, and a double backward.

    git worktree add /tmp/minivae-base bf58f91        # main before engine v2
    python benchmarks/engine_v2.py --baseline /tmp/minivae-base --rounds 5

Part 1 (step): the TF-tutorial conv VAE (``ConvVAE``, latent 2), ``minivae.train.train_step`` (forward, backward,
Adam), Numba CPU kernels, at batch 32 and 128 on binarised Fashion-MNIST (random binary images with
``--synthetic``). Each measurement is a fresh process importing minivae from one source tree (``--baseline`` or
this checkout); the processes of the two trees alternate, ``--rounds`` times, so machine load hits both alike.
Reported: median milliseconds per step over the rounds, and new / baseline (> 1: the new engine is slower).
Warm-up steps (JIT cache load) are not counted.

Part 2 (double backward, this checkout only): one gradient-penalty step on the conv VAE's decoder,
``loss = BCE(decoder(z), x) / N`` and ``loss + lambda * ||d loss / d z||^2``: the first backward with
``create_graph=True``, then a backward through the penalty, timed against one plain backward of ``loss``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: a child process's set-up (also benchmarks/step_ab.py's): the conv VAE, Adam and 8 batches, 3 warm-up steps
SETUP = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from minivae.models import ConvVAE
from minivae.optim import Adam
from minivae.train import train_step
batch, synthetic = {batch}, {synthetic}
if synthetic:
    x = (np.random.default_rng(0).random((batch * 8, 1, 28, 28)) < 0.5).astype(np.float32)
else:
    from minivae.data import binarize, load_dataset, to_float
    x = binarize(to_float(load_dataset("fashion-mnist", "train")[0][: batch * 8]), 0.5)
model = ConvVAE(latent_dim=2, rng=np.random.default_rng(0))
opt = Adam(model.parameters(), lr=1e-4)
rng = np.random.default_rng(0)
for s in range(3):
    train_step(model, opt, x[s * batch:(s + 1) * batch], rng)
"""

CHILD = SETUP + r"""
times, cpu = [], []
for s in range({steps}):
    b = x[(s % 8) * batch:((s % 8) + 1) * batch]
    t0, c0 = time.perf_counter(), time.process_time()
    train_step(model, opt, b, rng)
    times.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
import minivae
print(json.dumps({{"ms": 1e3 * sorted(times)[len(times) // 2], "cpu_ms": 1e3 * sorted(cpu)[len(cpu) // 2],
                  "file": minivae.__file__}}))
"""


def step_ms(root: Path, batch: int, steps: int, synthetic: bool, threads: int | None) -> tuple[float, float]:
    """(median wall ms, median CPU ms of the process) per step in a fresh process importing ``root``."""
    import os

    code = CHILD.format(root=str(root), batch=batch, steps=steps, synthetic=synthetic)
    env = dict(os.environ, **({"NUMBA_NUM_THREADS": str(threads)} if threads else {}))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=root,
                         env=env)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if not res["file"].startswith(str(root)):
        raise RuntimeError(f"imported minivae from {res['file']}, not from {root}")
    return res["ms"], res["cpu_ms"]


def double_backward(batch: int, repeats: int, synthetic: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import minivae.functional as F
    from minivae import Tensor, autograd
    from minivae.autograd.engine import _topological_order
    from minivae.models import ConvVAE

    model = ConvVAE(latent_dim=2, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = Tensor((rng.random((batch, 1, 28, 28)) < 0.5).astype(np.float32))
    z0 = rng.standard_normal((batch, 2)).astype(np.float32)

    def loss_of(z):
        logits = model.decode(z)
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") * (1.0 / batch)

    plain, penalty, nodes = [], [], {}
    for r in range(repeats + 1):
        model.zero_grad()
        z = Tensor(z0, requires_grad=True)
        loss = loss_of(z)
        t0 = time.perf_counter()
        loss.backward()
        t_plain = time.perf_counter() - t0
        model.zero_grad()
        z = Tensor(z0, requires_grad=True)
        loss = loss_of(z)
        nodes["forward graph"] = len(_topological_order([loss._ctx]))
        t0 = time.perf_counter()
        (gz,) = autograd.grad(loss, z, create_graph=True)
        total = loss + (gz * gz).sum() * 0.1
        total.backward()
        t_pen = time.perf_counter() - t0
        nodes["with the recorded backward"] = len(_topological_order([total._ctx]))
        if r:  # the first repeat warms the JIT cache up
            plain.append(t_plain)
            penalty.append(t_pen)
    return {"plain_ms": 1e3 * statistics.median(plain), "penalty_ms": 1e3 * statistics.median(penalty),
            "nodes": nodes}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", type=Path, default=None, help="source tree of the engine before v2")
    p.add_argument("--candidate", type=Path, default=ROOT,
                   help="source tree measured against the baseline (default: this checkout)")
    p.add_argument("--rounds", type=int, default=5, help="alternating process pairs per batch size")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    p.add_argument("--steps", type=int, default=30, help="timed steps per process")
    p.add_argument("--synthetic", action="store_true", help="random binary images instead of Fashion-MNIST")
    p.add_argument("--threads", type=int, default=None,
                   help="NUMBA_NUM_THREADS of the step processes (1 makes process CPU time a steadier measure on "
                        "a loaded machine)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine import header

    print(header())
    if args.baseline is not None:
        print(f"\n# baseline {args.baseline}, candidate (v2) {args.candidate}")
        print(f"# training step, median of {args.rounds} alternating process pairs, {args.steps} steps each, "
              f"NUMBA_NUM_THREADS={args.threads or 'default'}: wall ms and process CPU ms per step")
        print(f"{'batch':>6} {'base wall':>10} {'v2 wall':>9} {'v2/base':>8} {'base CPU':>9} {'v2 CPU':>8} "
              f"{'v2/base':>8}   per-pair wall ratios | CPU ratios")
        for batch in args.batch_sizes:
            base, new = [], []
            for _ in range(args.rounds):
                base.append(step_ms(args.baseline.resolve(), batch, args.steps, args.synthetic, args.threads))
                new.append(step_ms(args.candidate.resolve(), batch, args.steps, args.synthetic, args.threads))
            wall = [n[0] / b[0] for n, b in zip(new, base)]
            cpu = [n[1] / b[1] for n, b in zip(new, base)]
            med = statistics.median
            print(f"{batch:>6} {med(b[0] for b in base):>10.2f} {med(n[0] for n in new):>9.2f} {med(wall):>8.3f} "
                  f"{med(b[1] for b in base):>9.2f} {med(n[1] for n in new):>8.2f} {med(cpu):>8.3f}   "
                  + " ".join(f"{r:.3f}" for r in wall) + " | " + " ".join(f"{r:.3f}" for r in cpu))
    print("\n# double backward (gradient penalty on the decoder input z), this checkout, median of 10 (ms)")
    print(f"{'batch':>6} {'backward ms':>12} {'grad(create_graph)+backward ms':>31} {'ratio':>6}  graph nodes")
    for batch in args.batch_sizes:
        r = double_backward(batch, 10, args.synthetic)
        print(f"{batch:>6} {r['plain_ms']:>12.2f} {r['penalty_ms']:>31.2f} {r['penalty_ms'] / r['plain_ms']:>6.2f}  "
              + ", ".join(f"{k}: {v}" for k, v in r["nodes"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
