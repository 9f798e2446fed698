"""Step-by-step parity with PyTorch: the same conv VAE, the same initial weights, batches and noise.

    python benchmarks/torch_parity.py --steps 200 --batch-size 32 --lr 1e-4

minivae's ConvVAE is built, its weights copied into the PyTorch model of ``pytorch_reference.py``, and both take
the same Adam steps on the same binarised Fashion-MNIST batches with the same eps. Prints the loss of both every
``--every`` steps and the largest relative parameter difference at the end. Any systematic difference in the
maths (a wrong gradient, init, optimizer detail) shows as a drift far above float32 rounding.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--latent-dim", type=int, default=2)
    p.add_argument("--every", type=int, default=25)
    p.add_argument("--kernels", default="numba")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="float64 separates the maths from float32 rounding (Adam amplifies tiny differences)")
    args = p.parse_args(argv)

    import torch
    from pytorch_reference import build_torch_conv_vae, load_binarised

    import minivae as mv
    from minivae.models import ConvVAE, negative_elbo
    from minivae.optim import Adam

    xtr, _ = load_binarised("fashion-mnist", train_limit=args.steps * args.batch_size)
    dtype = np.dtype(args.dtype)
    xtr = xtr.astype(dtype)
    mv.kernels.use(args.kernels)
    mv.nn.init.manual_seed(0)
    model = ConvVAE(args.latent_dim, dtype=dtype)
    tmodel = build_torch_conv_vae(args.latent_dim).to(getattr(torch, args.dtype))
    with torch.no_grad():
        tparams = dict(tmodel.named_parameters())
        for name, value in model.state_dict().items():
            tparams[name].copy_(torch.from_numpy(value))
    opt, topt = Adam(model.parameters(), lr=args.lr), torch.optim.Adam(tmodel.parameters(), lr=args.lr)
    rng = np.random.default_rng(0)
    print(f"{'step':>5} {'minivae loss':>14} {'torch loss':>14} {'rel diff':>10}")
    worst = 0.0
    for step in range(1, args.steps + 1):
        xb = xtr[(step - 1) * args.batch_size: step * args.batch_size]
        eps = rng.standard_normal((len(xb), args.latent_dim)).astype(dtype)
        terms = negative_elbo(model, mv.Tensor(xb), mv.Tensor(eps))
        opt.zero_grad()
        terms.loss.backward()
        opt.step()
        recon, kl = tmodel.terms(torch.from_numpy(xb), torch.from_numpy(eps))
        tloss = (recon + kl).mean()
        topt.zero_grad()
        tloss.backward()
        topt.step()
        a, b = terms.loss.item(), float(tloss.detach())
        worst = max(worst, abs(a - b) / abs(b))
        if step % args.every == 0 or step == 1:
            print(f"{step:5d} {a:14.4f} {b:14.4f} {abs(a - b) / abs(b):10.2e}")
    tstate = {k: v.detach().numpy() for k, v in tmodel.named_parameters()}
    diffs = {k: float(np.abs(v - tstate[k]).max() / (np.abs(tstate[k]).max() + 1e-12))
             for k, v in model.state_dict().items()}
    for k, d in diffs.items():
        print(f"  {k:24s} max |minivae - torch| / max |torch| = {d:.2e}")
    pdiff = max(diffs.values())
    print(f"largest relative loss difference over {args.steps} steps: {worst:.2e}; "
          f"largest relative parameter difference at the end: {pdiff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
