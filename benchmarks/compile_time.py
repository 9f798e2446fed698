"""Compile time of the Numba CPU kernels: cold (a fresh, empty Numba cache) and cached (the cache filled).

    python benchmarks/compile_time.py                        # this checkout, 3 rounds
    python benchmarks/compile_time.py --repo /path/to/other/checkout --rounds 1

Each measurement is a fresh process with ``NUMBA_CACHE_DIR`` set to a new temporary folder: it imports minivae
from one source tree, then calls every CPU kernel a training step of the conv VAE calls (and the other paths of
the convolutions: unfolded and folded images, a 1-channel weight gradient, the shared transposed backward), once
each, in float32, the dtype training uses; the first calls compile (cold). A second process with the same cache
folder makes the same calls: its first calls load the compiled code from the cache (cached). Printed: seconds of
the import and of the first calls, cold and cached, the median over ``--rounds`` rounds; the machine and the CPU
flags LLVM compiles for. The cached calls are split into Numba's own first use in a process (its registries, which
every Numba program loads at its first jitted call: timed on one tiny jitted function) and the kernels' loads.
Targets (issue 22): cold under 8 s, cached under 0.5 s.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import minivae.kernels.cpu as cpu
cold = cpu.cache_is_cold() if hasattr(cpu, "cache_is_cold") else None  # (older trees: none)
t1 = time.perf_counter()
try:  # Numba's own first use in a process (it loads its registries, and SciPy for np.dot): one tiny jitted function
    from minivae.kernels._cpu_conv_jit import _fold_block
except ImportError:  # (older trees)
    from minivae.kernels._cpu_passes import _fold_block
_fold_block(1, 2, 3, 4)
t1b = time.perf_counter()
r = np.random.default_rng(0)
f = lambda *s: r.standard_normal(s).astype(np.float32)
x, w, gy = f(8, 8, 14, 14), f(16, 8, 3, 3), f(8, 16, 7, 7)
x1, w1, g1 = f(8, 1, 28, 28), f(32, 1, 4, 4), f(8, 32, 14, 14)
big = f(32, 32, 14, 14)  # enough elements for every parallel driver to launch
cpu.conv2d_forward(x, w, f(16), (2, 2), (1, 1))                         # folded (L < 64)
cpu.conv2d_forward(x1, w1, f(32), (2, 2), (1, 1))                       # per example
cpu.conv2d_backward_weight(g1, x1, (4, 4), (2, 2), (1, 1))              # 1 input channel: per example
cpu.conv2d_backward_weight(gy, x, (3, 3), (2, 2), (1, 1))               # folded
cpu.conv2d_backward_bias(big)
cpu.conv_transpose2d_forward(gy, w, f(8), (2, 2), (1, 1), (1, 1))
cpu.conv_transpose2d_backward(x, gy, w, (2, 2), (1, 1))
cpu.dense_forward(f(8, 32), f(4, 32), f(4)); cpu.dense_backward(f(8, 4), f(8, 32), f(4, 32))
cpu.relu_forward(big); cpu.relu_backward(big, big)
b = f(32, 784)
cpu.bce_with_logits_forward(b, b); cpu.bce_with_logits_backward(b, b, b)
cpu.reparameterize_kl_forward(f(8, 2), f(8, 2), f(8, 2))
cpu.reparameterize_kl_backward(f(8, 2), f(8), f(8, 2), f(8, 2), f(8, 2))
try:  # (older trees have no jitted Adam)
    from minivae.kernels import _cpu_adam
    _cpu_adam.adam_step(f(10), f(10), f(10), np.abs(f(10)), 1e-3, 0.9, 0.999, 1e-8, 1)
except ImportError:
    pass
t2 = time.perf_counter()
try:  # the ReLU epilogue drivers of the compiled step (relu=True), where the kernels have them
    cpu.conv2d_forward(x, w, f(16), (2, 2), (1, 1), relu=True)
    cpu.conv_transpose2d_forward(gy, w, f(8), (2, 2), (1, 1), (1, 1), relu=True)
except TypeError:
    pass
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "calls_s": t2 - t1, "first_use_s": t1b - t1, "relu_s": t3 - t2,
                  "cache_is_cold": cold}))
"""


def _child(repo: Path, cache: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(repo)}
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=repo, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"compile_time.py: the child process for {repo} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(repo: Path) -> dict:
    """One round: ``{"cold": {...}, "cached": {...}}`` seconds, a fresh cache folder for this round."""
    with tempfile.TemporaryDirectory(prefix="minivae-numba-cache-") as cache:
        return {"cold": _child(repo, cache), "cached": _child(repo, cache)}


def cpu_flags() -> str:
    """The SIMD flags of /proc/cpuinfo that matter to LLVM's code (``?`` where it cannot be read)."""
    try:
        line = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags"))
    except (OSError, StopIteration):
        return "?"
    have = set(line.split(":", 1)[1].split())
    wanted = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "amx_tile"]
    return " ".join(f for f in wanted if f in have) + " (of " + " ".join(wanted) + ")"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, action="append", help="source tree(s) to measure (default: this checkout)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    repos = [r.resolve() for r in (args.repo or [ROOT])]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine import header

    print(f"# command: python benchmarks/compile_time.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(header())
    print(f"# flags  {cpu_flags()}")
    print("# seconds, median of rounds (each round a fresh NUMBA_CACHE_DIR): import of minivae.kernels.cpu, then the"
          " first call of every CPU kernel (float32)")
    print(f"{'source tree':40s} {'import s':>9s} {'cold calls s':>13s} {'cached calls s':>15s}   "
          "per-round cold | cached")
    for repo in repos:
        rounds = [measure(repo) for _ in range(args.rounds)]
        med = {k: statistics.median(r[k]["calls_s"] for r in rounds) for k in ("cold", "cached")}
        imp = statistics.median(r["cached"]["import_s"] for r in rounds)
        per = " ".join(f"{r['cold']['calls_s']:.2f}" for r in rounds) + " | " + \
            " ".join(f"{r['cached']['calls_s']:.3f}" for r in rounds)
        print(f"{str(repo)[-40:]:40s} {imp:9.2f} {med['cold']:13.2f} {med['cached']:15.3f}   {per}")
        first = statistics.median(r["cached"]["first_use_s"] for r in rounds)
        print(f"{'':40s} of the cached calls, {first:.3f} s is Numba's own first use in a process (its registries:"
              f" the first jitted function, a tiny one), {med['cached'] - first:.3f} s the kernels")
        relu = {k: statistics.median(r[k]["relu_s"] for r in rounds) for k in ("cold", "cached")}
        print(f"{'':40s} then relu=True (the compiled step's epilogue drivers): {relu['cold']:.2f} s cold, "
              f"{relu['cached']:.2f} s cached")
        said = {k: {r[k]["cache_is_cold"] for r in rounds} for k in ("cold", "cached")}
        print(f"{'':40s} cpu.cache_is_cold() said {said['cold']} before the cold calls, {said['cached']} before the "
              f"cached ones")
    return 0


if __name__ == "__main__":
    sys.exit(main())
