"""The conv VAE training step, minivae against PyTorch CPU, in interleaved process pairs; and the SGEMM peak.

    python benchmarks/step_pairs.py                          # batch 32 and 128, 3 pairs each
    python benchmarks/step_pairs.py --batch 128 --pairs 5 --steps 40 --torch-threads 1

Why pairs: on a shared machine the load changes from one minute to the next. Each round ("pair") runs
minivae (the default Numba CPU kernels), PyTorch with its default threads, PyTorch on one thread and PyTorch
held to AVX2 (see :func:`run_pairs`) in four fresh processes, one after the other (the order rotates between rounds), and reports the ratios of the median
step times; the median ratio over the rounds is the result. Each process trains the TF-tutorial conv VAE (latent 2, Adam 1e-3, float32) on the first
``batch * steps`` binarised Fashion-MNIST training images (``--synthetic``: random Bernoulli(0.5) images),
two warm-up steps first (JIT cache load, allocator), then ``--steps`` timed steps (``time.perf_counter``
around each ``train_step``).

The SGEMM peak: NumPy ``float32`` 2048 x 2048 x 2048 matmul on NumPy's BLAS with its default threads, in a
fresh process run right after each pair (median of 7 after 2 warm-up calls); a step's GFLOP/s is
:func:`step_flops` over its median time, and its fraction of the peak uses the peak of the same pair.

FLOPs are counted analytically (:func:`step_flops`): 2 per multiply-add of every convolution and dense
layer, forward, input gradient (not for the data) and weight gradient; elementwise work is not counted.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: the conv VAE's layers with weights: (kind, C_in, C_out, H_in=W_in, H_out=W_out, kernel) - see kernels.py CONV
LAYERS = [("conv", 1, 32, 28, 13, 3), ("conv", 32, 64, 13, 6, 3), ("dense", 2304, 4, 1, 1, 1),
          ("dense", 2, 1568, 1, 1, 1), ("convT", 32, 64, 7, 14, 3), ("convT", 64, 32, 14, 28, 3),
          ("convT", 32, 1, 28, 28, 3)]


def step_flops(batch: int, latent: int = 2) -> float:
    """FLOPs of one training step of the conv VAE at ``batch`` (forward + backward, the data's gradient not
    computed). Per layer, multiply-adds ``m``: conv ``C_out*C_in*k*k*H_out^2``, transposed conv
    ``C_in*C_out*k*k*H_in^2``, dense ``in*out``; forward, input gradient and weight gradient each cost ``2m``."""
    total = 0.0
    for i, (kind, ci, co, hin, hout, k) in enumerate(LAYERS):
        if kind == "dense":
            ci, co = (2304, 2 * latent) if i == 2 else (latent, 1568)
            m = ci * co
        elif kind == "conv":
            m = co * ci * k * k * hout * hout
        else:
            m = ci * co * k * k * hin * hin
        passes = 2 if i == 0 else 3  # the first layer's input gradient (the data's) is not computed
        total += passes * 2 * m
    return total * batch


# --------------------------------------------------------------------------- child processes

def _child_step(impl: str, batch: int, steps: int, synthetic: bool, torch_threads: int | None) -> dict:
    from train_epoch import load_data

    x = load_data(batch * (steps + 2), batch * (steps + 2) if synthetic else None)
    name, _, device = impl.partition("@")
    sync = None
    if name == "torch":
        import torch
        from pytorch_reference import build_torch_conv_vae, torch_train_step

        if torch_threads:
            torch.set_num_threads(torch_threads)
        dev = "cuda" if device == "cuda" else "cpu"
        torch.manual_seed(0)
        model = build_torch_conv_vae(2).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        if dev == "cuda":
            sync = torch.cuda.synchronize

        def step(b):
            torch_train_step(model, opt, torch.from_numpy(b).to(dev))
    else:
        from minivae import backend, kernels
        from minivae.models import ConvVAE
        from minivae.optim import Adam
        from minivae.train import train_step

        dev = device or "cpu"
        kernels.use(name, device=dev)
        model = ConvVAE(latent_dim=2, rng=np.random.default_rng(0))
        if dev != "cpu":
            model.to(dev)
            import cupy as cp

            sync = cp.cuda.get_current_stream().synchronize
        opt = Adam(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)

        def step(b):
            train_step(model, opt, backend.to_device(b, dev), rng)
    ts = []
    for s in range(0, len(x), batch):
        t0 = time.perf_counter()
        step(x[s:s + batch])
        if sync:
            sync()
        ts.append(time.perf_counter() - t0)
    ts = np.asarray(ts[2:]) * 1e3
    return dict(median_ms=float(np.median(ts)), min_ms=float(ts.min()), steps=len(ts))


def _child_gemm(n: int = 2048, repeats: int = 7) -> dict:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.copy()
    for _ in range(2):
        a @ b
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t0)
    return dict(gflops=2 * n ** 3 / float(np.median(ts)) / 1e9, n=n)


def _child_copy(mib: int, repeats: int = 7) -> dict:
    src = np.ones((mib << 20) // 4, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        ts.append(time.perf_counter() - t0)
    return dict(gbs=2 * src.nbytes / float(np.median(ts)) / 1e9, mib=mib)


def copy_bandwidth(mib: int = 256) -> float:
    """Memory bandwidth in GB/s (read + write) of a NumPy copy of ``mib`` MiB, one thread, fresh process."""
    return run_child("copy", str(mib))["gbs"]


def run_child(kind: str, *argv: str, env=None) -> dict:
    """Run this file as a child (``--_child kind ...``) in a fresh process and return its JSON result."""
    res = subprocess.run([sys.executable, __file__, "--_child", kind, *argv], capture_output=True, text=True,
                         env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


#: environment that keeps PyTorch's own kernels (ATen), oneDNN and MKL to AVX2, the instruction set NumPy's
#: OpenBLAS is held to by ``OPENBLAS_CORETYPE=Haswell`` (see ``--torch-isa``)
TORCH_AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def step_time(impl: str, batch: int, steps: int, synthetic: bool = False, torch_threads: int | None = None,
              env: dict | None = None) -> dict:
    argv = [impl, str(batch), str(steps), "1" if synthetic else "0", str(torch_threads or 0)]
    return run_child("step", *argv, env=None if env is None else {**os.environ, **env})


def gemm_peak(n: int = 2048) -> float:
    """Median GFLOP/s of NumPy's float32 ``n``-cube matmul in a fresh process (default BLAS threads)."""
    return run_child("gemm", str(n))["gflops"]


