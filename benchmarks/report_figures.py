"""Figures and FLOP/byte counts for benchmarks/report.py (matplotlib, Agg, PNG).

FLOPs are counted analytically, 2 per multiply-add (convolutions, dense layers); elementwise kernels count one
FLOP per arithmetic operation or transcendental per element (reparameterize + KL forward 8, backward 9; BCE
forward 7, backward 6; bias gradient 1). Bytes are the compulsory traffic: every input and output array read
or written once (what a kernel must move at least; im2col buffers and cache misses are not counted), so the
arithmetic intensity on the roofline is an upper bound on the real one.
"""
from __future__ import annotations

import numpy as np

ELEMENTWISE_FLOPS = {"reparameterize_kl_forward": 8, "reparameterize_kl_backward": 9,
                     "bce_with_logits_forward": 7, "bce_with_logits_backward": 6, "conv2d_backward_bias": 1}


def _conv_out(h, k, s, p):
    return (h + 2 * p - k) // s + 1


def kernel_flops(name: str, args: tuple) -> float:
    """FLOPs of one call of kernel ``name`` on ``args`` (the argument tuples of benchmarks/kernels.py cases)."""
    if name in ELEMENTWISE_FLOPS:
        return float(ELEMENTWISE_FLOPS[name] * args[0].size)
    if name == "dense_forward":
        x, w = args[0], args[1]
        return 2.0 * x.shape[0] * w.shape[0] * w.shape[1]
    if name == "dense_backward":
        gy, x = args[0], args[1]
        return 4.0 * gy.shape[0] * gy.shape[1] * x.shape[1] + gy.size
    if name == "conv2d_forward":
        x, w, _, s, p = args
        ho, wo = _conv_out(x.shape[2], w.shape[2], s[0], p[0]), _conv_out(x.shape[3], w.shape[3], s[1], p[1])
        return 2.0 * x.shape[0] * w.shape[0] * w.shape[1] * w.shape[2] * w.shape[3] * ho * wo
    if name in ("conv2d_backward_input", "conv2d_backward_weight"):
        gy = args[0]
        ci = args[1].shape[1]  # weight (C_out, C_in, k, k) or x (N, C_in, H, W)
        k = args[1].shape[2:] if name == "conv2d_backward_input" else args[2]
        return 2.0 * gy.shape[0] * gy.shape[1] * ci * k[0] * k[1] * gy.shape[2] * gy.shape[3]
    if name == "conv_transpose2d_forward":
        x, w = args[0], args[1]
        return 2.0 * x.shape[0] * w.shape[0] * w.shape[1] * w.shape[2] * w.shape[3] * x.shape[2] * x.shape[3]
    if name == "conv_transpose2d_backward":  # gx = conv2d(gy, W) and gW: two GEMMs of the forward's size
        x, w = args[1], args[2]
        return 4.0 * x.shape[0] * w.shape[0] * w.shape[1] * w.shape[2] * w.shape[3] * x.shape[2] * x.shape[3]
    raise KeyError(f"no FLOP count for kernel {name!r}")


def kernel_bytes(args: tuple, outputs) -> float:
    """Compulsory bytes: every array argument and every output once."""
    outs = outputs if isinstance(outputs, tuple) else (outputs,)
    return float(sum(a.nbytes for a in args if hasattr(a, "nbytes")) + sum(o.nbytes for o in outs))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _log_y_axes(ax, xlabel, ylabel, title, **legend) -> None:
    """Log y axis, labels, title, legend and a grid on both axes' ticks."""
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(**legend)
    ax.grid(which="both", alpha=0.3)


COLORS = {"reference": "#9e9e9e", "numba": "#1f77b4", "torch": "#d62728", "cupy@gpu": "#2ca02c",
          "numba@gpu": "#17becf", "reference@gpu": "#bcbd22", "torch@cuda": "#ff7f0e", "torch-1t": "#e377c2",
          "torch-avx2": "#8c564b"}


