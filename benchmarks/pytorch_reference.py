"""The main job's conv VAE (and the MLP VAEs) in PyTorch, trained on the same data with the same hyper-parameters.

Benchmarks and reference comparisons only: torch is never a dependency of minivae
(``pip install torch==2.13.0`` gives the CPU build on these machines).

    python benchmarks/pytorch_reference.py --epochs 5 --seeds 0 1 2 --batch-size 32 --lr 1e-4 --latent-dim 2

prints the test ELBO (nats) per epoch for each seed, and writes them as JSON with ``--json``.

    python benchmarks/pytorch_reference.py --model mlp --hidden 400 --latent-dim 20 --batch-size 128 --lr 1e-3

trains the MLP VAE instead (``minivae``'s ``vae-mlp-torch``; ``--hidden 512 --init glorot`` is ``vae-mlp``,
the Keras example), cheap enough for quick comparisons on this CPU.
Data: the same binarised Fashion-MNIST as ``minivae train`` (``minivae.data.load_dataset``, threshold 0.5).
Test ELBO: single-sample estimate, -(BCE summed over pixels + analytic KL), averaged over the test set.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_torch_conv_vae(latent_dim: int = 2, in_channels: int = 1):
    """The TF-tutorial conv VAE in torch.nn (same layers as ``minivae.models.ConvVAE``, PyTorch's init)."""
    import torch
    from torch import nn

    class TorchConvVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.latent_dim = latent_dim
            self.encoder = nn.Sequential(
                nn.Conv2d(in_channels, 32, 3, stride=2), nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2), nn.ReLU(), nn.Flatten(),
                nn.Linear(64 * 6 * 6, 2 * latent_dim))
            self.decoder = nn.Sequential(
                nn.Linear(latent_dim, 7 * 7 * 32), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
                nn.ConvTranspose2d(32, 64, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                nn.ConvTranspose2d(32, in_channels, 3, stride=1, padding=1))

        def terms(self, x, eps):
            mu, logvar = self.encoder(x).split(self.latent_dim, dim=1)
            z = mu + torch.exp(0.5 * logvar) * eps
            logits = self.decoder(z)
            recon = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
            kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
            return recon, kl

    return TorchConvVAE()


def build_torch_mlp_vae(latent_dim: int = 20, hidden=(400,), init: str = "default", in_features: int = 784):
    """The MLP VAE in torch.nn (same layers as ``minivae.models.MLPVAE``): ``[Linear ReLU]*`` to
    ``2*latent`` and back to 784 Bernoulli logits; ``init="glorot"`` as Keras (zero biases), else PyTorch's."""
    import torch
    from torch import nn

    def mlp(sizes):
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return layers[:-1]

    class TorchMLPVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.latent_dim = latent_dim
            self.encoder = nn.Sequential(nn.Flatten(), *mlp([in_features, *hidden, 2 * latent_dim]))
            self.decoder = nn.Sequential(*mlp([latent_dim, *reversed(hidden), in_features]))
            if init == "glorot":
                for m in self.modules():
                    if isinstance(m, nn.Linear):
                        nn.init.xavier_uniform_(m.weight)
                        nn.init.zeros_(m.bias)

        def terms(self, x, eps):
            mu, logvar = self.encoder(x).split(self.latent_dim, dim=1)
            z = mu + torch.exp(0.5 * logvar) * eps
            logits = self.decoder(z).view_as(x)
            recon = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
            kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
            return recon, kl

    return TorchMLPVAE()


def torch_train_step(model, opt, x, eps=None) -> float:
    """One Adam step on the batch ``x`` (a torch tensor); returns the loss (nats, batch mean)."""
    import torch

    if eps is None:
        eps = torch.randn(x.shape[0], model.latent_dim, device=x.device)
    recon, kl = model.terms(x, eps)
    loss = (recon + kl).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())


def torch_test_elbo(model, x_test, batch_size: int = 500, seed: int = 0) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    recon_sum = kl_sum = 0.0
    with torch.no_grad():
        for s in range(0, len(x_test), batch_size):
            xb = torch.from_numpy(x_test[s:s + batch_size])
            eps = torch.randn(xb.shape[0], model.latent_dim, generator=g)
            recon, kl = model.terms(xb, eps)
            recon_sum += float(recon.sum())
            kl_sum += float(kl.sum())
    n = len(x_test)
    return {"elbo": -(recon_sum + kl_sum) / n, "recon": recon_sum / n, "kl": kl_sum / n}


def train_torch(x_train, x_test, epochs, batch_size, lr, latent_dim, seed, log=print, model: str = "conv",
                hidden=(400,), init: str = "default") -> list:
    """Train with the same data order convention as minivae (a seeded permutation per epoch)."""
    import torch

    torch.manual_seed(seed)
    model = build_torch_conv_vae(latent_dim) if model == "conv" else build_torch_mlp_vae(latent_dim, hidden, init)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        perm = rng.permutation(len(x_train))
        model.train()
        for s in range(0, len(perm), batch_size):
            torch_train_step(model, opt, torch.from_numpy(x_train[perm[s:s + batch_size]]))
        seconds = time.perf_counter() - t0
        ev = torch_test_elbo(model.eval(), x_test, seed=seed)
        history.append({"epoch": epoch, "test_elbo": ev["elbo"], "test_recon": ev["recon"], "test_kl": ev["kl"],
                        "seconds": seconds})
        log(f"torch seed {seed} epoch {epoch}: test ELBO {ev['elbo']:.2f} nats, {seconds:.1f} s")
    return history


def load_binarised(dataset: str, data_dir=None, train_limit=None):
    from minivae.data import binarize, load_dataset, to_float

    (xtr, _), (xte, _) = (load_dataset(dataset, s, data_dir=data_dir) for s in ("train", "test"))
    if train_limit:
        xtr = xtr[:train_limit]
    return binarize(to_float(xtr)), binarize(to_float(xte))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--model", choices=("conv", "mlp"), default="conv", help="TF-tutorial conv VAE or MLP VAE")
    p.add_argument("--hidden", type=int, nargs="+", default=[400], help="MLP hidden sizes")
    p.add_argument("--init", choices=("default", "glorot"), default="default", help="MLP initialisation")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--latent-dim", type=int, default=2)
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--json", default=None, help="write {seed: history} here")
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# PyTorch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads")
    xtr, xte = load_binarised(args.dataset, args.data_dir, args.train_limit)
    results = {}
    for seed in args.seeds:
        results[seed] = train_torch(xtr, xte, args.epochs, args.batch_size, args.lr, args.latent_dim, seed,
                                    model=args.model, hidden=tuple(args.hidden), init=args.init)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
