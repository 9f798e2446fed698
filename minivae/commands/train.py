"""Train a VAE on a data set, writing metrics.json, checkpoint.npz and PNG figures to --out.

Examples:
  minivae train --dataset fashion-mnist --epochs 5 --out runs/demo
  minivae train --model vae-mlp --latent-dim 2 --batch-size 128 --lr 1e-3 --epochs 5 --out runs/mlp
  minivae train --model cvae --dataset mnist --epochs 10 --out runs/cvae
  minivae train --model vae-mlp --beta 7 --latent-dim 10 --out runs/beta7
  minivae train --model vae-mlp --capacity-max 25 --capacity-steps 5000 --gamma 100 --out runs/capacity
  minivae train --model vae-mlp --likelihood gaussian --binarize none --sigma 0.1 --out runs/gauss
Models: conv (= vae-conv), vae-conv-keras, vae-mlp, vae-mlp-torch, cvae (MLP base), cvae-conv.
"""
from __future__ import annotations

import dataclasses
import sys

from minivae.config_checks import existing_dir, non_negative_float, positive_float, positive_int
from minivae.train import TrainConfig


def add_arguments(p) -> None:
    d = TrainConfig()
    p.add_argument("--dataset", default=None, help=f"data set name (default {d.dataset}; see `minivae data list`)")
    from minivae.models import MODELS

    p.add_argument("--model", default=None, choices=sorted(MODELS), help=f"model name (default {d.model})")
    p.add_argument("--epochs", type=positive_int, default=None, help=f"number of epochs (default {d.epochs})")
    p.add_argument("--batch-size", type=positive_int, default=None, help=f"examples per step (default {d.batch_size})")
    p.add_argument("--lr", type=positive_float, default=None, help=f"Adam learning rate (default {d.lr})")
    p.add_argument("--latent-dim", type=positive_int, default=None, help=f"latent dimensions (default {d.latent_dim})")
    p.add_argument("--beta", type=non_negative_float, default=None,
                   help=f"weight of the KL term (beta-VAE); 1 is the plain VAE (default {d.beta:g})")
    p.add_argument("--capacity-max", type=non_negative_float, default=None, metavar="C",
                   help="Burgess et al. 2018: loss = recon + gamma*|KL - C(step)|, C rising linearly to C nats "
                        "(default: none, the plain beta loss)")
    p.add_argument("--capacity-steps", type=positive_int, default=None, metavar="STEPS",
                   help=f"optimizer steps over which C rises from 0 to --capacity-max (default {d.capacity_steps})")
    p.add_argument("--gamma", type=non_negative_float, default=None,
                   help=f"weight of |KL - C| with --capacity-max (default {d.gamma})")
    p.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default=None,
                   help="p(x|z): Bernoulli on logits (binarised data) or Gaussian with fixed --sigma "
                        "(grey levels: use --binarize none); default bernoulli")
    p.add_argument("--sigma", type=positive_float, default=None,
                   help="standard deviation of the Gaussian likelihood (default 1.0)")
    p.add_argument("--hidden", type=positive_int, nargs="+", default=None, metavar="H",
                   help="hidden layer sizes of the MLP models (default: vae-mlp 512; vae-mlp-torch 400)")
    p.add_argument("--model-option", action="append", default=None, metavar="KEY=VALUE",
                   help="extra model constructor argument, VALUE parsed as JSON when possible "
                        "(e.g. base=\"conv\" for cvae, dense=32 for vae-conv-keras); repeatable (default: none)")
    p.add_argument("--seed", type=int, default=None, help=f"random seed (default {d.seed})")
    p.add_argument("--train-limit", type=positive_int, default=None, metavar="N",
                   help="use the first N training examples (default: all)")
    p.add_argument("--test-limit", type=positive_int, default=None, metavar="N",
                   help="use the first N test examples (default: all)")
    p.add_argument("--binarize", choices=("fixed", "stochastic", "none"), default=None,
                   help=f"fixed threshold 0.5 (TF tutorial), Bernoulli draws, or grey levels (default {d.binarize})")
    p.add_argument("--out", default=None, help=f"output folder (default {d.out})")
    p.add_argument("--data-dir", type=existing_dir, default=None,
                   help="folder holding the data set (default: $MINIVAE_DATA, the cache, then system folders)")
    p.add_argument("--kernels", default=None, help="kernel implementation: reference or numba (default per device)")
    p.add_argument("--device", choices=("cpu", "gpu"), default=None, help="where to train (default cpu)")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run saved in DIR (default: start a new run)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already saved in --out (without it such a folder is refused)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--eager", action="store_true",
                   help="run the op-by-op (textbook) step instead of the compiled one; same results, slower")


