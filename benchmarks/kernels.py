"""Time every kernel at the conv VAE's shapes, for every registered implementation and PyTorch.

    python benchmarks/kernels.py                       # batch 32 and 128, 20 timed runs each, float32
    python benchmarks/kernels.py --batch 128 --repeats 50 --kernels conv2d_forward dense_forward
    python benchmarks/kernels.py --device cpu --no-compile

Shapes (the TF-tutorial conv VAE, ``minivae.models.ConvVAE``, latent 2 unless ``--latent``):
enc1 Conv2d(1,32,3,s2) on 28x28; enc2 Conv2d(32,64,3,s2) on 13x13; enc_fc Linear(2304, 2*latent);
dec_fc Linear(latent, 1568); dec1 ConvTranspose2d(32,64,3,s2,p1,op1) on 7x7; dec2 ConvTranspose2d(64,32,3,s2,
p1,op1) on 14x14; dec3 ConvTranspose2d(32,1,3,s1,p1) on 28x28; reparameterize_kl at (N, latent); BCE at
(N,1,28,28).

Each timing: ``--warmup`` calls, then ``--repeats`` calls timed one by one (``time.perf_counter``; on a GPU
the stream is synchronised before the clock is read), each implementation in its own fresh process;
the table gives the median, the interquartile range
and the minimum in milliseconds, the ratio of the median to PyTorch's (``/torch``, > 1 is slower) and the
speed-up over the reference kernels (``ref/``, > 1 is faster). Implementations: those of
``minivae.kernels.implementations(device)`` for each device asked for ("gpu" only when
``minivae.backend.gpu_available()``), and PyTorch (CPU, and CUDA with a GPU) when torch imports.

JIT compile time is measured apart: the first call of every Numba CPU kernel (float32, batch 2) in a fresh
subprocess with an empty ``NUMBA_CACHE_DIR`` (compile), then in a second fresh subprocess with that cache
filled (cached load).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CONV = {  # name: (kind, C_in, C_out, H=W, stride, padding, output_padding)
    "enc1": ("conv", 1, 32, 28, 2, 0, 0),
    "enc2": ("conv", 32, 64, 13, 2, 0, 0),
    "dec1": ("convT", 32, 64, 7, 2, 1, 1),
    "dec2": ("convT", 64, 32, 14, 2, 1, 1),
    "dec3": ("convT", 32, 1, 28, 1, 1, 0),
}


def cases(n: int, latent: int, dtype, rng) -> list[tuple[str, str, tuple]]:
    """``(layer, kernel name, args)`` for every kernel at the conv VAE's shapes, batch ``n`` (NumPy arrays)."""
    def a(*shape):
        return rng.standard_normal(shape).astype(dtype)

    out = []
    for layer, (kind, ci, co, hw, s, p, op) in CONV.items():
        st, pd = (s, s), (p, p)
        if kind == "conv":
            ho = (hw + 2 * p - 3) // s + 1
            x, w, b, gy = a(n, ci, hw, hw), a(co, ci, 3, 3), a(co), a(n, co, ho, ho)
            fill = (hw + 2 * p - 3) % s  # conv2d's input gradient is this transposed convolution of gy
            out += [(layer, "conv2d_forward", (x, w, b, st, pd)),
                    (layer, "conv_transpose2d_forward", (gy, w, None, st, pd, (fill, fill))),
                    (layer, "conv2d_backward_weight", (gy, x, (3, 3), st, pd)),
                    (layer, "conv2d_backward_bias", (gy,))]
        else:
            ho = (hw - 1) * s - 2 * p + 3 + op
            x, w, b, gy = a(n, ci, hw, hw), a(ci, co, 3, 3), a(co), a(n, co, ho, ho)
            out += [(layer, "conv_transpose2d_forward", (x, w, b, st, pd, (op, op))),
                    (layer, "conv_transpose2d_backward", (gy, x, w, st, pd)),
                    (layer, "conv2d_backward_bias", (gy,))]
    for layer, (fi, fo) in {"enc_fc": (2304, 2 * latent), "dec_fc": (latent, 1568)}.items():
        x, w, b, gy = a(n, fi), a(fo, fi), a(fo), a(n, fo)
        out += [(layer, "dense_forward", (x, w, b)), (layer, "dense_backward", (gy, x, w))]
    mu, lv, eps = a(n, latent), a(n, latent), a(n, latent)
    out += [("latent", "reparameterize_kl_forward", (mu, lv, eps)),
            ("latent", "reparameterize_kl_backward", (a(n, latent), a(n), mu, lv, eps))]
    logits, t = a(n, 1, 28, 28), (rng.random((n, 1, 28, 28)) < 0.5).astype(dtype)
    out += [("bce", "bce_with_logits_forward", (logits, t)),
            ("bce", "bce_with_logits_backward", (a(n, 1, 28, 28), logits, t))]
    return out


