"""The CPU (and GPU, where present) benchmark report: writes ``benchmarks/report/README.md`` and its PNG figures.

    python benchmarks/report.py                 # the full report (about 5 minutes on the 2-core machine)
    python benchmarks/report.py --tiny --out /tmp/r   # a seconds-long smoke run (the test suite runs it)
    make bench

What it measures, each in fresh processes (see the scripts it reuses):

* the machine: benchmarks/machine.py's header; NumPy's float32 GEMM peak (2048-cube matmul, default BLAS
  threads) and the memory bandwidth of a 256 MiB NumPy copy (one thread), at the start of the run;
* every kernel at the conv VAE's shapes for every implementation (benchmarks/kernels.py ``run_table``):
  grouped bars, and a roofline placing each kernel by arithmetic intensity (report_figures.py counts FLOPs
  and compulsory bytes) under the measured peak and bandwidth;
* the training step (benchmarks/step_pairs.py): rounds of minivae, PyTorch (default threads) and PyTorch on
  one thread, each round followed by a GEMM-peak process, at the sweep's batch sizes (one round each) and
  at the target batch sizes (``--pairs`` rounds): step time against batch size, the ratios of every round
  and their medians, and the fraction of the GEMM peak of the same round; with a GPU, minivae's GPU kernel
  sets and PyTorch CUDA join the sweep;
* JIT compile (empty Numba cache) against cached load of the Numba CPU kernels (benchmarks/kernels.py).
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import kernels as kbench  # noqa: E402  (after the sys.path / environment set-up above)
import report_figures as figs  # noqa: E402  (after the sys.path / environment set-up above)
import step_pairs  # noqa: E402  (after the sys.path / environment set-up above)

FIGURES = {"kernels": "kernels.png", "roofline": "roofline.png", "step": "step_vs_batch.png", "jit": "jit.png"}
TARGET_RATIO, TARGET_PEAK = 0.67, 0.40


def config(args) -> dict:
    """The measurement sizes: the full report, or ``--tiny`` (a smoke run, seconds, random images)."""
    if args.tiny:
        return dict(kernel_batch=2, kernels=["conv2d_forward", "conv_transpose2d_forward", "dense_forward"],
                    repeats=2, warmup=1, sweep=[2], targets=[4], pairs=1, steps=2, gemm_n=512, copy_mib=8,
                    synthetic=True)
    return dict(kernel_batch=args.kernel_batch, kernels=None, repeats=args.repeats, warmup=3, sweep=args.sweep,
                targets=args.targets, pairs=args.pairs, steps=args.steps, gemm_n=2048, copy_mib=256,
                synthetic=args.synthetic)


def roofline_points(rows, batch, latent=2) -> list[dict]:
    """FLOPs, bytes, intensity and achieved GFLOP/s of every kernel row at ``batch``."""
    from minivae.kernels import cpu

    info = {}
    for layer, kernel, args in kbench.cases(batch, latent, np.float32, np.random.default_rng(0)):
        flops = figs.kernel_flops(kernel, args)
        info[(layer, kernel)] = (flops, figs.kernel_bytes(args, getattr(cpu, kernel)(*args)))
    pts = []
    for r in rows:
        if r["batch"] != batch or (r["layer"], r["kernel"]) not in info:
            continue
        flops, nbytes = info[(r["layer"], r["kernel"])]
        pts.append(dict(layer=r["layer"], kernel=r["kernel"], impl=r["impl"], flops=flops, bytes=nbytes,
                        intensity=flops / nbytes, gflops=flops / (r["median_ms"] / 1e3) / 1e9))
    return pts


def gpu_impls() -> list[str]:
    from minivae import backend, kernels

    if not backend.gpu_available():
        return []
    out = [f"{name}@gpu" for name in kernels.implementations("gpu") if name != "reference"]
    return out + (["torch@cuda"] if importlib.util.find_spec("torch") else [])


def measure(cfg: dict, log=print) -> dict:
    t0 = time.perf_counter()
    res = dict(config=cfg, started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    from machine import header

    res["header"] = header()
    log(res["header"])
    res["gemm_peak_gflops"] = step_pairs.gemm_peak(cfg["gemm_n"])
    res["copy_gbs"] = step_pairs.copy_bandwidth(cfg["copy_mib"])
    log(f"# GEMM peak {res['gemm_peak_gflops']:.0f} GFLOP/s, copy bandwidth {res['copy_gbs']:.0f} GB/s")
    res["compile"] = kbench.measure_compile(cfg["kernels"])
    ns = argparse.Namespace(device=["cpu", "gpu"], repeats=cfg["repeats"], warmup=cfg["warmup"], dtype="float32",
                            latent=2, kernels=cfg["kernels"])
    res["kernel_rows"] = kbench.run_table(cfg["kernel_batch"], ns)
    has_torch = importlib.util.find_spec("torch") is not None
    rounds, gpu = [], {}
    log(step_pairs.HEADER)
    for b in sorted(set(cfg["sweep"]) | set(cfg["targets"])):
        n = cfg["pairs"] if b in cfg["targets"] else 1
        if has_torch:
            rounds += step_pairs.run_pairs(b, n, cfg["steps"], cfg["synthetic"], gemm_n=cfg["gemm_n"], log=log)
        else:  # no PyTorch: minivae alone (no ratios)
            for p in range(n):
                ms = step_pairs.step_time("numba", b, cfg["steps"], cfg["synthetic"])["median_ms"]
                peak = step_pairs.gemm_peak(cfg["gemm_n"])
                gf = step_pairs.step_flops(b) / (ms / 1e3) / 1e9
                rounds.append(dict(batch=b, pair=p, order="numba", minivae_ms=ms, gemm_peak_gflops=peak,
                                   minivae_gflops=gf, peak_fraction=gf / peak))
        for impl in gpu_impls():
            gpu.setdefault(impl, {})[b] = step_pairs.step_time(impl, b, cfg["steps"], cfg["synthetic"])["median_ms"]
    res["rounds"], res["gpu_steps"] = rounds, gpu
    res["wall_s"] = time.perf_counter() - t0
    return res


def step_curves(res) -> dict:
    curves = {}
    keys = [("numba", "minivae_ms"), ("torch", "torch_ms"), ("torch-1t", "torch_1t_ms"), ("torch-avx2", "torch_avx2_ms")]
    for b in sorted({r["batch"] for r in res["rounds"]}):
        rs = [r for r in res["rounds"] if r["batch"] == b]
        for label, key in keys:
            if all(key in r for r in rs):
                curves.setdefault(label, {})[b] = float(np.median([r[key] for r in rs]))
    curves.update(res["gpu_steps"])
    return curves


def write_figures(res, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    b = res["config"]["kernel_batch"]
    figs.kernel_bars(res["kernel_rows"], b, out / FIGURES["kernels"])
    res["roofline"] = roofline_points(res["kernel_rows"], b)
    figs.roofline(res["roofline"], res["gemm_peak_gflops"], res["copy_gbs"], out / FIGURES["roofline"])
    figs.step_vs_batch(step_curves(res), out / FIGURES["step"])
    figs.jit_times(res["compile"], out / FIGURES["jit"])
    return {k: out / v for k, v in FIGURES.items()}


def _f(row: dict, key: str, spec: str = ".1f", scale: float = 1.0, suffix: str = "") -> str:
    """``row[key]`` formatted, or "-" where the row has no such value (no PyTorch installed)."""
    v = row.get(key)
    return "-" if v is None or not np.isfinite(v) else f"{scale * v:{spec}}{suffix}"


def _md_table(head, rows) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"] + \
        ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def readme(res, command: str) -> str:
    cfg = res["config"]
    lines = ["# minivae benchmark report", "",
             f"Generated {res['started']} by `{command}` in {res['wall_s']:.0f} s "
             f"({'tiny smoke configuration: not a measurement' if cfg.get('kernels') else 'full configuration'}).",
             "Regenerate with `make bench` or `python benchmarks/report.py`; every number below comes from this one run.",
             "", "## Machine", "", "```", res["header"],
             f"# SGEMM peak (NumPy float32 {cfg['gemm_n']}^3 matmul, default threads): {res['gemm_peak_gflops']:.0f} GFLOP/s",
             f"# memory bandwidth (NumPy copy of {cfg['copy_mib']} MiB, read + write, one thread): {res['copy_gbs']:.0f} GB/s",
             "```", ""]
    summ = step_pairs.summary(res["rounds"])
    lines += ["## Training step: minivae against PyTorch CPU", "",
              f"Conv VAE (TF tutorial, latent 2, Adam, float32), {'random Bernoulli(0.5)' if cfg['synthetic'] else 'binarised Fashion-MNIST'} "
              f"batches, median of {cfg['steps']} steps per process. Targets: minivae / PyTorch <= {TARGET_RATIO} and, "
              f"at batch 128, >= {TARGET_PEAK:.0%} of the SGEMM peak of the same round ({step_pairs.step_flops(1) / 1e6:.1f} "
              "MFLOP per example, counted analytically). `ratio`: over PyTorch with its default threads; `ratio best`: "
              "over the faster of that and PyTorch on one thread (on a loaded machine PyTorch's spinning OpenMP "
              "threads can make its 2-thread run many times slower); `ratio avx2`: over PyTorch held to AVX2 "
              "(`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2`), the instruction set "
              "NumPy's OpenBLAS is held to where `OPENBLAS_CORETYPE=Haswell` (see the machine header and the last "
              "section): the like-for-like comparison.", ""]
    head = ["batch", "rounds", "minivae ms", "torch ms", "torch 1-thread ms", "torch AVX2 ms", "ratio", "ratio best",
            "ratio avx2", "of GEMM peak"]
    rows = [[b, s["pairs"], _f(s, "median_minivae_ms"), _f(s, "median_torch_ms"), _f(s, "median_torch_1t_ms"),
             _f(s, "median_torch_avx2_ms"), _f(s, "median_ratio", ".2f"), _f(s, "median_ratio_best", ".2f"),
             _f(s, "median_ratio_avx2", ".2f"), _f(s, "median_peak_fraction", ".0f", 100, "%")] for b, s in summ.items()]
    lines += ["Medians over the rounds:", ""] + _md_table(head, rows) + ["", "Every round (processes in the order shown):", ""]
    head = ["batch", "round", "order", "minivae ms", "torch ms", "torch 1-thread ms", "torch AVX2 ms", "ratio",
            "ratio best", "ratio avx2", "GEMM peak GFLOP/s", "minivae GFLOP/s", "of peak"]
    lines += _md_table(head, [[r["batch"], r["pair"], r["order"], _f(r, "minivae_ms"), _f(r, "torch_ms"),
                               _f(r, "torch_1t_ms"), _f(r, "torch_avx2_ms"), _f(r, "ratio", ".2f"),
                               _f(r, "ratio_best", ".2f"), _f(r, "ratio_avx2", ".2f"),
                               _f(r, "gemm_peak_gflops", ".0f"), _f(r, "minivae_gflops"),
                               _f(r, "peak_fraction", ".0f", 100, "%")] for r in res["rounds"]])
    lines += ["", f"![step time per example against batch size]({FIGURES['step']})", "",
              "Step time per example against batch size (log-log); with a GPU the GPU rows show where it starts to win.",
              "", f"## Kernels at batch {cfg['kernel_batch']}", "",
              f"![kernel times per implementation]({FIGURES['kernels']})", "",
              "Median of each kernel per implementation (log scale, lower is better); each implementation in its "
              "own process (benchmarks/kernels.py).", "",
              f"![roofline]({FIGURES['roofline']})", "",
              "Roofline: achieved GFLOP/s against FLOPs per compulsory byte (every input and output once), under "
              "min(SGEMM peak, intensity x copy bandwidth) measured at the start of this run; FLOP counts in "
              "benchmarks/report_figures.py.", ""]
    pts = {(p["layer"], p["kernel"], p["impl"]): p for p in res["roofline"]}
    head = ["layer", "kernel", "impl", "median ms", "IQR ms", "/torch", "GFLOP/s", "FLOP/byte"]
    rows = []
    for r in res["kernel_rows"]:
        p = pts.get((r["layer"], r["kernel"], r["impl"]))
        rows.append([r["layer"], r["kernel"], r["impl"], f"{r['median_ms']:.3f}", f"{r['iqr_ms']:.3f}",
                     "-" if r["vs_torch"] is None else f"{r['vs_torch']:.2f}",
                     f"{p['gflops']:.1f}" if p else "-", f"{p['intensity']:.2f}" if p else "-"])
    lines += _md_table(head, rows)
    lines += ["", "## JIT compile and cached load", "", f"![JIT compile against cached load]({FIGURES['jit']})", ""]
    lines += _md_table(["", "import s", "first calls s", "process wall s"],
                       [[k, f"{v['import_s']:.2f}", f"{v['first_calls_s']:.2f}", f"{v['process_wall_s']:.2f}"]
                        for k, v in res["compile"].items()])
    lines += ["", "Targets: cold compile < 20 s, cached load < 2 s (first calls of every Numba CPU kernel and of the "
              "optional `conv_transpose2d_backward`, float32, in a fresh process with an empty / a filled "
              "`NUMBA_CACHE_DIR`; a whole first training step also compiles Adam's loop and the dense layers).", ""]
    lines += ["## Reading the numbers", "",
              "* The SGEMM peak is NumPy's: its OpenBLAS runs the kernels named in the machine header. Where the "
              "environment forces `OPENBLAS_CORETYPE=Haswell` on an AVX-512 CPU (the development machine does), "
              "that is the AVX2 peak, and PyTorch's oneDNN/MKL kernels, which use AVX-512 regardless, can sit above "
              "the roof (`torch AVX2` holds them to AVX2 too). Unset, OpenBLAS picks its AVX-512 kernels: measured "
              "on the development machine (issue 14) the peak nearly doubled (245 -> 465 GFLOP/s) and minivae's "
              "step took 0.75-0.82x the time. minivae honours the environment's setting.",
              "* The copy bandwidth is one thread's; kernels whose arrays stay in the caches can sit above that roof.",
              "* Each round's GEMM peak is measured right after its step processes, so a busy moment lowers both; "
              "compare rounds whose peak is near the machine's best.",
              "* On a machine shared with other work, PyTorch's default (spinning OpenMP) threads can take many "
              "times longer than one thread; `ratio best` guards against that flattering minivae.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "report"), help="output folder (README.md, PNGs)")
    p.add_argument("--tiny", action="store_true", help="a smoke run with tiny sizes (what the test suite runs)")
    p.add_argument("--kernel-batch", type=int, default=128)
    p.add_argument("--sweep", type=int, nargs="+", default=[8, 16, 64, 256], help="batch sizes, one round each")
    p.add_argument("--targets", type=int, nargs="+", default=[32, 128], help="batch sizes with --pairs rounds")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--synthetic", action="store_true", help="random Bernoulli(0.5) images, not Fashion-MNIST")
    args = p.parse_args(argv)
    command = "python benchmarks/report.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = Path(args.out)
    res = measure(config(args))
    write_figures(res, out)
    (out / "README.md").write_text(readme(res, command.strip()))
    (out / "results.json").write_text(json.dumps({k: v for k, v in res.items()}, indent=1, default=str))
    print(f"# wrote {out / 'README.md'} and {len(FIGURES)} figures in {res['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
