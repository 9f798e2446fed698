"""The plan replays the numba-cuda kernels (``minivae.kernels.gpu``) as it replays the CPU ones: under the CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``, set by conftest.py) those kernels take NumPy arrays, so they are registered
here as a CPU kernel set and a small MLP VAE is trained eagerly and compiled on them, bit for bit. On a machine with
a GPU, ``MINIVAE_REAL_GPU=1`` turns the simulator off and this test is skipped (the CuPy path is then exercised by
the GPU benchmarks)."""
from __future__ import annotations

import numpy as np
import pytest

from minivae import kernels
from minivae.kernels import gpu
from minivae.models import MLPVAE
from minivae.optim import Adam
from minivae.steps import ELBOStep, sample_eps

pytestmark = pytest.mark.skipif(not gpu.simulated(), reason="needs the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)")


def _train(compiled, steps=5):
    model = MLPVAE(latent_dim=2, image_size=4, hidden=(3,), rng=np.random.default_rng(0))
    opt = Adam(model.parameters(), lr=1e-2)
    step = ELBOStep(model, opt, compiled=compiled)
    rng = np.random.default_rng(1)
    losses = []
    for k in range(steps):
        x = (rng.random((2, 1, 4, 4)) < 0.5).astype(np.float32)
        losses.append(step(x, sample_eps(rng, 2, 2, np.float32, "cpu")))
    return model, losses, step


def test_compiled_step_on_the_simulated_gpu_kernels_gives_eager_bits(monkeypatch):
    monkeypatch.setitem(kernels._MODULES, ("cpu", "cudasim"), "minivae.kernels.gpu")  # undone after the test
    with kernels.use("cudasim"):
        m1, l1, _ = _train(compiled=False)
        m2, l2, step = _train(compiled=True)
    assert step.run.captures == 1 and l1 == l2
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert np.array_equal(p1.data, p2.data) and np.array_equal(p1.grad.data, p2.grad.data)
    names = {n.name for n in step.run.plan.nodes}
    assert {"Linear", "LinearBackward", "ReparameterizeKL"} <= names
    assert step.run.plan.fusions.get("linear+relu", 0) >= 1  # the numba-cuda dense kernel's ReLU epilogue