# --------------------------------------------------------------------------- PyTorch equivalents


def torch_kernels():
    """Kernel name -> a function with the reference signature on torch tensors (None when torch is missing)."""
    try:
        import torch
        import torch.nn.functional as tf
        from torch.nn import grad as tgrad
    except Exception:  # noqa: BLE001  (any failure is reported, not raised)
        return None

    def ct_fwd(x, w, b, s, p, op):
        return tf.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op)

    def ct_bw(gy, x, w, s, p):  # (conv2d of gy with W, conv2d's weight gradient with x and gy swapped)
        return (tf.conv2d(gy, w, None, stride=s, padding=p),
                tgrad.conv2d_weight(gy, (x.shape[1], gy.shape[1], *w.shape[2:]), x, stride=s, padding=p))

    def bce_fwd(x, t):
        return tf.binary_cross_entropy_with_logits(x, t, reduction="none")

    def bce_bwd(gy, x, t):
        return gy * (torch.sigmoid(x) - t)

    def rkl_fwd(mu, lv, eps):
        var = lv.exp()
        return mu + var.sqrt() * eps, 0.5 * (mu * mu + var - 1 - lv).sum(1)

    def rkl_bwd(gz, gkl, mu, lv, eps):
        std = (0.5 * lv).exp()
        gk = gkl[:, None]
        return gz + gk * mu, 0.5 * gz * eps * std + 0.5 * gk * (std * std - 1)

    return {
        "conv2d_forward": lambda x, w, b, s, p: tf.conv2d(x, w, b, stride=s, padding=p),
        "conv2d_backward_weight": lambda gy, x, ks, s, p: tgrad.conv2d_weight(
            x, (gy.shape[1], x.shape[1], *ks), gy, stride=s, padding=p),
        "conv2d_backward_bias": lambda gy: gy.sum((0, 2, 3)),
        "conv_transpose2d_forward": ct_fwd,
        "conv_transpose2d_backward": ct_bw,
        "dense_forward": tf.linear,
        "dense_backward": lambda gy, x, w: (gy @ w, gy.T @ x, gy.sum(0)),
        "reparameterize_kl_forward": rkl_fwd,
        "reparameterize_kl_backward": rkl_bwd,
        "bce_with_logits_forward": bce_fwd,
        "bce_with_logits_backward": bce_bwd,
    }


# --------------------------------------------------------------------------- timing


def time_call(fn, args, warmup: int, repeats: int, sync=None) -> np.ndarray:
    """Milliseconds of ``repeats`` calls of ``fn(*args)`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn(*args)
    if sync:
        sync()
    ts = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        if sync:
            sync()
        ts[i] = (time.perf_counter() - t0) * 1e3
    return ts


def _convert(args, to):
    return tuple(to(a) if hasattr(a, "shape") else a for a in args)


def implementations(devices):
    """``[(label, device, kernel lookup, array converter, sync)]`` for minivae's registered implementations."""
    from minivae import backend, kernels

    impls = []
    for device in devices:
        if device == "gpu" and not backend.gpu_available():
            print(f"# skipping device gpu: {backend.gpu_status()[1]}")
            continue
        sync = None
        def to(a):
            return a

        if device == "gpu":
            import cupy as cp

            sync = cp.cuda.get_current_stream().synchronize
            to = cp.asarray
        for name in kernels.implementations(device):
            mod = kernels.module(device, name)
            impls.append((f"{name}" if device == "cpu" else f"{name}@gpu", device,
                          lambda k, mod=mod: getattr(mod, k), to, sync))
    return impls


