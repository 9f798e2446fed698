"""Draw z ~ N(0, I) from the prior, decode with a trained VAE and write the images as one PNG grid.

Bernoulli models show pixel probabilities (the decoded means), Gaussian models their means clipped to [0, 1].
Conditional models (cvae) need --label, or draw one row per class without it.
Example: minivae sample runs/cvae --n 64 --label 3 --out three.png
"""
from __future__ import annotations

import sys


def add_arguments(p) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR", help="checkpoint.npz or the run folder holding it")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--label", type=int, default=None, help="class to condition on (conditional models; default: one row per class)")
    p.add_argument("--seed", type=int, default=0, help="seed of the z draws")
    p.add_argument("--out", default=None, metavar="FILE.png",
                   help="where to write the grid; its folder is created (default: samples.png in the run folder)")


def _out_path(checkpoint: str, out: str | None) -> str:
    """``--out``, its folder created (an existing folder: FOLDER/samples.png); without it, samples.png in the
    run folder (beside the checkpoint), as ``minivae plot`` writes its figures into the run."""
    from pathlib import Path

    src = Path(checkpoint)
    if out is None:
        return str((src if src.is_dir() else src.parent) / "samples.png")
    path = Path(out)
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    return out


def run(args) -> int:
    from minivae import plots
    from minivae.checkpoint import CheckpointError
    from minivae.train import model_from_checkpoint

    try:
        if args.n < 1:
            raise ValueError(f"--n must be >= 1, got {args.n}")
        model, _, _ = model_from_checkpoint(args.checkpoint)
        args.out = _out_path(args.checkpoint, args.out)
        k = getattr(model, "num_classes", 0)
        if args.label is not None and not k:
            raise ValueError("--label needs a conditional model (cvae); this one is unconditional")
        if args.label is not None and not 0 <= args.label < k:
            raise ValueError(f"--label must be in 0..{k - 1}, got {args.label}")
        if k and args.label is None:
            path = plots.class_rows(model, args.out, per_class=max(1, args.n // k), seed=args.seed)
        elif k:
            path = plots.conditional_samples(model, args.out, n=args.n, label=args.label, seed=args.seed)
        else:
            path = plots.prior_samples(model, args.out, n=args.n, seed=args.seed)
    except (CheckpointError, ValueError) as err:
        print(f"minivae sample: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"minivae sample: error: could not write {args.out}: {err.strerror or err}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0
