"""VAE models and the ELBO: the VAE family of the literature on one ELBO code path.

``MODELS`` maps the names used by ``minivae train --model`` to constructors:

| name | model |
| --- | --- |
| ``conv``, ``vae-conv`` | :class:`ConvVAE`, TensorFlow's conv VAE tutorial |
| ``vae-conv-keras`` | :class:`KerasConvVAE`, the Keras CNN VAE example |
| ``vae-mlp`` | :class:`MLPVAE`, the Keras MLP VAE example (784-512-latent; ``hidden`` configurable) |
| ``vae-mlp-torch`` | :class:`TorchMLPVAE`, PyTorch's examples/vae (784-400-latent, use latent 20) |
| ``cvae`` | :class:`CVAE` (Sohn, Lee & Yan 2015), ``base="mlp"`` by default |
| ``cvae-conv`` | :class:`CVAE` with ``base="conv"`` (label as constant channels) |

beta-VAE (Higgins et al. 2017) and the capacity objective (Burgess et al. 2018) are loss options of
:func:`negative_elbo`, available on every model. Every model's ``config()`` holds its constructor
arguments, so ``build_model(name, **model.config())`` rebuilds it (what checkpoints rely on).
"""
from minivae.models.conv_vae import ConvVAE, KerasConvVAE
from minivae.models.cvae import CVAE
from minivae.models.elbo import ELBOTerms, LIKELIHOODS, capacity_at, negative_elbo, reconstruction_nll
from minivae.models.inpaint import InpaintResult, inpaint, masked_log_likelihood, square_mask
from minivae.models.mlp_vae import MLPVAE, TorchMLPVAE
from minivae.models.vae import VAE


def _cvae_conv(**kwargs):
    kwargs.setdefault("base", "conv")
    return CVAE(**kwargs)


MODELS = {
    "conv": ConvVAE,
    "vae-conv": ConvVAE,
    "vae-conv-keras": KerasConvVAE,
    "vae-mlp": MLPVAE,
    "vae-mlp-torch": TorchMLPVAE,
    "cvae": CVAE,
    "cvae-conv": _cvae_conv,
}


def build_model(name: str, **kwargs):
    """Instantiate the model registered as ``name`` with constructor keyword arguments ``kwargs``.

    Raises ValueError for an unknown name (listing the known ones) and TypeError for an unknown argument.
    """
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}") from None
    return cls(**kwargs)


def is_conditional(name: str) -> bool:
    """Whether the model registered as ``name`` needs labels (``cvae*``). Raises ValueError for unknown names."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    return MODELS[name] is CVAE or name.startswith("cvae")


__all__ = ["ConvVAE", "KerasConvVAE", "MLPVAE", "TorchMLPVAE", "CVAE", "ELBOTerms", "LIKELIHOODS",
           "capacity_at", "negative_elbo", "reconstruction_nll", "VAE", "MODELS", "build_model", "is_conditional",
           "inpaint", "InpaintResult", "masked_log_likelihood", "square_mask"]
