"""``VAE``: an encoder producing ``(mu, logvar)`` and a decoder producing likelihood parameters."""
from __future__ import annotations

from minivae import functional as F
from minivae.nn.module import Module


class VAE(Module):
    """Variational autoencoder (Kingma & Welling 2014) around two Modules.

    ``encoder(x)`` must return ``(N, 2 * latent_dim)``: the first half is ``mu``, the second ``logvar``
    (the TensorFlow tutorial's split). ``decoder(z)`` returns Bernoulli logits (``likelihood="bernoulli"``)
    or Gaussian means (``"gaussian"``), in the input's shape.
    """

    def __init__(self, encoder: Module, decoder: Module, latent_dim: int, likelihood: str = "bernoulli"):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim, self.likelihood = latent_dim, likelihood

    def encode(self, x, y=None):
        """x ``(N, ...)`` -> ``(mu, logvar)``, each ``(N, latent_dim)``."""
        stats = self.encoder(x)
        mu, logvar = F.split(stats, [self.latent_dim, self.latent_dim], axis=1)
        return mu, logvar

    def decode(self, z, y=None):
        """z ``(N, latent_dim)`` -> logits (or means) in the data's shape."""
        return self.decoder(z)

    def forward(self, x, eps, y=None):
        """Returns ``(logits, mu, logvar, z, kl)`` for one reparameterized sample."""
        mu, logvar = self.encode(x, y)
        z, kl = F.reparameterize_kl(mu, logvar, eps)
        return self.decode(z, y), mu, logvar, z, kl

    def config(self) -> dict:
        """What is needed to rebuild this model (saved in checkpoints)."""
        return {"latent_dim": self.latent_dim, "likelihood": self.likelihood}
