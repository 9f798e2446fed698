"""The evidence lower bound (ELBO) of a VAE and its two terms, one code path for every model.

For a data point x, with encoder q(z|x) = N(mu, diag(exp(logvar))) and prior N(0, I)
(Kingma & Welling 2014, eq. 3 and 10):

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))

estimated with one reparameterized sample ``z = mu + exp(logvar/2) * eps``. The training loss is
``mean_batch(recon + beta * kl)`` where ``recon = -log p(x|z)`` is summed over pixels and ``kl`` over latent
dimensions, all in nats (``beta = 1`` is the plain VAE; ``beta > 1`` the beta-VAE of Higgins et al. 2017,
eq. 4). With a capacity ``C`` (Burgess et al. 2018, "Understanding disentangling in beta-VAE", eq. 8) the loss
is ``mean_batch(recon) + gamma * |mean_batch(kl) - C|`` instead. Conditional models (CVAE, Sohn et al. 2015,
eq. 5) take the one-hot label ``y`` in both networks; the bound is then on log p(x|y).
"""
from __future__ import annotations

from dataclasses import dataclass

from minivae import functional as F
from minivae.autograd.tensor import Tensor

LIKELIHOODS = ("bernoulli", "gaussian")


@dataclass
class ELBOTerms:
    """``loss``: scalar Tensor in nats (what to minimise: ``mean(recon + beta * kl)``, or the capacity form);
    ``recon``: ``(N,)`` Tensor, -log p(x|z) per example, nats; ``kl``: ``(N,)`` Tensor, nats;
    ``logits``: the decoder output (Bernoulli logits, or Gaussian means); ``likelihood``: which p(x|z)."""

    loss: Tensor
    recon: Tensor
    kl: Tensor
    logits: Tensor
    likelihood: str = "bernoulli"
    units: str = "nats"

    @property
    def elbo(self) -> float:
        """Mean ELBO of the batch, nats: ``-(recon + kl)`` (beta, C and gamma do not enter the bound)."""
        return -float((self.recon.data + self.kl.data).mean())


def reconstruction_nll(output: Tensor, x: Tensor, likelihood: str = "bernoulli", sigma: float = 1.0) -> Tensor:
    """Per-example negative log-likelihood ``-log p(x|z)``, summed over all non-batch axes, in nats.

    ``bernoulli``: ``output`` are logits, x in [0, 1] (binarised data): BCE-with-logits summed.
    ``gaussian``: ``output`` are means of N(output, sigma^2 I) (grey-level data): the MSE form plus its
    normalising constant, ``||x - output||^2 / (2 sigma^2) + D/2 log(2 pi sigma^2)``.
    Returns ``(N,)``. Raises ValueError for an unknown likelihood.
    """
    n = x.shape[0]
    if likelihood == "bernoulli":
        bce = F.binary_cross_entropy_with_logits(output, x, reduction="none")
        return F.sum(F.reshape(bce, (n, -1)), axis=1)
    if likelihood == "gaussian":
        return F.gaussian_nll(output, x, sigma=sigma)
    raise ValueError(f"unknown likelihood {likelihood!r}; choose from {LIKELIHOODS}")


def capacity_at(step: int, capacity_max: float, capacity_steps: int) -> float:
    """Burgess et al. (2018, sec. 5) capacity schedule: ``C(step) = C_max * min(1, step / capacity_steps)``,
    in nats, rising linearly from 0 at step 0 to ``C_max`` at ``capacity_steps`` and constant after.
    Raises ValueError for a negative ``C_max`` or ``step``, or ``capacity_steps < 1``."""
    if capacity_max < 0 or step < 0:
        raise ValueError(f"capacity_max and step must be >= 0, got {capacity_max}, {step}")
    if capacity_steps < 1:
        raise ValueError(f"capacity_steps must be >= 1, got {capacity_steps}")
    return float(capacity_max) * min(1.0, step / capacity_steps)


def negative_elbo(model, x, eps, y=None, beta: float = 1.0, capacity: float | None = None,
                  gamma: float = 1.0) -> ELBOTerms:
    """Encode, reparameterize (fused with the KL), decode and score one batch.

    Args:
        model: a :class:`~minivae.models.VAE` (``encode``, ``decode``, ``likelihood``, ``sigma``).
        x: ``(N, ...)`` Tensor or array in the model's input layout; eps: ``(N, latent_dim)`` N(0, I) noise.
        y: one-hot labels ``(N, num_classes)`` for conditional models (ignored by the others).
        beta: weight of the KL term in the loss (Higgins et al. 2017); ignored when ``capacity`` is given.
        capacity: the target KL ``C`` in nats (Burgess et al. 2018): loss = ``mean(recon) + gamma |mean(kl) - C|``
            (the absolute value's subgradient at 0 is taken as +1).
    Returns: :class:`ELBOTerms` (per-example recon and KL in nats, whatever the loss form).
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    if y is not None and not isinstance(y, Tensor):
        y = Tensor(y)
    mu, logvar = model.encode(x, y)
    z, kl = F.reparameterize_kl(mu, logvar, eps if isinstance(eps, Tensor) else Tensor(eps))
    logits = model.decode(z, y)
    recon = reconstruction_nll(logits, x, model.likelihood, getattr(model, "sigma", 1.0))
    if capacity is not None:
        gap = F.mean(kl) - (capacity if isinstance(capacity, Tensor) else float(capacity))
        # the subgradient's sign as a Tensor (+1 at 0), not a Python branch on .item(): a compiled step keeps it
        sign = F.where(gap.detach() >= 0, 1.0, -1.0).to(gap.dtype)
        loss = F.mean(recon) + gap * (sign * float(gamma))
    elif beta != 1.0:
        loss = F.mean(recon + kl * beta)
    else:
        loss = F.mean(recon + kl)
    return ELBOTerms(loss=loss, recon=recon, kl=kl, logits=logits, likelihood=model.likelihood)
