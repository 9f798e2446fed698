"""The cost law of automatic differentiation, measured: a full Jacobian of f: R^n -> R^m takes n forward-mode
passes (one JVP per input direction) or m reverse-mode passes (one VJP per output), so forward mode wins for
tall functions (n << m) and reverse mode for wide ones (n >> m) (Griewank & Walther 2008, ch. 3).

    python benchmarks/jacobian_modes.py                    # table + docs/jacobian_modes.png
    python benchmarks/jacobian_modes.py --quick            # smaller sweep

Functions: an MLP ``f(x) = W2 tanh(W1 x + b1)`` (hidden 64, float64) swept over n with m = 256 (tall) and over m
with n = 256 (wide); and the conv VAE's decoder (TF-tutorial ``ConvVAE``) as a function of one latent vector z
(n = latent size, m = 784 pixels' logits). ``minivae.autograd.functional.jacobian(strategy=...)``; seconds are
medians of ``--repeats`` runs, interleaved (forward, reverse, forward, ...), after one warm-up call each.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import minivae as mv  # noqa: E402  (after the sys.path / environment set-up above)
import minivae.functional as F  # noqa: E402  (after the sys.path / environment set-up above)
from minivae.autograd import functional as AF  # noqa: E402  (after the sys.path / environment set-up above)

STRATEGIES = ("forward-mode", "reverse-mode")


def mlp(n, m, hidden=64, seed=0):
    rng = np.random.default_rng(seed)
    w1 = mv.Tensor(rng.standard_normal((hidden, n)) / np.sqrt(n))
    b1 = mv.Tensor(rng.standard_normal(hidden) * 0.1)
    w2 = mv.Tensor(rng.standard_normal((m, hidden)) / np.sqrt(hidden))

    def f(x):
        return F.reshape(F.linear(F.tanh(F.linear(F.reshape(x, (1, n)), w1, b1)), w2), (m,))
    return f, rng.standard_normal(n)


def decoder(latent, seed=0):
    from minivae.models import ConvVAE

    model = ConvVAE(latent_dim=latent, dtype=np.float64, rng=np.random.default_rng(seed))

    def f(z):
        return F.reshape(model.decode(F.reshape(z, (1, latent))), (784,))
    return f, np.random.default_rng(seed + 1).standard_normal(latent)


def measure(f, x0, repeats):
    """{strategy: median seconds}, and the largest difference between the two Jacobians."""
    times = {s: [] for s in STRATEGIES}
    jac = {s: AF.jacobian(f, mv.Tensor(x0), strategy=s).data for s in STRATEGIES}  # warm-up, and the values
    for _ in range(repeats):
        for s in STRATEGIES:
            t0 = time.perf_counter()
            AF.jacobian(f, mv.Tensor(x0), strategy=s)
            times[s].append(time.perf_counter() - t0)
    diff = float(np.abs(jac["forward-mode"] - jac["reverse-mode"]).max())
    return {s: statistics.median(v) for s, v in times.items()}, diff


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = [("MLP, tall: m = 256, sweep n", "tall", "n (inputs)"), ("MLP, wide: n = 256, sweep m", "wide",
                                                                         "m (outputs)"),
              ("conv VAE decoder: m = 784, sweep n = latent", "decoder", "n (latent size)")]
    for ax, (title, kind, xlabel) in zip(axes, panels):
        sel = [r for r in rows if r["kind"] == kind]
        xs = [r["n"] if kind != "wide" else r["m"] for r in sel]
        for s, style in zip(STRATEGIES, ("o-", "s--")):
            ax.plot(xs, [r[s] for r in sel], style, label=f"{s} ({'n' if s == 'forward-mode' else 'm'} passes)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("seconds per Jacobian")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Full Jacobian by forward mode (one JVP per input) vs reverse mode (one VJP per output), minivae, "
                 "float64, CPU", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a smaller sweep (for tests and a first look)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--plot", default=str(ROOT / "docs" / "jacobian_modes.png"))
    args = p.parse_args(argv)
    from machine import header

    print(header())
    sizes = [2, 8, 32] if args.quick else [2, 4, 8, 16, 32, 64]
    big = 64 if args.quick else 256
    latents = [2, 8] if args.quick else [2, 4, 8, 16]
    cases = [("tall", n, big, lambda n=n: mlp(n, big)) for n in sizes]
    cases += [("wide", big, m, lambda m=m: mlp(big, m)) for m in sizes]
    cases += [("decoder", d, 784, lambda d=d: decoder(d)) for d in latents]
    print(f"\n{'function':<9} {'n':>5} {'m':>5} {'fwd passes':>11} {'rev passes':>11} {'forward s':>10} "
          f"{'reverse s':>10} {'rev/fwd':>8} {'max |J_f - J_r|':>16}")
    rows = []
    for kind, n, m, make in cases:
        f, x0 = make()
        t, diff = measure(f, x0, args.repeats)
        rows.append({"kind": kind, "n": n, "m": m, **t})
        print(f"{kind:<9} {n:>5} {m:>5} {n:>11} {m:>11} {t['forward-mode']:>10.4f} {t['reverse-mode']:>10.4f} "
              f"{t['reverse-mode'] / t['forward-mode']:>8.2f} {diff:>16.1e}")
    if args.plot:
        plot(rows, args.plot)
        print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
