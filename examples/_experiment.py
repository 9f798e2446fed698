"""Shared by the example scripts: train with ``minivae train``, then ``minivae evaluate`` (ELBO and the
importance-weighted log p(x)), timing both and printing one summary line."""
from __future__ import annotations

import json
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
try:
    import minivae  # noqa: F401  (imported to check that minivae is importable)
except ModuleNotFoundError:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

MNIST_TEST = str(REPO.parent / "shared" / "data" / "mnist")  # official MNIST test set on these machines


def run(name: str, train_args: list, iw_samples: int = 1000, iw_test_limit: int | None = 1000,
        extra: tuple = ()) -> dict:
    """Train into ``runs/examples/NAME``, evaluate, draw ``extra`` figures (argument lists for ``minivae``), and
    print ``name / test ELBO / IW log p(x) / seconds``. Returns the evaluation dict (plus ``train_seconds``)."""
    from minivae.cli import main

    out = REPO / "runs" / "examples" / name
    t0 = time.perf_counter()
    if main(["train", *train_args, "--out", str(out), "--no-progress"]) != 0:
        raise SystemExit(f"{name}: training failed")
    train_s = time.perf_counter() - t0
    argv = ["evaluate", str(out), "--iw-samples", str(iw_samples), "--json", str(out / "evaluation.json"),
            "--no-progress"]
    if iw_test_limit:
        argv += ["--test-limit", str(iw_test_limit)]
    if main(argv) != 0:
        raise SystemExit(f"{name}: evaluation failed")
    for args in extra:
        main([a.replace("{out}", str(out)) for a in args])
    res = json.loads((out / "evaluation.json").read_text())
    res["train_seconds"] = train_s
    print(f"SUMMARY {name}: test ELBO {res['test_elbo']:.2f} nats on {res['n_test']} test images, "
          f"IW log p(x) K={iw_samples} {res.get('iw_log_likelihood', float('nan')):.2f} nats; "
          f"training {train_s:.0f} s, IW {res.get('iw_seconds', 0):.0f} s; figures in {out}")
    return res
