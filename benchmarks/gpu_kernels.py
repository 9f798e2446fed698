"""GPU kernels and a GPU training epoch: numba-cuda vs CuPy/cuBLAS vs PyTorch CUDA, at the conv VAE's shapes.

    python benchmarks/gpu_kernels.py                       # ops at batch 128, then one epoch each
    python benchmarks/gpu_kernels.py --epoch-steps 100     # shorter epochs (reported per step and per epoch)
    python benchmarks/gpu_kernels.py --device cpu --skip-ops --epoch-steps 20   # the numba CPU path

Per op: forward + backward kernels (conv: forward, input, weight and bias gradients), median over
``--repeats`` (>= 20) runs after warm-up, the device synchronised before each clock read; the first call
(JIT compile for numba-cuda, kernel build for CuPy) is reported apart. PyTorch runs the same op through
``torch.nn.functional`` and autograd. Epoch: ``minivae.train.train_step`` over synthetic binarised
28x28 images already on the device (60,000 images, batch 128 = 469 steps unless ``--epoch-steps``),
against the same model in PyTorch (``benchmarks/pytorch_reference.py``).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minivae import kernels  # noqa: E402  (after the repository root is on sys.path)


def _fill(xs, ws, s, p):
    """The output padding with which conv_transpose2d gives back conv2d's input size (its input gradient)."""
    return tuple((xs[2 + a] + 2 * p[a] - ws[2 + a]) % s[a] for a in (0, 1))


def _gpu_name() -> str:
    try:
        import cupy as cp

        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        return props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    except Exception as err:  # pragma: no cover
        return f"no GPU ({err})"


def _sync(device="gpu"):
    if device == "gpu":
        import cupy as cp

        cp.cuda.Device().synchronize()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()
        except ImportError:
            pass


def timeit(fn, repeats, device="gpu", warmup=3):
    """(first call in s, median of ``repeats`` later calls in s)."""
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


# --------------------------------------------------------------------------- ops

def op_cases(batch):
    """name -> (kind, x shape, weight shape, stride, padding, output_padding) of the conv VAE's layers."""
    return {
        "Conv2d(1,32,3,s2)": ("conv", (batch, 1, 28, 28), (32, 1, 3, 3), (2, 2), (0, 0), None),
        "Conv2d(32,64,3,s2)": ("conv", (batch, 32, 13, 13), (64, 32, 3, 3), (2, 2), (0, 0), None),
        "ConvT(32,64,3,s2,p1,op1)": ("convT", (batch, 32, 7, 7), (32, 64, 3, 3), (2, 2), (1, 1), (1, 1)),
        "ConvT(64,32,3,s2,p1,op1)": ("convT", (batch, 64, 14, 14), (64, 32, 3, 3), (2, 2), (1, 1), (1, 1)),
        "ConvT(32,1,3,s1,p1)": ("convT", (batch, 32, 28, 28), (32, 1, 3, 3), (1, 1), (1, 1), (0, 0)),
        "Linear(2304,4)": ("dense", (batch, 2304), (4, 2304), None, None, None),
        "Linear(2,1568)": ("dense", (batch, 2), (1568, 2), None, None, None),
        "reparam+KL (2)": ("reparam", (batch, 2), None, None, None, None),
        "BCE (1x28x28)": ("bce", (batch, 1, 28, 28), None, None, None, None),
        "launch (1 elem BCE)": ("bce", (1,), None, None, None, None),
    }


def minivae_op(mod, case, rng):
    import cupy as cp

    kind, xs, ws, s, p, op = case
    x = cp.asarray(rng.standard_normal(xs).astype(np.float32))
    if kind in ("conv", "convT"):
        w = cp.asarray(rng.standard_normal(ws).astype(np.float32))
        b = cp.zeros(ws[0] if kind == "conv" else ws[1], cp.float32)
        if kind == "conv":
            y = mod.conv2d_forward(x, w, b, s, p)

            def run():
                mod.conv2d_forward(x, w, b, s, p)
                mod.conv_transpose2d_forward(y, w, None, s, p, _fill(xs, ws, s, p))  # the input gradient
                mod.conv2d_backward_weight(y, x, ws[2:], s, p)
                mod.conv2d_backward_bias(y)
        else:
            y = mod.conv_transpose2d_forward(x, w, b, s, p, op)

            def run():
                mod.conv_transpose2d_forward(x, w, b, s, p, op)
                mod.conv_transpose2d_backward(y, x, w, s, p)
                mod.conv2d_backward_bias(y)
        return run
    if kind == "dense":
        w = cp.asarray(rng.standard_normal(ws).astype(np.float32))
        b = cp.zeros(ws[0], cp.float32)
        gy = cp.ones((xs[0], ws[0]), cp.float32)
        return lambda: (mod.dense_forward(x, w, b), mod.dense_backward(gy, x, w))
    if kind == "reparam":
        lv, eps, gkl = x * 0.1, x + 1, cp.ones(xs[0], cp.float32)
        return lambda: (mod.reparameterize_kl_forward(x, lv, eps), mod.reparameterize_kl_backward(x, gkl, x, lv, eps))
    t = (x > 0).astype(cp.float32)
    return lambda: (mod.bce_with_logits_forward(x, t), mod.bce_with_logits_backward(x, x, t))


