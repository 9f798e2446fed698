"""The eager training step of two source trees in lockstep: two live processes take turns, one step each.

    git worktree add /tmp/minivae-base 0b737f8
    python benchmarks/step_ab.py --baseline /tmp/minivae-base --steps 200

Why lockstep: this machine is a VM on a shared host whose speed drifts by 30% within a minute and by 4x over a
day, so timings of processes run one after the other (``engine_v2.py``) differ by more than the 3% a change is
asked to stay within. Here both trees are loaded at once, each in its own process (one package name per process),
and the parent hands the CPU to one, then the other, step by step (ABBA order: neither always goes first); only
one computes at a time, so both see the same host conditions to within a step. Reported per batch size: the
median step time of each tree (ms), candidate / baseline of the medians, and the median of the per-pair ratios
with its interquartile range.

The step: the TF-tutorial conv VAE (``ConvVAE``, latent 2), ``minivae.train.train_step`` (eager: forward,
backward, Adam), Numba CPU kernels, float32, binarised Fashion-MNIST (random binary images with
``--synthetic``). Warm-up steps (JIT cache load) are not counted.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine_v2 import SETUP  # noqa: E402  (after benchmarks/ is on sys.path)

# the set-up of engine_v2.py's children (3 warm-up steps), 2 more warm-up steps, then one step per "go" line
CHILD = SETUP + r"""
for s in range(2):
    train_step(model, opt, x[s * batch:(s + 1) * batch], rng)
print("ready", flush=True)
s = 0
for line in sys.stdin:
    if line.strip() != "go":
        break
    b = x[(s % 8) * batch:((s % 8) + 1) * batch]
    t0 = time.perf_counter()
    train_step(model, opt, b, rng)
    print(time.perf_counter() - t0, flush=True)
    s += 1
"""


def _spawn(root: Path, batch: int, synthetic: bool) -> subprocess.Popen:
    code = CHILD.format(root=str(root), batch=batch, synthetic=synthetic)
    p = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, bufsize=1)
    line = p.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"{root}: the child did not start (said {line!r}); run it alone to see its error")
    return p


def _step(p: subprocess.Popen) -> float:
    p.stdin.write("go\n")
    p.stdin.flush()
    return float(p.stdout.readline())


def lockstep(baseline: Path, candidate: Path, batch: int, steps: int, synthetic: bool) -> dict:
    """``steps`` alternating steps of each tree; returns their times (seconds) and per-pair ratios."""
    base, cand = _spawn(baseline, batch, synthetic), _spawn(candidate, batch, synthetic)
    tb, tc = [], []
    try:
        for i in range(steps):
            if i % 2 == 0:
                tb.append(_step(base))
                tc.append(_step(cand))
            else:
                tc.append(_step(cand))
                tb.append(_step(base))
    finally:
        for p in (base, cand):
            p.stdin.close()
            p.wait()
    ratios = [c / b for b, c in zip(tb, tc)]
    return {"base": tb, "cand": tc, "ratios": ratios}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", type=Path, required=True, help="source tree to compare against")
    p.add_argument("--candidate", type=Path, default=ROOT, help="source tree to measure (default: this checkout)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    p.add_argument("--steps", type=int, default=200, help="timed steps per tree and batch size")
    p.add_argument("--synthetic", action="store_true", help="random binary images instead of Fashion-MNIST")
    args = p.parse_args(argv)
    from machine import header

    print(header())
    print(f"# baseline {args.baseline}, candidate {args.candidate}; {args.steps} lockstep steps each (ABBA), "
          f"{'random binary images' if args.synthetic else 'binarised Fashion-MNIST'}")
    print(" batch  base ms  cand ms  cand/base (medians)  median pair ratio  [q1, q3]")
    for batch in args.batch_sizes:
        r = lockstep(args.baseline, args.candidate, batch, args.steps, args.synthetic)
        mb, mc = statistics.median(r["base"]) * 1e3, statistics.median(r["cand"]) * 1e3
        q1, q2, q3 = statistics.quantiles(r["ratios"], n=4)
        print(f" {batch:5d}  {mb:7.2f}  {mc:7.2f}  {mc / mb:19.3f}  {q2:17.3f}  [{q1:.3f}, {q3:.3f}]", flush=True)


if __name__ == "__main__":
    main()
