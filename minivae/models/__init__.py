"""VAE models and the ELBO.

``MODELS`` maps the names used by ``minivae train --model`` to constructors.
"""
from minivae.models.conv_vae import ConvVAE
from minivae.models.elbo import ELBOTerms, negative_elbo, reconstruction_nll
from minivae.models.vae import VAE

MODELS = {"conv": ConvVAE}


def build_model(name: str, **kwargs):
    """Instantiate the model registered as ``name``. Raises ValueError for an unknown name."""
    try:
        return MODELS[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}") from None


__all__ = ["ConvVAE", "ELBOTerms", "negative_elbo", "reconstruction_nll", "VAE", "MODELS", "build_model"]
