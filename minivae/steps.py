"""The negative ELBO on batches: the training step, :func:`train_step` (one call, eager or through an
:class:`ELBOStep`) and :class:`ELBOStep`, which runs it compiled (:func:`minivae.compile`, the default of
``minivae train``) or op by op (``--eager``, the textbook path), with the same bits; and :func:`evaluate`, the
test ELBO without a graph.
"""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from minivae import backend
from minivae.autograd.grad_mode import no_grad
from minivae.autograd.tensor import Tensor
from minivae.compiler import assert_finite
from minivae.compiler import compile as compile_step
from minivae.kernels._blas import one_thread as one_blas_thread
from minivae.models import negative_elbo
from minivae.run_checks import NonFiniteLossError


def sample_eps(rng: np.random.Generator, n: int, latent_dim: int, dtype, device: str):
    """Standard normal noise ``(n, latent_dim)`` drawn on the host (so CPU and GPU runs see the same eps)."""
    return backend.to_device(rng.standard_normal((n, latent_dim)).astype(dtype), device)


def _loss_message(loss) -> str:
    return f"loss is {float(np.asarray(backend.to_device(loss, backend.CPU)).reshape(()))}"


class ELBOStep:
    """One Adam (or other optimizer) step on ``negative_elbo``, compiled or eager.

    Args:
        model, optimizer: the VAE and its optimizer.
        beta, gamma: the loss's KL weight and capacity weight (see :func:`~minivae.models.negative_elbo`).
        compiled: run through :func:`minivae.compile` (True) or op by op (False).
        check: with ``compiled``, compare every replay with eager (``compile(check=True)``; slow).
    Attributes:
        run: the step function on Tensors ``(x, eps, y, capacity) -> (loss, recon, kl)``; when compiled,
            ``run.plan`` is the captured plan.
    """

    def __init__(self, model, optimizer, beta: float = 1.0, gamma: float = 1.0, compiled: bool = True,
                 check: bool = False):
        self.model, self.optimizer, self.beta, self.gamma = model, optimizer, beta, gamma
        self.compiled = bool(compiled)
        self.run = compile_step(self.step, check=check) if compiled else self.step

    def step(self, x, eps, y, capacity):
        """Forward, the finiteness check (before any update), backward and the optimizer's step."""
        terms = negative_elbo(self.model, x, eps, y=y, beta=self.beta, capacity=capacity, gamma=self.gamma)
        assert_finite(terms.loss, NonFiniteLossError, _loss_message)
        self.optimizer.zero_grad()
        terms.loss.backward()
        self.optimizer.step()
        return terms.loss, terms.recon, terms.kl

    def __call__(self, x, eps, y=None, capacity: float | None = None) -> dict:
        """The step on arrays (on the model's device); returns ``{"loss", "recon", "kl"}`` (batch means, nats)."""
        cap = None if capacity is None else Tensor(np.asarray(capacity, dtype=x.dtype))
        if cap is not None and self.model.device != backend.CPU:
            cap = cap.to(self.model.device)
        # The CPU kernels hold the BLAS at one thread around each call (minivae.kernels._blas.one_thread); holding it
        # once around the step saves that per call (about 16 calls a step, 10-20 us each). A compiled step does so too.
        with one_blas_thread() if self.model.device == backend.CPU else nullcontext():
            loss, recon, kl = self.run(Tensor(x), Tensor(eps), None if y is None else Tensor(y), cap)
        return {"loss": float(loss.item()), "recon": float(recon.data.mean()), "kl": float(kl.data.mean())}


def train_step(model, optimizer, x, rng: np.random.Generator, y=None, beta: float = 1.0,
               capacity: float | None = None, gamma: float = 1.0, *, step: ELBOStep | None = None) -> dict:
    """One optimizer step on the batch ``x`` (``(N, C, H, W)`` array on the model's device).

    ``y``: one-hot labels ``(N, num_classes)`` (array on the model's device) for conditional models.
    ``beta``: KL weight; ``capacity``/``gamma``: the capacity loss ``recon + gamma |KL - C|`` (see
    :func:`~minivae.models.negative_elbo`). ``step``: the :class:`ELBOStep` to run (compiled or not; its
    ``beta``/``gamma`` are used); default: an eager step.
    Returns ``{"loss", "recon", "kl"}``: batch means in nats (floats).
    Raises:
        NonFiniteLossError: the loss is NaN/Inf (checked before the update, so parameters are untouched).
    """
    eps = sample_eps(rng, x.shape[0], model.latent_dim, x.dtype, model.device)
    if step is None:
        step = ELBOStep(model, optimizer, beta=beta, gamma=gamma, compiled=False)
    return step(x, eps, y, capacity)


def evaluate(model, images, batch_size: int = 500, seed: int = 0, labels_onehot=None) -> dict:
    """Single-sample ELBO on ``images`` (host array ``(N, C, H, W)``), batched, without a graph.

    ``labels_onehot``: host array ``(N, num_classes)`` for conditional models.
    Returns ``{"elbo", "recon", "kl"}`` (means over examples, nats; ``recon`` is -log p(x|z) under the model's
    likelihood) and ``"mu"`` (host array ``(N, latent)``).
    """
    rng = np.random.default_rng(seed)
    recon, kl, mus = [], [], []
    with no_grad():
        for start in range(0, len(images), batch_size):
            xb = backend.to_device(images[start:start + batch_size], model.device)
            yb = None if labels_onehot is None else Tensor(backend.to_device(labels_onehot[start:start + batch_size],
                                                                            model.device))
            eps = sample_eps(rng, len(xb), model.latent_dim, xb.dtype, model.device)
            terms = negative_elbo(model, Tensor(xb), Tensor(eps), y=yb)
            recon.append(backend.to_device(terms.recon.data, "cpu"))
            kl.append(backend.to_device(terms.kl.data, "cpu"))
            mus.append(backend.to_device(model.encode(Tensor(xb), yb)[0].data, "cpu"))
    recon, kl = np.concatenate(recon).astype(np.float64), np.concatenate(kl).astype(np.float64)
    return {"elbo": float(-(recon + kl).mean()), "recon": float(recon.mean()), "kl": float(kl.mean()),
            "mu": np.concatenate(mus), "likelihood": model.likelihood, "units": "nats"}


# --------------------------------------------------------------------------- data
