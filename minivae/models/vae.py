"""``VAE``: an encoder producing ``(mu, logvar)`` and a decoder producing likelihood parameters, optionally
conditioned on a one-hot label (the conditional VAE of Sohn, Lee & Yan 2015)."""
from __future__ import annotations

from minivae import functional as F
from minivae.nn.module import Module

#: how a conditional model feeds the label to its encoder: as extra constant image channels (conv encoders)
#: or as extra features after flattening the image (MLP encoders)
CONDITIONS = ("channels", "features")


def condition_input(x, y, how: str):
    """Join the one-hot label ``y`` ``(N, K)`` to the encoder input ``x`` ``(N, C, H, W)``.

    ``how="channels"``: ``(N, C + K, H, W)``, channel ``C + k`` constant 1 where the label is k
    (Sohn et al. 2015, sec. 4.1 use the label as an encoder input; constant maps are the usual conv form).
    ``how="features"``: ``(N, C*H*W + K)``. Raises ValueError for another ``how`` or mismatched batch sizes.
    """
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"labels have {y.shape[0]} rows but the batch has {x.shape[0]} examples")
    n, k = y.shape
    if how == "channels":
        maps = F.broadcast_to(F.reshape(y, (n, k, 1, 1)), (n, k) + tuple(x.shape[2:]))
        return F.concatenate([x, maps], axis=1)
    if how == "features":
        return F.concatenate([F.reshape(x, (n, -1)), y], axis=1)
    raise ValueError(f"condition must be one of {CONDITIONS}, got {how!r}")


class VAE(Module):
    """Variational autoencoder (Kingma & Welling 2014) around two Modules.

    ``encoder(x)`` must return ``(N, 2 * latent_dim)``: the first half is ``mu``, the second ``logvar``
    (the TensorFlow tutorial's split). ``decoder(z)`` returns Bernoulli logits (``likelihood="bernoulli"``)
    or Gaussian means (``"gaussian"``, fixed standard deviation ``sigma``), in the input's shape.

    With ``num_classes > 0`` the model is conditional (CVAE, Sohn, Lee & Yan 2015, eq. 4-5): ``encode(x, y)``
    and ``decode(z, y)`` need one-hot labels ``y`` ``(N, num_classes)``; the label joins the encoder input
    (see :func:`condition_input`) and is concatenated to ``z`` before decoding (so the decoder's first layer
    must take ``latent_dim + num_classes`` inputs).
    """

    def __init__(self, encoder: Module, decoder: Module, latent_dim: int, likelihood: str = "bernoulli",
                 sigma: float = 1.0, num_classes: int = 0, condition: str = "features"):
        super().__init__()
        from minivae.models.elbo import LIKELIHOODS

        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}; choose from {LIKELIHOODS}")
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        if condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim, self.likelihood, self.sigma = int(latent_dim), likelihood, float(sigma)
        self.num_classes, self.condition = int(num_classes), condition

    @property
    def conditional(self) -> bool:
        """True for a conditional VAE (encoder and decoder also see the label)."""
        return self.num_classes > 0

    def _label(self, y, n):
        if y is None:
            raise ValueError(f"{type(self).__name__} is conditional: pass one-hot labels y of shape "
                             f"(N, {self.num_classes})")
        if tuple(y.shape) != (n, self.num_classes):
            raise ValueError(f"labels must be one-hot of shape ({n}, {self.num_classes}), got {tuple(y.shape)}")
        return y

    def encode(self, x, y=None):
        """x ``(N, C, H, W)`` (and ``y`` ``(N, num_classes)`` if conditional) -> ``(mu, logvar)``, each
        ``(N, latent_dim)``. Unconditional models ignore ``y``."""
        if self.conditional:
            x = condition_input(x, self._label(y, x.shape[0]), self.condition)
        stats = self.encoder(x)
        mu, logvar = F.split(stats, [self.latent_dim, self.latent_dim], axis=1)
        return mu, logvar

    def decode(self, z, y=None):
        """z ``(N, latent_dim)`` (and ``y`` if conditional) -> logits (or means) in the data's shape."""
        if self.conditional:
            z = F.concatenate([z, self._label(y, z.shape[0])], axis=1)
        return self.decoder(z)

    def forward(self, x, eps, y=None):
        """Returns ``(logits, mu, logvar, z, kl)`` for one reparameterized sample."""
        mu, logvar = self.encode(x, y)
        z, kl = F.reparameterize_kl(mu, logvar, eps)
        return self.decode(z, y), mu, logvar, z, kl

    def config(self) -> dict:
        """What is needed to rebuild this model (saved in checkpoints): constructor keyword arguments."""
        cfg = {"latent_dim": self.latent_dim, "likelihood": self.likelihood}
        if self.sigma != 1.0:
            cfg["sigma"] = self.sigma
        return cfg