def torch_implementations(devices):
    tk = torch_kernels()
    if tk is None:
        print("# torch not importable: no PyTorch column")
        return []
    import torch

    out = [("torch", "cpu", tk.get, torch.from_numpy, None)]
    if "gpu" in devices and torch.cuda.is_available():
        out.append(("torch@cuda", "gpu", tk.get, lambda a: torch.from_numpy(a).cuda(), torch.cuda.synchronize))
    return out


def measure_impl(label, batch, args) -> dict:
    """``{(layer, kernel): [ms, ...]}`` for one implementation (run in its own process by :func:`run_table`)."""
    dtype = np.dtype(args.dtype).type
    rng = np.random.default_rng(0)
    impls = {i[0]: i for i in implementations(args.device) + torch_implementations(args.device)}
    _label, _device, lookup, to, sync = impls[label]
    out = {}
    for layer, kernel, arrays in cases(batch, args.latent, dtype, rng):
        if args.kernels and kernel not in args.kernels:
            continue
        fn = lookup(kernel)
        if fn is None:
            continue
        converted = _convert(arrays, to)
        if label.startswith("torch"):
            import torch

            with torch.no_grad():
                ts = time_call(fn, converted, args.warmup, args.repeats, sync)
        else:
            ts = time_call(fn, converted, args.warmup, args.repeats, sync)
        out[f"{layer}/{kernel}"] = ts.tolist()
    return out


def _child_args(args, label, batch) -> list[str]:
    argv = ["--_impl", label, "--batch", str(batch), "--repeats", str(args.repeats), "--warmup", str(args.warmup),
            "--dtype", args.dtype, "--latent", str(args.latent), "--device", *args.device]
    return argv + (["--kernels", *args.kernels] if args.kernels else [])


def run_table(batch, args) -> list[dict]:
    """Time every implementation, each in a fresh subprocess (so that no other library's idle threads
    compete for the cores), and build the table rows."""
    labels = [i[0] for i in implementations(args.device)] + [i[0] for i in torch_implementations(args.device)]
    times = {}
    for label in labels:
        res = subprocess.run([sys.executable, __file__, *_child_args(args, label, batch)], capture_output=True,
                             text=True)
        if res.returncode != 0:
            print(f"# {label}: failed\n{res.stderr[-2000:]}")
            continue
        times[label] = json.loads(res.stdout.strip().splitlines()[-1])
    rows = []
    keys = next(iter(times.values())).keys() if times else []
    for key in keys:
        layer, kernel = key.split("/")
        med = {label: float(np.median(t[key])) for label, t in times.items() if key in t}
        for label, t in times.items():
            if key not in t:
                continue
            ts = np.asarray(t[key])
            q1, q3 = np.percentile(ts, [25, 75])
            rows.append(dict(batch=batch, layer=layer, kernel=kernel, impl=label, median_ms=med[label],
                             iqr_ms=float(q3 - q1), min_ms=float(ts.min()),
                             vs_torch=med[label] / med["torch"] if "torch" in med else None,
                             ref_speedup=med["reference"] / med[label] if "reference" in med else None))
    return rows


