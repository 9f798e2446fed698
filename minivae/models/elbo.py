"""The evidence lower bound (ELBO) of a VAE and its two terms, one code path for every model.

For a data point x, with encoder q(z|x) = N(mu, diag(exp(logvar))) and prior N(0, I)
(Kingma & Welling 2014, eq. 3 and 10):

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))

estimated with one reparameterized sample ``z = mu + exp(logvar/2) * eps``. The training loss is
``mean_batch(recon + beta * kl)`` where ``recon = -log p(x|z)`` is summed over pixels and ``kl`` over latent
dimensions, all in nats (``beta = 1`` is the plain VAE; ``beta > 1`` the beta-VAE of Higgins et al. 2017).
"""
from __future__ import annotations

from dataclasses import dataclass

from minivae import functional as F
from minivae.autograd.tensor import Tensor

LIKELIHOODS = ("bernoulli", "gaussian")


@dataclass
class ELBOTerms:
    """``loss``: scalar Tensor, ``mean(recon + beta * kl)`` in nats (what to minimise);
    ``recon``: ``(N,)`` Tensor, -log p(x|z) per example, nats; ``kl``: ``(N,)`` Tensor, nats;
    ``logits``: the decoder output (Bernoulli logits, or Gaussian means)."""

    loss: Tensor
    recon: Tensor
    kl: Tensor
    logits: Tensor

    @property
    def elbo(self) -> float:
        """Mean ELBO of the batch, nats: ``-(recon + kl)`` (beta does not enter the bound)."""
        return -float((self.recon.data + self.kl.data).mean())


def reconstruction_nll(output: Tensor, x: Tensor, likelihood: str = "bernoulli", sigma: float = 1.0) -> Tensor:
    """Per-example negative log-likelihood ``-log p(x|z)``, summed over all non-batch axes, in nats.

    ``bernoulli``: ``output`` are logits, x in [0, 1] (binarised data): BCE-with-logits summed.
    ``gaussian``: ``output`` are means of N(output, sigma^2 I) (grey-level data): the MSE form plus its
    normalising constant. Returns ``(N,)``. Raises ValueError for an unknown likelihood.
    """
    n = x.shape[0]
    if likelihood == "bernoulli":
        bce = F.binary_cross_entropy_with_logits(output, x, reduction="none")
        return F.sum(F.reshape(bce, (n, -1)), axis=1)
    if likelihood == "gaussian":
        return F.gaussian_nll(output, x, sigma=sigma)
    raise ValueError(f"unknown likelihood {likelihood!r}; choose from {LIKELIHOODS}")


def negative_elbo(model, x, eps, y=None, beta: float = 1.0) -> ELBOTerms:
    """Encode, reparameterize (fused with the KL), decode and score one batch.

    Args:
        model: a :class:`~minivae.models.VAE` (``encode``, ``decode``, ``likelihood``).
        x: ``(N, ...)`` Tensor or array in the model's input layout; eps: ``(N, latent_dim)`` N(0, I) noise.
        y: optional labels (one-hot ``(N, num_classes)``) for conditional models.
        beta: weight of the KL term in the loss.
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    mu, logvar = model.encode(x, y)
    z, kl = F.reparameterize_kl(mu, logvar, eps if isinstance(eps, Tensor) else Tensor(eps))
    logits = model.decode(z, y)
    recon = reconstruction_nll(logits, x, model.likelihood, getattr(model, "sigma", 1.0))
    loss = F.mean(recon + kl * beta) if beta != 1.0 else F.mean(recon + kl)
    return ELBOTerms(loss=loss, recon=recon, kl=kl, logits=logits)
