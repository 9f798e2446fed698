"""Evaluate a trained VAE: single-sample test ELBO (recon, KL) and the importance-weighted log p(x).

The IW estimate is Burda, Grosse & Salakhutdinov (2016), eq. 8: log (1/K) sum_k p(x, z_k) / q(z_k|x), z_k from
the encoder, in nats per test image, computed without a graph, batched over examples and samples.
Example: minivae evaluate runs/mlp --iw-samples 1000 --test-limit 1000
"""
from __future__ import annotations

import json
import math
import sys

from minivae.config_checks import positive_int


def add_arguments(p) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR", help="checkpoint.npz or the run folder holding it")
    p.add_argument("--iw-samples", type=int, default=1000, metavar="K",
                   help="importance samples per test image (0: ELBO only)")
    p.add_argument("--test-limit", type=positive_int, default=None, metavar="N",
                   help="evaluate on the first N test images (default: the run's test set)")
    p.add_argument("--batch-size", type=int, default=2000, metavar="ROWS",
                   help="most decoded images per pass (examples x samples); bounds memory")
    p.add_argument("--data-dir", default=None, help="folder holding the data set (default: the run's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the eps ~ N(0, I) draws")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="where to evaluate")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the results as JSON here (default: print only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from minivae.checkpoint import CheckpointError
    from minivae.data import DatasetNotFoundError
    from minivae.evaluate import evaluate_run

    if args.iw_samples < 0 or args.batch_size < 1:
        print("minivae evaluate: error: --iw-samples must be >= 0 and --batch-size >= 1", file=sys.stderr)
        return 2
    try:
        res = evaluate_run(args.checkpoint, k=args.iw_samples, test_limit=args.test_limit, data_dir=args.data_dir,
                           max_rows=args.batch_size, seed=args.seed, progress=not args.no_progress,
                           device=args.device)
    except (CheckpointError, DatasetNotFoundError, ValueError) as err:
        print(f"minivae evaluate: error: {err}", file=sys.stderr)
        return 1
    bad = [k for k in ("test_elbo", "test_recon", "test_kl", "iw_log_likelihood", "iw_elbo_mc")
           if k in res and not math.isfinite(res[k])]
    if bad:
        print(f"minivae evaluate: error: {args.checkpoint}: {', '.join(f'{k} = {res[k]}' for k in bad)} (not "
              f"finite): the model's outputs overflow on this data", file=sys.stderr)
        return 1
    print(f"model {res['model']} on {res['dataset']} ({res['n_test']} test images, {res['likelihood']} "
          f"likelihood, after {res['epochs']} epoch{'s' if res['epochs'] != 1 else ''})")
    print(f"test ELBO: {res['test_elbo']:.2f} nats (recon -log p(x|z) {res['test_recon']:.2f}, "
          f"KL {res['test_kl']:.2f}), single sample")
    if "iw_log_likelihood" in res:
        print(f"IW log p(x), K={res['iw_k']}: {res['iw_log_likelihood']:.2f} nats "
              f"(Burda et al. 2016 eq. 8; {res['iw_seconds']:.1f} s)")
    if args.json:
        from minivae.checkpoint import atomic_write_text

        try:  # strict JSON, written to a temporary file and renamed (never through a link)
            atomic_write_text(args.json, json.dumps(res, indent=2, allow_nan=False))
        except OSError as err:
            print(f"minivae evaluate: error: could not write --json {args.json}: {err.strerror or err}",
                  file=sys.stderr)
            return 1
        print(f"results: {args.json}")
    return 0
