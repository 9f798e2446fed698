"""Draw a trained VAE's figures: reconstructions, prior samples, loss curves, interpolation, latent traversals,
denoising, inpainting (a hidden square filled by gradient ascent over z); for 2-D latents the test means
coloured by label and the decoded manifold; for a CVAE one row per class (and with --label that class's
samples and manifold).

Example: minivae plot runs/demo --out runs/demo/figures
"""
from __future__ import annotations

import sys

from minivae.config_checks import positive_int


def add_arguments(p) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR", help="checkpoint.npz or the run folder holding it")
    p.add_argument("--out", default=None, metavar="DIR", help="folder for the PNGs (default: the run folder)")
    p.add_argument("--label", type=int, default=None,
                   help="class for the CVAE's samples and manifold (default: all classes)")
    p.add_argument("--test-limit", type=positive_int, default=None, metavar="N",
                   help="test images to encode (default: the run's test set)")
    p.add_argument("--data-dir", default=None, help="folder holding the data set (default: the run's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior draws and the noise")


def run(args) -> int:
    from pathlib import Path

    from minivae import plots
    from minivae.checkpoint import CheckpointError
    from minivae.data import DatasetNotFoundError
    from minivae.evaluate import load_run_test_data
    from minivae.train import model_from_checkpoint

    out = args.out
    try:
        model, config, meta = model_from_checkpoint(args.checkpoint)
        k = getattr(model, "num_classes", 0)
        if args.label is not None and not (k and 0 <= args.label < k):
            raise ValueError(f"--label needs a conditional model and a label in 0..{max(k - 1, 0)}")
        x, y = load_run_test_data(config, args.test_limit, args.data_dir)
        src = Path(args.checkpoint)
        out = Path(args.out) if args.out else (src if src.is_dir() else src.parent)
        figs = plots.training_figures(model, x, y, None, meta.get("history", []), out, seed=args.seed,
                                      dataset=config.dataset, label=args.label)
    except (CheckpointError, DatasetNotFoundError, ValueError) as err:
        print(f"minivae plot: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        print(f"minivae plot: error: could not write the figures to {out}: {err.strerror or err}{where}",
              file=sys.stderr)
        return 1
    for name, path in figs.items():
        print(f"figure {name}: {path}")
    return 0