# --------------------------------------------------------------------------- pairs

def run_pairs(batch: int, pairs: int, steps: int, synthetic=False, torch_threads=None, gemm_n=2048,
              log=print) -> list[dict]:
    """``pairs`` interleaved rounds at ``batch``: minivae, PyTorch with ``torch_threads`` (default: its own
    count) and PyTorch on 1 thread, each in a fresh process, in an order that rotates between rounds, then a
    GEMM-peak process. ``ratio`` is minivae over PyTorch (default threads); ``ratio_best`` is minivae over the
    faster of the two PyTorch runs (on a loaded machine PyTorch's spinning OpenMP threads can make its
    default 2-thread run many times slower than 1 thread). A fourth process, PyTorch with its default threads
    held to AVX2 (:data:`TORCH_AVX2_ENV`), gives ``ratio_avx2``: the like-for-like comparison where the
    environment holds NumPy's OpenBLAS to AVX2 (``OPENBLAS_CORETYPE=Haswell``) on a CPU with AVX-512."""
    rows = []
    flops = step_flops(batch)
    impls = [("numba", None), ("torch", torch_threads), ("torch-1t", 1), ("torch-avx2", torch_threads)]
    for p in range(pairs):
        order = impls[p % len(impls):] + impls[:p % len(impls)]
        res = {label: step_time(label.split("-")[0], batch, steps, synthetic, threads,
                                env=TORCH_AVX2_ENV if label == "torch-avx2" else None)["median_ms"]
               for label, threads in order}
        peak = gemm_peak(gemm_n)
        mv, tt, t1, ta = res["numba"], res["torch"], res["torch-1t"], res["torch-avx2"]
        gf = flops / (mv / 1e3) / 1e9
        row = dict(batch=batch, pair=p, order="/".join(label for label, _ in order), minivae_ms=mv, torch_ms=tt,
                   torch_1t_ms=t1, torch_avx2_ms=ta, ratio=mv / tt, ratio_best=mv / min(tt, t1), ratio_avx2=mv / ta,
                   gemm_peak_gflops=peak,
                   minivae_gflops=gf, peak_fraction=gf / peak)
        rows.append(row)
        log(format_row(row))
    return rows


