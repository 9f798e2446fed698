"""The convolutional VAE of TensorFlow's "Convolutional Variational Autoencoder" tutorial, for 28x28 images."""
from __future__ import annotations

import numpy as np

from minivae import nn
from minivae.models.vae import VAE


class ConvVAE(VAE):
    """Encoder: Conv2d(C,32,3,s2) ReLU, Conv2d(32,64,3,s2) ReLU, Flatten, Linear(2304, 2*latent) -> mu, logvar.
    Decoder: Linear(latent, 7*7*32) ReLU, Unflatten, ConvTranspose2d(32,64,3,s2,p1,op1) ReLU,
    ConvTranspose2d(64,32,3,s2,p1,op1) ReLU, ConvTranspose2d(32,C,3,s1,p1) -> Bernoulli logits.

    Input ``(N, C, 28, 28)`` float (binarised for the Bernoulli likelihood). PyTorch's default initialisation.
    """

    def __init__(self, latent_dim: int = 2, in_channels: int = 1, likelihood: str = "bernoulli", dtype=np.float32,
                 rng=None):
        kw = dict(dtype=dtype, rng=rng)
        encoder = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, stride=2, **kw), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, **kw), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 6 * 6, 2 * latent_dim, **kw),
        )
        decoder = nn.Sequential(
            nn.Linear(latent_dim, 7 * 7 * 32, **kw), nn.ReLU(),
            nn.Unflatten(1, (32, 7, 7)),
            nn.ConvTranspose2d(32, 64, 3, stride=2, padding=1, output_padding=1, **kw), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1, **kw), nn.ReLU(),
            nn.ConvTranspose2d(32, in_channels, 3, stride=1, padding=1, **kw),
        )
        super().__init__(encoder, decoder, latent_dim, likelihood)
        self.in_channels = in_channels

    def config(self) -> dict:
        return {**super().config(), "in_channels": self.in_channels}