def torch_op(case, rng):
    import torch
    import torch.nn.functional as tF

    kind, xs, ws, s, p, op = case
    dev = "cuda"
    x = torch.tensor(rng.standard_normal(xs).astype(np.float32), device=dev, requires_grad=True)
    if kind in ("conv", "convT", "dense"):
        w = torch.tensor(rng.standard_normal(ws).astype(np.float32), device=dev, requires_grad=True)
        b = torch.zeros(ws[0] if kind != "convT" else ws[1], device=dev, requires_grad=True)
        f = {"conv": lambda: tF.conv2d(x, w, b, stride=s, padding=p),
             "convT": lambda: tF.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op),
             "dense": lambda: tF.linear(x, w, b)}[kind]
    elif kind == "reparam":
        lv = (x.detach() * 0.1).requires_grad_()
        eps = torch.randn(xs, device=dev)

        def f():
            z = x + torch.exp(0.5 * lv) * eps
            kl = 0.5 * (x * x + lv.exp() - 1 - lv).sum(1)
            return z.sum() + kl.sum()
    else:
        t = (x.detach() > 0).float()
        f = lambda: tF.binary_cross_entropy_with_logits(x, t, reduction="none")  # noqa: E731  (a one-line formula)

    def run():
        y = f()
        y.backward(torch.ones_like(y))
    return run


def bench_ops(args):
    impls = [i for i in ("numba", "cupy") if i in kernels.implementations("gpu")]
    try:
        import torch

        has_torch = torch.cuda.is_available()
    except ImportError:
        has_torch = False
    cols = impls + (["torch"] if has_torch else [])
    print(f"\n## ops, forward + backward, batch {args.batch}, float32, ms (median of {args.repeats}); "
          f"first call apart (s)")
    head = f"{'op':26s}" + "".join(f"{c + ' ms':>12s}" for c in cols) + "".join(f"{c + ' 1st s':>13s}" for c in cols)
    print(head)
    print("-" * len(head))
    for name, case in op_cases(args.batch).items():
        meds, firsts = [], []
        for c in cols:
            rng = np.random.default_rng(0)
            fn = torch_op(case, rng) if c == "torch" else minivae_op(kernels.module("gpu", c), case, rng)
            first, med = timeit(fn, args.repeats)
            meds.append(med)
            firsts.append(first)
        print(f"{name:26s}" + "".join(f"{m * 1e3:12.3f}" for m in meds) + "".join(f"{f:13.3f}" for f in firsts))


def bench_breakdown(args):
    """Each numba-cuda and cupy conv kernel on its own (where the time of a layer goes)."""
    import cupy as cp

    print(f"\n## conv kernels one by one, batch {args.batch}, float32, ms (median of {args.repeats}), numba / cupy")
    head = f"{'layer':26s}{'forward':>16s}{'grad input':>16s}{'grad weight':>16s}{'grad bias':>16s}"
    print(head)
    print("-" * len(head))
    for name, (kind, xs, ws, s, p, op) in op_cases(args.batch).items():
        if kind not in ("conv", "convT"):
            continue
        rng = np.random.default_rng(0)
        x = cp.asarray(rng.standard_normal(xs).astype(np.float32))
        w = cp.asarray(rng.standard_normal(ws).astype(np.float32))
        cells = []
        for label in ("fwd", "gin", "gw", "gb"):
            pair = []
            for impl in ("numba", "cupy"):
                m = kernels.module("gpu", impl)
                if kind == "conv":
                    y = m.conv2d_forward(x, w, None, s, p)
                    fn = {"fwd": lambda: m.conv2d_forward(x, w, None, s, p),
                          "gin": lambda: m.conv_transpose2d_forward(y, w, None, s, p, _fill(xs, ws, s, p)),
                          "gw": lambda: m.conv2d_backward_weight(y, x, ws[2:], s, p),
                          "gb": lambda: m.conv2d_backward_bias(y)}[label]
                else:
                    y = m.conv_transpose2d_forward(x, w, None, s, p, op)
                    fn = {"fwd": lambda: m.conv_transpose2d_forward(x, w, None, s, p, op),
                          "gin": lambda: m.conv2d_forward(y, w, None, s, p),  # (what the pair kernel does)
                          "gw": lambda: m.conv2d_backward_weight(x, y, ws[2:], s, p),
                          "gb": lambda: m.conv2d_backward_bias(y)}[label]
                pair.append(timeit(fn, args.repeats)[1] * 1e3)
            cells.append(f"{pair[0]:7.3f} /{pair[1]:7.3f}")
        print(f"{name:26s}" + "".join(f"{c:>16s}" for c in cells))