def interrupted_message(config, err) -> str:
    """The one line printed when a run is stopped by SIGINT/SIGTERM/SIGHUP: the signal, the last good
    checkpoint and the command that continues the run (or, when every epoch was saved and the figures were
    being drawn, the command that draws them)."""
    from pathlib import Path

    from minivae.checkpoint import CheckpointError, read_meta
    from minivae.train import CHECKPOINT

    name = str(err) if str(err).startswith("SIG") else "SIGINT"
    if config is None:
        return f"minivae train: interrupted ({name}) before training started"
    ckpt = Path(config.out) / CHECKPOINT
    try:
        epoch = read_meta(ckpt)["epoch"]
    except (CheckpointError, KeyError):
        return f"minivae train: interrupted ({name}) before the first checkpoint; nothing to resume in {config.out}"
    if isinstance(epoch, int) and epoch >= config.epochs:  # nothing left to resume
        if not config.figures:
            return (f"minivae train: interrupted ({name}) after the last epoch; the run is complete: {ckpt} "
                    f"(epoch {epoch})")
        return (f"minivae train: interrupted ({name}) while drawing the figures; the run is complete: {ckpt} "
                f"(epoch {epoch}); draw the figures with `minivae plot {config.out}`")
    return (f"minivae train: interrupted ({name}); the last good checkpoint is {ckpt} (epoch {epoch}); "
            f"continue with `minivae train --resume {config.out}`")


_FIELDS = ("dataset", "model", "epochs", "batch_size", "lr", "latent_dim", "beta", "seed", "train_limit",
           "test_limit", "binarize", "out", "data_dir", "kernels", "device", "likelihood", "capacity_max",
           "capacity_steps", "gamma")


def model_options_from_args(args) -> dict:
    """``model_options`` from --hidden, --sigma and --model-option KEY=VALUE (JSON values where they parse).
    Raises ValueError for an option without '='."""
    import json

    opts = {}
    for item in getattr(args, "model_option", None) or []:
        if "=" not in item:
            raise ValueError(f"--model-option expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            opts[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            opts[key.strip()] = value
    if getattr(args, "hidden", None):
        opts["hidden"] = list(args.hidden)
    if getattr(args, "sigma", None) is not None:
        opts["sigma"] = float(args.sigma)
    return opts


def config_from_args(args) -> TrainConfig:
    """A TrainConfig from parsed arguments; with --resume, the saved config with the given flags on top."""
    given = {k: getattr(args, k) for k in _FIELDS if getattr(args, k, None) is not None}
    base = TrainConfig()
    if args.resume is not None:
        from pathlib import Path

        from minivae.checkpoint import CheckpointError, read_meta
        from minivae.train import CHECKPOINT

        if not args.resume:
            raise ValueError("--resume: empty path; give the run folder (or checkpoint file) to continue")
        src = Path(args.resume)
        ckpt = src / CHECKPOINT if src.is_dir() else src
        meta = read_meta(ckpt)
        if not isinstance(meta.get("config"), dict):
            raise CheckpointError(f"{ckpt} holds no training config: cannot resume from it")
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        try:
            base = TrainConfig(**{k: v for k, v in meta["config"].items() if k in known})
        except TypeError as err:
            raise CheckpointError(f"{ckpt}: bad config in its metadata: {err}") from None
        given.setdefault("out", str(src if src.is_dir() else src.parent))
    opts = model_options_from_args(args)
    if opts:
        given["model_options"] = {**base.model_options, **opts}
    config = dataclasses.replace(base, **given)
    if args.no_figures:
        config.figures = False
    if args.no_progress:
        config.progress = False
    config.eager = bool(getattr(args, "eager", False))
    return config


def run(args) -> int:
    from minivae.checkpoint import CheckpointError
    from minivae.data import DatasetNotFoundError
    from minivae.signals import Interrupted
    from minivae.train import FigureError, NonFiniteLossError, fit

    config = None
    try:
        config = config_from_args(args)
        metrics = fit(config, resume=args.resume, overwrite=args.overwrite)
    except (DatasetNotFoundError, NonFiniteLossError, CheckpointError, ValueError, FigureError) as err:
        print(f"minivae train: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(interrupted_message(config, err), file=sys.stderr)
        return getattr(err, "exit_status", 130)
    print(f"test ELBO: {metrics['test_elbo']:.2f} nats ({config.likelihood} likelihood; "
          f"after {len(metrics['epochs'])} epoch{'s' if len(metrics['epochs']) != 1 else ''})")
    print(f"metrics: {config.out}/metrics.json; checkpoint: {config.out}/checkpoint.npz")
    for name, path in metrics.get("figures", {}).items():
        print(f"figure {name}: {path}")
    return 0
