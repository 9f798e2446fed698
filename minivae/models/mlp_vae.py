"""Fully connected VAEs: the Keras example's (784-512-2) and the PyTorch example's (784-400-20)."""
from __future__ import annotations

import numbers

import numpy as np

from minivae import nn
from minivae.models.vae import VAE


def _hidden(hidden) -> tuple:
    hidden = (hidden,) if isinstance(hidden, numbers.Integral) else tuple(hidden)
    if not all(isinstance(h, numbers.Integral) and not isinstance(h, bool) for h in hidden):
        raise ValueError(f"hidden must be one or more positive layer sizes, got {hidden!r}")
    hidden = tuple(int(h) for h in hidden)
    if not hidden or min(hidden) < 1:
        raise ValueError(f"hidden must be one or more positive layer sizes, got {hidden!r}")
    return hidden


def mlp_networks(latent_dim, in_channels=1, image_size=28, hidden=(512,), num_classes=0, dtype=np.float32,
                 rng=None, init_method="kaiming_uniform"):
    """Encoder ``Flatten, [Linear(., h) ReLU] * len(hidden), Linear(h, 2*latent)`` and the mirrored decoder
    ``[Linear(., h) ReLU] * ..., Linear(h, C*S*S), Unflatten -> (C, S, S)`` logits (or means).

    A conditional model (``num_classes = K``) takes ``C*S*S + K`` encoder inputs and ``latent + K`` decoder inputs.
    """
    hidden = _hidden(hidden)
    kw = dict(dtype=dtype, rng=rng, init_method=init_method)
    d = in_channels * image_size * image_size
    enc, width = [nn.Flatten()], d + num_classes
    for h in hidden:
        enc += [nn.Linear(width, h, **kw), nn.ReLU()]
        width = h
    enc.append(nn.Linear(width, 2 * latent_dim, **kw))
    dec, width = [], latent_dim + num_classes
    for h in reversed(hidden):
        dec += [nn.Linear(width, h, **kw), nn.ReLU()]
        width = h
    dec += [nn.Linear(width, d, **kw), nn.Unflatten(1, (in_channels, image_size, image_size))]
    return nn.Sequential(*enc), nn.Sequential(*dec)


class MLPVAE(VAE):
    """Multilayer-perceptron VAE (Kingma & Welling 2014, appendix C.2: one hidden layer each way).

    Defaults are the Keras "variational_autoencoder.py" example: 784-512-ReLU, latent 2, Glorot uniform init.
    ``hidden`` gives the layer sizes (depth = its length), e.g. ``(400,)`` with latent 20 is PyTorch's
    examples/vae (registered as ``vae-mlp-torch``, PyTorch's init). Input ``(N, C, S, S)`` float.
    Raises ValueError for empty/non-positive ``hidden`` or an unknown likelihood.
    """

    def __init__(self, latent_dim: int = 2, in_channels: int = 1, image_size: int = 28, hidden=(512,),
                 likelihood: str = "bernoulli", sigma: float = 1.0, init: str = "glorot_uniform",
                 dtype=np.float32, rng=None):
        hidden = _hidden(hidden)
        encoder, decoder = mlp_networks(latent_dim, in_channels, image_size, hidden, 0, dtype, rng, init)
        super().__init__(encoder, decoder, latent_dim, likelihood, sigma=sigma)
        self.in_channels, self.image_size, self.hidden, self.init = in_channels, image_size, hidden, init

    def config(self) -> dict:
        return {**super().config(), "in_channels": self.in_channels, "image_size": self.image_size,
                "hidden": list(self.hidden), "init": self.init}


class TorchMLPVAE(MLPVAE):
    """PyTorch's examples/vae: 784-400-ReLU-(20, 20) encoder, 20-400-ReLU-784 decoder, PyTorch's init.
    Same as ``MLPVAE(hidden=(400,), init="kaiming_uniform")``; the latent size comes from ``latent_dim``
    (the example uses 20)."""

    def __init__(self, latent_dim: int = 20, in_channels: int = 1, image_size: int = 28, hidden=(400,),
                 likelihood: str = "bernoulli", sigma: float = 1.0, init: str = "kaiming_uniform",
                 dtype=np.float32, rng=None):
        super().__init__(latent_dim, in_channels, image_size, hidden, likelihood, sigma, init, dtype, rng)