HEADER = (f"{'batch':>5s} {'pair':>4s} {'order':>34s} {'minivae ms':>10s} {'torch ms':>9s} {'torch 1t ms':>11s} "
          f"{'torch avx2 ms':>13s} {'ratio':>6s} {'ratio best':>10s} {'ratio avx2':>10s} {'GEMM peak GF/s':>14s} "
          f"{'minivae GF/s':>12s} {'of peak':>8s}")


def format_row(r: dict) -> str:
    return (f"{r['batch']:5d} {r['pair']:4d} {r['order']:>34s} {r['minivae_ms']:10.1f} {r['torch_ms']:9.1f} "
            f"{r['torch_1t_ms']:11.1f} {r['torch_avx2_ms']:13.1f} {r['ratio']:6.2f} {r['ratio_best']:10.2f} "
            f"{r['ratio_avx2']:10.2f} {r['gemm_peak_gflops']:14.0f} {r['minivae_gflops']:12.1f} "
            f"{100 * r['peak_fraction']:7.0f}%")


def summary(rows: list[dict]) -> dict:
    """Per batch: medians over the pairs of the ratios, the fraction of the GEMM peak and the step times."""
    out = {}
    for b in sorted({r["batch"] for r in rows}):
        rs = [r for r in rows if r["batch"] == b]
        keys = ("ratio", "ratio_best", "ratio_avx2", "peak_fraction", "minivae_ms", "torch_ms", "torch_1t_ms",
                "torch_avx2_ms", "gemm_peak_gflops")
        out[b] = {"pairs": len(rs), **{f"median_{k}": float(np.median([r[k] for r in rs]))
                                       for k in keys if all(k in r for r in rs)}}  # no torch: no torch keys
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=30, help="timed steps per process")
    p.add_argument("--synthetic", action="store_true", help="random Bernoulli(0.5) images instead of Fashion-MNIST")
    p.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--json", default=None)
    p.add_argument("--_child", nargs="+", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        kind, *rest = args._child
        if kind == "gemm":
            print(json.dumps(_child_gemm(int(rest[0]))))
        elif kind == "copy":
            print(json.dumps(_child_copy(int(rest[0]))))
        else:
            impl, batch, steps, synth, tthreads = rest
            print(json.dumps(_child_step(impl, int(batch), int(steps), synth == "1", int(tthreads) or None)))
        return 0
    from machine import header

    print(header())
    print(f"# command: python benchmarks/step_pairs.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"# OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; torch avx2: PyTorch held to AVX2 "
          f"({' '.join(f'{k}={v}' for k, v in TORCH_AVX2_ENV.items())}); ratio = minivae / torch median "
          "step time (< 1: minivae faster); ratio best = minivae / the faster of torch (default threads) and "
          "torch on 1 thread; ratio avx2 = minivae / torch avx2; of peak = minivae GFLOP/s / GEMM peak of the same round")
    print(HEADER)
    rows = []
    for b in args.batch:
        rows += run_pairs(b, args.pairs, args.steps, args.synthetic, args.torch_threads)
    for b, s in summary(rows).items():
        print(f"# batch {b}: median ratio {s['median_ratio']:.2f} (vs the faster PyTorch run: "
              f"{s['median_ratio_best']:.2f}; vs PyTorch held to AVX2: {s['median_ratio_avx2']:.2f}) over "
              f"{s['pairs']} rounds; median fraction of the GEMM peak "
              f"{100 * s['median_peak_fraction']:.0f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(rows=rows, summary=summary(rows)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