def print_table(rows, batch, repeats):
    print(f"\n## batch {batch}: ms per call over {repeats} runs (median, IQR = p75-p25, min); "
          f"/torch = median / PyTorch CPU median (>1 slower); ref/ = reference median / median (>1 faster)")
    print(f"{'layer':7s} {'kernel':33s} {'impl':12s} {'median':>9s} {'IQR':>8s} {'min':>9s} {'/torch':>7s} "
          f"{'ref/':>7s}")
    for r in rows:
        vt = f"{r['vs_torch']:.2f}" if r["vs_torch"] is not None else "-"
        rs = f"{r['ref_speedup']:.2f}" if r["ref_speedup"] is not None else "-"
        print(f"{r['layer']:7s} {r['kernel']:33s} {r['impl']:12s} {r['median_ms']:9.3f} {r['iqr_ms']:8.3f} "
              f"{r['min_ms']:9.3f} {vt:>7s} {rs:>7s}")


# --------------------------------------------------------------------------- JIT compile time

_COMPILE_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
from minivae.kernels import cpu
t_import = time.perf_counter() - t0
from kernels import cases
per = {{}}
t1 = time.perf_counter()
wanted = {wanted!r}
x = np.random.default_rng(0).standard_normal((2, 4, 5, 5)).astype(np.float32)
for layer, name, args in cases(2, 2, np.float32, np.random.default_rng(0)) + [("relu", "relu_forward", (x,)),
                                                                            ("relu", "relu_backward", (x, x))]:
    if name in per or (wanted and name not in wanted):
        continue
    t = time.perf_counter(); getattr(cpu, name)(*args); per[name] = time.perf_counter() - t
total = time.perf_counter() - t1
print(json.dumps(dict(import_s=t_import, first_calls_s=total, per_kernel_s=per)))
"""


def measure_compile(names=None) -> dict:
    """First-call times of every Numba CPU kernel (float32; only ``names`` when given) in fresh processes: empty
    cache, then filled."""
    code = _COMPILE_CHILD.format(root=str(ROOT), bench=str(ROOT / "benchmarks"), wanted=sorted(names or ()))
    out = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("compile (empty cache)", "cached load"):
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
            out[label] = dict(json.loads(res.stdout.strip().splitlines()[-1]), process_wall_s=wall)
    return out


def print_compile(res):
    print("\n## Numba CPU kernels, JIT: first call of all 13 kernels (float32) in a fresh process, seconds")
    print(f"{'':24s} {'import':>8s} {'first calls':>12s} {'process wall':>13s}   slowest first calls")
    for label, r in res.items():
        slow = sorted(r["per_kernel_s"].items(), key=lambda kv: -kv[1])[:3]
        slow_s = ", ".join(f"{k} {v:.2f}" for k, v in slow)
        print(f"{label:24s} {r['import_s']:8.2f} {r['first_calls_s']:12.2f} {r['process_wall_s']:13.2f}   {slow_s}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    p.add_argument("--repeats", type=int, default=20, help="timed calls per kernel and implementation (>= 20)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--kernels", nargs="+", default=None, help="only these kernel names")
    p.add_argument("--device", nargs="+", default=["cpu", "gpu"], choices=["cpu", "gpu"])
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--latent", type=int, default=2)
    p.add_argument("--no-compile", action="store_true", help="skip the JIT compile-time measurement")
    p.add_argument("--json", default=None, help="also write the rows here")
    p.add_argument("--_impl", default=None, help=argparse.SUPPRESS)  # child process: time one implementation
    args = p.parse_args(argv)
    if args._impl:
        print(json.dumps(measure_impl(args._impl, args.batch[0], args)))
        return 0
    from minivae import kernels

    unknown = set(args.kernels or ()) - set(kernels.KERNELS)
    if unknown:
        p.error(f"unknown kernels {sorted(unknown)}; known: {', '.join(kernels.KERNELS)}")

    from machine import header

    print(header())
    print(f"# command: python benchmarks/kernels.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"# dtype {args.dtype}, latent {args.latent}, warm-up {args.warmup}")
    compile_res = None if args.no_compile else measure_compile()
    if compile_res:
        print_compile(compile_res)
    all_rows = []
    for batch in args.batch:
        rows = run_table(batch, args)
        print_table(rows, batch, args.repeats)
        all_rows += rows
    if args.json:
        Path(args.json).write_text(json.dumps(dict(rows=all_rows, compile=compile_res), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
