"""Shared test set-up.

The CUDA simulator must be switched on before numba is first imported, so that the GPU kernels run
(slowly, in Python) on machines without a GPU. On a machine with a real GPU set
``MINIVAE_REAL_GPU=1`` to run the same tests on the device instead.
"""
from __future__ import annotations

import os
import pathlib

if os.environ.get("MINIVAE_REAL_GPU") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np  # noqa: E402  (after the sys.path / environment set-up above)
import pytest  # noqa: E402  (after the sys.path / environment set-up above)

REPO = pathlib.Path(__file__).resolve().parents[1]


from datapaths import SHARED_DATA  # noqa: E402  (the search path is documented in tests/datapaths.py)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def shared_mnist_dir() -> pathlib.Path:
    """The folder holding the official MNIST test set (../shared/data/mnist).

    Fails in CI (CI=true) when it is missing; skips with the reason elsewhere.
    """
    path = SHARED_DATA / "mnist"
    if not (path / "t10k-images-idx3-ubyte.gz").is_file():
        msg = f"MNIST test set not found at {path} (set MINIVAE_SHARED_DATA to the folder holding mnist/)"
        if _in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