def kernel_bars(rows: list[dict], batch: int, path) -> None:
    """Grouped bars: per (layer, kernel), the median ms of each implementation (log scale)."""
    plt = _plt()
    rows = [r for r in rows if r["batch"] == batch]
    keys = list(dict.fromkeys((r["layer"], r["kernel"]) for r in rows))
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    ms = {(r["layer"], r["kernel"], r["impl"]): r["median_ms"] for r in rows}
    width = 0.8 / max(1, len(impls))
    fig, ax = plt.subplots(figsize=(max(8.0, 0.45 * len(keys) * max(1, len(impls)) / 2 + 4), 5.5))
    x = np.arange(len(keys))
    for i, impl in enumerate(impls):
        vals = [ms.get((layer, kernel, impl), np.nan) for layer, kernel in keys]
        ax.bar(x + (i - (len(impls) - 1) / 2) * width, vals, width, label=impl, color=COLORS.get(impl))
    short = {"conv2d_forward": "conv fwd", "conv2d_backward_input": "conv d/dx", "conv2d_backward_weight": "conv d/dW",
             "conv2d_backward_bias": "d/db", "conv_transpose2d_forward": "convT fwd",
             "conv_transpose2d_backward": "convT d/dx,dW",
             "dense_forward": "dense fwd", "dense_backward": "dense bwd", "reparameterize_kl_forward": "reparam fwd",
             "reparameterize_kl_backward": "reparam bwd", "bce_with_logits_forward": "BCE fwd",
             "bce_with_logits_backward": "BCE bwd"}
    ax.set_xticks(x)
    ax.set_xticklabels([f"{layer}\n{short.get(kernel, kernel)}" for layer, kernel in keys], rotation=90, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("median ms per call (log)")
    ax.set_title(f"Kernels at the conv VAE's shapes, batch {batch}, float32 (lower is better)")
    ax.legend()
    ax.grid(axis="y", which="both", alpha=0.3)
    _save(plt, fig, path)


def roofline(points: list[dict], peak_gflops: float, bandwidth_gbs: float, path) -> None:
    """Achieved GFLOP/s against arithmetic intensity (FLOP/byte), one marker per kernel call and
    implementation, under the roof ``min(peak, AI * bandwidth)``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ai = np.array([p["intensity"] for p in points] or [1.0])
    lo, hi = max(1e-2, ai.min() / 3), max(ai.max() * 3, 2 * peak_gflops / bandwidth_gbs)
    xs = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.plot(xs, np.minimum(peak_gflops, xs * bandwidth_gbs), "k-", lw=1.5,
            label=f"roof: SGEMM peak {peak_gflops:.0f} GFLOP/s, copy bandwidth {bandwidth_gbs:.0f} GB/s")
    for impl in dict.fromkeys(p["impl"] for p in points):
        pts = [p for p in points if p["impl"] == impl]
        ax.scatter([p["intensity"] for p in pts], [p["gflops"] for p in pts], s=22, label=impl,
                   color=COLORS.get(impl), alpha=0.85)
    top = max((p["flops"] for p in points), default=0.0)
    for p in points:
        if p["impl"] == "numba" and p["flops"] >= 0.5 * top:  # label the heaviest kernels only
            ax.annotate(f"{p['layer']} {p['kernel'].replace('conv_transpose2d', 'convT').replace('conv2d', 'conv')}",
                        (p["intensity"], p["gflops"]), fontsize=6, alpha=0.7, xytext=(3, -3),
                        textcoords="offset points")
    ax.set_xscale("log")
    _log_y_axes(ax, "arithmetic intensity (FLOP per compulsory byte)", "achieved GFLOP/s",
                "Roofline: every kernel, measured peak and bandwidth of the same run", fontsize=8, loc="lower right")
    _save(plt, fig, path)


def step_vs_batch(curves: dict, path) -> None:
    """Median training-step time per example against batch size, one line per implementation."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    for impl, pts in curves.items():
        bs = sorted(pts)
        ax.plot(bs, [pts[b] / b for b in bs], "o-", label=impl, color=COLORS.get(impl))
    ax.set_xscale("log", base=2)
    _log_y_axes(ax, "batch size", "ms per example (median step time / batch)",
                "Conv VAE training step against batch size (lower is better)")
    _save(plt, fig, path)


def jit_times(compile_res: dict, path) -> None:
    """Seconds to import and first-call the Numba CPU kernels: cold (empty cache) against cached load."""
    plt = _plt()
    labels = list(compile_res)
    imp = [compile_res[k]["import_s"] for k in labels]
    first = [compile_res[k]["first_calls_s"] for k in labels]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    y = np.arange(len(labels))
    ax.barh(y, imp, color="#9e9e9e", label="import minivae.kernels.cpu")
    ax.barh(y, first, left=imp, color="#1f77b4", label="first call of every kernel")
    for i in range(len(labels)):
        ax.text(imp[i] + first[i], i, f" {imp[i] + first[i]:.2f} s", va="center", fontsize=9)
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_xlabel("seconds (fresh process)")
    ax.set_title("Numba JIT: compile (empty cache) against cached load")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xlim(0, 1.25 * max(i + f for i, f in zip(imp, first)))
    _save(plt, fig, path)