# --------------------------------------------------------------------------- epoch

def minivae_epoch(device, impl, data, batch, steps):
    import minivae as mv
    from minivae.models import ConvVAE
    from minivae.optim import Adam
    from minivae.train import train_step

    model = ConvVAE(latent_dim=2, rng=np.random.default_rng(0)).to(device)
    opt = Adam(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(1)
    xs = mv.backend.to_device(data, device)
    with kernels.use(impl, device=device):
        _sync(device)
        t0 = time.perf_counter()
        first = train_step(model, opt, xs[:batch], rng)  # compiles the kernels
        _sync(device)
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for k in range(steps):
            s = (k * batch) % (len(xs) - batch + 1)
            last = train_step(model, opt, xs[s:s + batch], rng)
        _sync(device)
        run_s = time.perf_counter() - t0
    return compile_s, run_s / steps, first["loss"], last["loss"]


def torch_epoch(data, batch, steps):
    import torch

    from benchmarks.pytorch_reference import build_torch_conv_vae, torch_train_step

    torch.manual_seed(0)
    model = build_torch_conv_vae(2).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    xs = torch.tensor(data, device="cuda")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    first = torch_train_step(model, opt, xs[:batch])
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(steps):
        s = (k * batch) % (len(xs) - batch + 1)
        last = torch_train_step(model, opt, xs[s:s + batch])
    torch.cuda.synchronize()
    return compile_s, (time.perf_counter() - t0) / steps, first, last


def bench_epoch(args):
    n_train = 60000
    steps_full = -(-n_train // args.batch)
    steps = min(args.epoch_steps or steps_full, steps_full)
    rng = np.random.default_rng(0)
    data = (rng.random((min(n_train, steps * args.batch + args.batch), 1, 28, 28)) < 0.3).astype(np.float32)
    print(f"\n## training step of ConvVAE(latent 2), batch {args.batch}, Adam, synthetic binarised 28x28 "
          f"on the device; {steps} steps timed, epoch = {steps_full} steps (60,000 images)")
    head = f"{'path':34s}{'1st step s':>11s}{'ms/step':>10s}{'s/epoch':>10s}{'loss first->last':>22s}"
    print(head)
    print("-" * len(head))
    rows = []
    if args.device == "gpu":
        for impl in args.impls:
            rows.append((f"minivae gpu {impl}", *minivae_epoch("gpu", impl, data, args.batch, steps)))
        try:
            import torch

            if torch.cuda.is_available():
                rows.append(("pytorch cuda", *torch_epoch(data, args.batch, steps)))
        except ImportError:
            pass
    else:
        for impl in args.impls:
            rows.append((f"minivae cpu {impl}", *minivae_epoch("cpu", impl, data, args.batch, steps)))
    for name, first, per_step, l0, l1 in rows:
        print(f"{name:34s}{first:11.2f}{per_step * 1e3:10.2f}{per_step * steps_full:10.2f}{l0:11.1f} ->{l1:8.1f}")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--epoch-steps", type=int, default=None, help="steps timed (default: a full epoch)")
    p.add_argument("--impls", nargs="+", default=None, help="kernel implementations (default: numba, cupy on gpu)")
    p.add_argument("--skip-ops", action="store_true")
    p.add_argument("--skip-epoch", action="store_true")
    args = p.parse_args(argv)
    if args.impls is None:
        args.impls = ["numba", "cupy"] if args.device == "gpu" else ["numba"]
    print(f"# minivae GPU benchmark: {platform.node()}, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, GPU: {_gpu_name() if args.device == 'gpu' else 'not used'}")
    if args.device == "gpu" and not args.skip_ops:
        bench_ops(args)
        bench_breakdown(args)
    if not args.skip_epoch:
        bench_epoch(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
