"""Where the tests look for data files: one search path, documented here.

Shared data (the official MNIST test set used by a few model tests, in ``<root>/mnist/``), the first of:

1. ``$MINIVAE_SHARED_DATA`` (a folder holding ``mnist/``);
2. ``$MINIVAE_DATA`` when it holds ``mnist/`` (the library's own data variable);
3. ``../shared/data`` relative to the repository root;
4. last resort, this workplace's fixed location ``/work/shared/data`` (for a clone made elsewhere on the same
   machine, as CI does: there, with ``CI=true``, a test that needs the data fails when it is missing).

Fashion-MNIST (the training runs of the run-safety, resume, chaos and determinism tests): wherever the library's
own search finds it (:func:`minivae.data.available`: ``$MINIVAE_DATA``, the download cache, the system folder
``/usr/share/datasets/fashion-mnist``). :data:`FASHION` is that folder (the system folder when nothing is found,
so a skip names it).
"""
from __future__ import annotations

import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
WORKPLACE_SHARED_DATA = pathlib.Path("/work/shared/data")  # the last-resort fallback of step 4


def _shared_data() -> pathlib.Path:
    if os.environ.get("MINIVAE_SHARED_DATA"):
        return pathlib.Path(os.environ["MINIVAE_SHARED_DATA"])
    candidates = ([pathlib.Path(os.environ["MINIVAE_DATA"])] if os.environ.get("MINIVAE_DATA") else []) + [
        REPO.parent / "shared" / "data", WORKPLACE_SHARED_DATA]
    return next((c for c in candidates if (c / "mnist").is_dir()), REPO.parent / "shared" / "data")


def _fashion() -> pathlib.Path:
    from minivae.data import available
    from minivae.data.registry import get_info

    found = available("fashion-mnist").get("train")
    return found.parent if found is not None else pathlib.Path(get_info("fashion-mnist").system_dirs[0])


SHARED_DATA = _shared_data()
FASHION = _fashion()
