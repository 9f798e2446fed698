"""One training epoch of the conv VAE on binarised Fashion-MNIST, in minivae with each kernel set and in PyTorch.

    python benchmarks/train_epoch.py                        # full epoch (60k), batch 128, Adam 1e-3
    python benchmarks/train_epoch.py --limit 12800 --impl numba torch

Model: the TF-tutorial conv VAE (``minivae.models.ConvVAE``, latent 2 unless ``--latent``; PyTorch twin
``benchmarks/pytorch_reference.build_torch_conv_vae``); data ``minivae.data.load_dataset("fashion-mnist",
"train")``, binarised at 0.5, a seeded permutation; Adam, lr 1e-3; loss = BCE summed over pixels + analytic KL,
mean over the batch (nats).

Each implementation runs in its own fresh process, so that its peak resident memory (``ru_maxrss`` of that
process, ``VmHWM``, MiB) is its own and no other library's threads compete for the cores. One warm-up step on the
first batch (JIT compile or cache load, allocator warm-up) is timed apart and not counted in the epoch
(which still contains every batch). Reported: seconds per epoch, examples per second, peak RSS, ratio of
seconds per epoch to PyTorch's (> 1 slower), and the last batch loss as a sanity check.

Implementations: ``reference`` and ``numba`` (minivae's CPU kernel sets, ``minivae.kernels.use``; with
``+compiled``, e.g. ``numba+compiled``, the step runs through ``minivae.compile``: its recording call is in the
epoch), the GPU
kernel sets of ``minivae.kernels.implementations("gpu")`` as ``<name>@gpu`` when a GPU is available, and
``torch`` (and ``torch@cuda`` with a GPU) when torch imports.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def load_data(limit, synthetic=None):
    from minivae.data import binarize, load_dataset, to_float

    if synthetic:  # for machines without the data set: random images, the same shapes and work per step
        return binarize(np.random.default_rng(0).random((synthetic, 1, 28, 28), dtype=np.float32), 0.5)
    images, _ = load_dataset("fashion-mnist", "train")
    if limit:
        images = images[:limit]
    return binarize(to_float(images), 0.5)  # float32 (N, 1, 28, 28) in {0, 1}


def run_minivae(impl, x, args) -> dict:
    from minivae import backend, kernels
    from minivae.models import ConvVAE
    from minivae.optim import Adam
    from minivae.steps import ELBOStep
    from minivae.train import train_step

    impl, compiled, _ = impl.partition("+compiled")
    name, _, device = impl.partition("@")
    device = device or "cpu"
    kernels.use(name, device=device)
    model = ConvVAE(latent_dim=args.latent, rng=np.random.default_rng(args.seed))
    if device != "cpu":
        model.to(device)
    opt = Adam(model.parameters(), lr=args.lr)
    step = ELBOStep(model, opt, compiled=bool(compiled))  # "+compiled": minivae.compile (records its 2nd call)
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(x))
    sync = None
    if device == "gpu":
        import cupy as cp

        sync = cp.cuda.get_current_stream().synchronize

    def batch(s):
        return backend.to_device(x[perm[s:s + args.batch_size]], device)

    t0 = time.perf_counter()
    train_step(model, opt, batch(0), rng, step=step)
    if sync:
        sync()
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in range(0, len(x), args.batch_size):
        out = train_step(model, opt, batch(s), rng, step=step)
    if sync:
        sync()
    return dict(warmup_s=warmup, epoch_s=time.perf_counter() - t0, last_loss=out["loss"])


def run_torch(impl, x, args) -> dict:
    import torch
    from pytorch_reference import build_torch_conv_vae, torch_train_step

    device = "cuda" if impl == "torch@cuda" else "cpu"
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    model = build_torch_conv_vae(args.latent).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    perm = np.random.default_rng(args.seed).permutation(len(x))

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def batch(s):
        return torch.from_numpy(x[perm[s:s + args.batch_size]]).to(device)

    t0 = time.perf_counter()
    torch_train_step(model, opt, batch(0))
    sync()
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in range(0, len(x), args.batch_size):
        loss = torch_train_step(model, opt, batch(s))
    sync()
    return dict(warmup_s=warmup, epoch_s=time.perf_counter() - t0, last_loss=loss)


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB: ``VmHWM`` (reset by exec, unlike ``ru_maxrss``,
    which a child inherits from the parent that forked it), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(impl, args) -> dict:
    x = load_data(args.limit, args.synthetic)
    res = run_torch(impl, x, args) if impl.startswith("torch") else run_minivae(impl, x, args)
    res.update(examples=len(x), peak_rss_mib=peak_rss_mib())
    return res


def available_impls(requested):
    from minivae import backend, kernels

    impls = [f"minivae:{n}" for n in kernels.implementations("cpu")]
    impls += [f"minivae:{n}+compiled" for n in kernels.implementations("cpu")]
    if backend.gpu_available():
        impls += [f"minivae:{n}@gpu" for n in kernels.implementations("gpu")]
    if importlib.util.find_spec("torch") is not None:  # not imported here: it would inflate no child's RSS,
        impls.append("torch")                            # but it costs the parent time and memory
        if backend.gpu_available():
            impls.append("torch@cuda")
    else:
        print("# torch not installed: no PyTorch row")
    if requested:
        impls = [i for i in impls if i.split(":")[-1] in requested or i in requested]
    return impls


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--limit", type=int, default=None, help="train on the first N examples only")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--latent", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--impl", nargs="+", default=None,
                   help="only these (reference, numba, <name>@gpu, torch, torch@cuda)")
    p.add_argument("--synthetic", type=int, default=None, metavar="N",
                   help="N random binary images instead of Fashion-MNIST (where the data set is missing)")
    p.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--json", default=None)
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        impl = args._child.split(":")[-1]
        print(json.dumps(child(impl, args)))
        return 0

    from machine import header

    print(header())
    print(f"# command: python benchmarks/train_epoch.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    data = f"{args.synthetic} random binary images" if args.synthetic else "Fashion-MNIST train binarised at 0.5"
    print(f"# conv VAE latent {args.latent}, {data}"
          f"{f', first {args.limit}' if args.limit else ''}, batch {args.batch_size}, Adam lr {args.lr}, float32")
    passthrough = ["--batch-size", str(args.batch_size), "--lr", str(args.lr), "--latent", str(args.latent),
                   "--seed", str(args.seed)] + (["--limit", str(args.limit)] if args.limit else []) \
        + (["--synthetic", str(args.synthetic)] if args.synthetic else []) \
        + (["--torch-threads", str(args.torch_threads)] if args.torch_threads else [])
    results = {}
    for impl in available_impls(args.impl):
        res = subprocess.run([sys.executable, __file__, "--_child", impl, *passthrough], capture_output=True,
                             text=True)
        if res.returncode != 0:
            print(f"# {impl}: failed\n{res.stderr[-3000:]}")
            continue
        results[impl] = json.loads(res.stdout.strip().splitlines()[-1])
    # each row is compared with PyTorch on the same device: CPU rows with "torch", GPU rows with "torch@cuda"
    torch_s = {dev: results.get(name, {}).get("epoch_s") for dev, name in (("cpu", "torch"), ("gpu", "torch@cuda"))}
    print(f"\n{'implementation':22s} {'s/epoch':>9s} {'examples/s':>11s} {'peak RSS MiB':>13s} {'/torch':>7s} "
          f"{'warm-up s':>10s} {'last loss':>10s}")
    print("# /torch: seconds per epoch over PyTorch's on the same device (CPU rows: torch, GPU rows: torch@cuda)")
    for impl, r in results.items():
        base = torch_s["gpu" if ("@gpu" in impl or impl == "torch@cuda") else "cpu"]
        ratio = f"{r['epoch_s'] / base:.2f}" if base else "-"
        print(f"{impl:22s} {r['epoch_s']:9.2f} {r['examples'] / r['epoch_s']:11.0f} {r['peak_rss_mib']:13.0f} "
              f"{ratio:>7s} {r['warmup_s']:10.2f} {r['last_loss']:10.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
