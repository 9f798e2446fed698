"""Convolutional VAEs for 28x28 images: the TensorFlow tutorial's (``ConvVAE``) and the Keras example's
(``KerasConvVAE``)."""
from __future__ import annotations

import numpy as np

from minivae import nn
from minivae.models.vae import VAE


def tf_tutorial_networks(latent_dim, in_channels=1, num_classes=0, dtype=np.float32, rng=None,
                         init_method="kaiming_uniform"):
    """Encoder and decoder of TensorFlow's "Convolutional Variational Autoencoder" tutorial.

    A conditional model (``num_classes = K > 0``) gets ``in_channels + K`` encoder input channels and a
    decoder taking ``latent_dim + K`` inputs.
    """
    kw = dict(dtype=dtype, rng=rng, init_method=init_method)
    encoder = nn.Sequential(
        nn.Conv2d(in_channels + num_classes, 32, 3, stride=2, **kw), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, **kw), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 6 * 6, 2 * latent_dim, **kw),
    )
    decoder = nn.Sequential(
        nn.Linear(latent_dim + num_classes, 7 * 7 * 32, **kw), nn.ReLU(),
        nn.Unflatten(1, (32, 7, 7)),
        nn.ConvTranspose2d(32, 64, 3, stride=2, padding=1, output_padding=1, **kw), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1, **kw), nn.ReLU(),
        nn.ConvTranspose2d(32, in_channels, 3, stride=1, padding=1, **kw),
    )
    return encoder, decoder


def keras_networks(latent_dim, in_channels=1, num_classes=0, dtype=np.float32, rng=None,
                   init_method="glorot_uniform", dense=16):
    """Encoder and decoder of the Keras "Variational AutoEncoder" (CNN) example for 28x28 images.

    Encoder: Conv2d(C,32,3,s2,'same') ReLU -> 14x14, Conv2d(32,64,3,s2,'same') ReLU -> 7x7, Flatten,
    Linear(3136, dense=16) ReLU, Linear(16, 2*latent) -> mu, logvar (Keras' two Dense heads side by side).
    Decoder: Linear(latent, 7*7*64) ReLU, Unflatten, ConvTranspose2d(64,64,3,s2,'same') ReLU -> 14x14,
    ConvTranspose2d(64,32,3,s2,'same') ReLU -> 28x28, ConvTranspose2d(32,C,3,s1,'same') -> logits.
    'same' is realised as symmetric padding 1 (+ output_padding 1 for the stride-2 transposed convs): the
    output sizes equal Keras', the half-pixel alignment of TensorFlow's asymmetric padding differs.
    """
    kw = dict(dtype=dtype, rng=rng, init_method=init_method)
    encoder = nn.Sequential(
        nn.Conv2d(in_channels + num_classes, 32, 3, stride=2, padding=1, **kw), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1, **kw), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, dense, **kw), nn.ReLU(),
        nn.Linear(dense, 2 * latent_dim, **kw),
    )
    decoder = nn.Sequential(
        nn.Linear(latent_dim + num_classes, 7 * 7 * 64, **kw), nn.ReLU(),
        nn.Unflatten(1, (64, 7, 7)),
        nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1, **kw), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1, **kw), nn.ReLU(),
        nn.ConvTranspose2d(32, in_channels, 3, stride=1, padding=1, **kw),
    )
    return encoder, decoder


class ConvVAE(VAE):
    """Encoder: Conv2d(C,32,3,s2) ReLU, Conv2d(32,64,3,s2) ReLU, Flatten, Linear(2304, 2*latent) -> mu, logvar.
    Decoder: Linear(latent, 7*7*32) ReLU, Unflatten, ConvTranspose2d(32,64,3,s2,p1,op1) ReLU,
    ConvTranspose2d(64,32,3,s2,p1,op1) ReLU, ConvTranspose2d(32,C,3,s1,p1) -> Bernoulli logits.

    Input ``(N, C, 28, 28)`` float (binarised for the Bernoulli likelihood). PyTorch's default initialisation.
    Registered as ``conv`` and ``vae-conv``.
    """

    def __init__(self, latent_dim: int = 2, in_channels: int = 1, likelihood: str = "bernoulli", sigma: float = 1.0,
                 dtype=np.float32, rng=None):
        encoder, decoder = tf_tutorial_networks(latent_dim, in_channels, 0, dtype, rng)
        super().__init__(encoder, decoder, latent_dim, likelihood, sigma=sigma)
        self.in_channels = in_channels

    def config(self) -> dict:
        return {**super().config(), "in_channels": self.in_channels}


class KerasConvVAE(VAE):
    """The Keras example's CNN VAE (filters 32/64, 'same' padding, a 16-unit Dense before mu/logvar), Glorot
    uniform initialisation as Keras. See :func:`keras_networks`. Input ``(N, C, 28, 28)``; registered as
    ``vae-conv-keras``."""

    def __init__(self, latent_dim: int = 2, in_channels: int = 1, likelihood: str = "bernoulli", sigma: float = 1.0,
                 dense: int = 16, dtype=np.float32, rng=None):
        encoder, decoder = keras_networks(latent_dim, in_channels, 0, dtype, rng, dense=dense)
        super().__init__(encoder, decoder, latent_dim, likelihood, sigma=sigma)
        self.in_channels, self.dense = in_channels, dense

    def config(self) -> dict:
        return {**super().config(), "in_channels": self.in_channels, "dense": self.dense}
