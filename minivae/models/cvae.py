"""The conditional VAE (Sohn, Lee & Yan 2015, "Learning structured output representation using deep
conditional generative models", eq. 4-5 with the recognition network q(z|x, y) and generator p(x|z, y))."""
from __future__ import annotations

import numpy as np

from minivae.models.conv_vae import keras_networks, tf_tutorial_networks
from minivae.models.mlp_vae import _hidden, mlp_networks
from minivae.models.vae import VAE

#: base architectures a CVAE can be built on
BASES = ("mlp", "conv", "conv-keras")


class CVAE(VAE):
    """A VAE conditioned on a one-hot class label ``y`` ``(N, num_classes)``.

    The label is concatenated to the encoder input (as ``num_classes`` constant channels for the conv bases,
    as extra features after flattening for the MLP base) and to ``z`` before decoding. Prior p(z) = N(0, I)
    (independent of y, as in the usual MNIST CVAE). ``encode(x, y)`` / ``decode(z, y)`` raise ValueError
    without labels of the right shape.

    Args: ``base`` one of ``"mlp"`` (``hidden``, ``init`` as :class:`MLPVAE`), ``"conv"`` (TF tutorial),
    ``"conv-keras"``; ``num_classes`` (10 for MNIST / Fashion-MNIST).
    """

    def __init__(self, latent_dim: int = 2, in_channels: int = 1, num_classes: int = 10, base: str = "mlp",
                 likelihood: str = "bernoulli", sigma: float = 1.0, hidden=(512,), init: str | None = None,
                 image_size: int = 28, dtype=np.float32, rng=None):
        if num_classes < 1:
            raise ValueError(f"a CVAE needs num_classes >= 1, got {num_classes}")
        if base == "mlp":
            hidden = _hidden(hidden)
            init = init or "glorot_uniform"
            encoder, decoder = mlp_networks(latent_dim, in_channels, image_size, hidden, num_classes, dtype, rng,
                                            init)
            condition = "features"
        elif base in ("conv", "conv-keras"):
            if image_size != 28:
                raise ValueError("the conv bases are for 28x28 images")
            build = tf_tutorial_networks if base == "conv" else keras_networks
            init = init or ("kaiming_uniform" if base == "conv" else "glorot_uniform")
            encoder, decoder = build(latent_dim, in_channels, num_classes, dtype, rng, init_method=init)
            condition = "channels"
        else:
            raise ValueError(f"unknown CVAE base {base!r}; choose from {BASES}")
        super().__init__(encoder, decoder, latent_dim, likelihood, sigma=sigma, num_classes=num_classes,
                         condition=condition)
        self.in_channels, self.base, self.init, self.image_size = in_channels, base, init, image_size
        self.hidden = tuple(hidden) if base == "mlp" else None

    def config(self) -> dict:
        cfg = {**super().config(), "in_channels": self.in_channels, "num_classes": self.num_classes,
               "base": self.base, "init": self.init, "image_size": self.image_size}
        if self.hidden is not None:
            cfg["hidden"] = list(self.hidden)
        return cfg
