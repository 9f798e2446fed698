"""Train a VAE on a data set, writing metrics.json, checkpoint.npz and PNG figures to --out.

Example: minivae train --dataset fashion-mnist --epochs 5 --out runs/demo
"""
from __future__ import annotations

import dataclasses
import sys

from minivae.train import TrainConfig


def add_arguments(p) -> None:
    d = TrainConfig()
    p.add_argument("--dataset", default=None, help=f"data set name (default {d.dataset}; see `minivae data list`)")
    p.add_argument("--model", default=None, help=f"model name (default {d.model})")
    p.add_argument("--epochs", type=int, default=None, help=f"number of epochs (default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=None, help=f"examples per step (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=None, help=f"Adam learning rate (default {d.lr})")
    p.add_argument("--latent-dim", type=int, default=None, help=f"latent dimensions (default {d.latent_dim})")
    p.add_argument("--beta", type=float, default=None, help="weight of the KL term (beta-VAE); 1 is the plain VAE")
    p.add_argument("--seed", type=int, default=None, help=f"random seed (default {d.seed})")
    p.add_argument("--train-limit", type=int, default=None, metavar="N", help="use the first N training examples")
    p.add_argument("--test-limit", type=int, default=None, metavar="N", help="use the first N test examples")
    p.add_argument("--binarize", choices=("fixed", "stochastic", "none"), default=None,
                   help="fixed threshold 0.5 (TF tutorial), Bernoulli draws, or grey levels")
    p.add_argument("--out", default=None, help=f"output folder (default {d.out})")
    p.add_argument("--data-dir", default=None, help="folder holding the data set (else $MINIVAE_DATA, the cache)")
    p.add_argument("--kernels", default=None, help="kernel implementation: reference or numba (default per device)")
    p.add_argument("--device", choices=("cpu", "gpu"), default=None, help="where to train (default cpu)")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run saved in DIR")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


_FIELDS = ("dataset", "model", "epochs", "batch_size", "lr", "latent_dim", "beta", "seed", "train_limit",
           "test_limit", "binarize", "out", "data_dir", "kernels", "device")


def config_from_args(args) -> TrainConfig:
    """A TrainConfig from parsed arguments; with --resume, the saved config with the given flags on top."""
    given = {k: getattr(args, k) for k in _FIELDS if getattr(args, k, None) is not None}
    base = TrainConfig()
    if args.resume:
        from pathlib import Path

        from minivae.checkpoint import load_checkpoint
        from minivae.train import CHECKPOINT

        src = Path(args.resume)
        meta = load_checkpoint(src / CHECKPOINT if src.is_dir() else src)["meta"]
        base = TrainConfig(**meta["config"])
        given.setdefault("out", str(src if src.is_dir() else src.parent))
    config = dataclasses.replace(base, **given)
    if args.no_figures:
        config.figures = False
    if args.no_progress:
        config.progress = False
    return config


def run(args) -> int:
    from minivae.checkpoint import CheckpointError
    from minivae.data import DatasetNotFoundError
    from minivae.train import NonFiniteLossError, fit

    try:
        config = config_from_args(args)
        metrics = fit(config, resume=args.resume)
    except (DatasetNotFoundError, NonFiniteLossError, CheckpointError, ValueError) as err:
        print(f"minivae train: error: {err}", file=sys.stderr)
        return 1
    print(f"test ELBO: {metrics['test_elbo']:.2f} nats (after {len(metrics['epochs'])} epochs)")
    print(f"metrics: {config.out}/metrics.json; checkpoint: {config.out}/checkpoint.npz")
    for name, path in metrics.get("figures", {}).items():
        print(f"figure {name}: {path}")
    return 0
