"""Inpainting with a trained VAE: fill the hidden pixels of an image by gradient ascent over its latent ``z``.

For each image ``x`` with a mask ``m`` (1 = pixel seen, 0 = hidden) find

    z* = argmax_z  log p(x_visible | z) + log p(z),      p(z) = N(0, I),

the maximum a posteriori latent given only the visible pixels, and fill the hidden pixels with the decoder's
means ``p(x_hidden | z*)``. ``log p(x_visible | z)`` is the model's likelihood summed over the visible pixels
only (Bernoulli: ``-BCE-with-logits``; Gaussian: ``-||x - mean||^2 / (2 sigma^2)`` plus its constant), so the
hidden pixels exert no pull on ``z``. The gradient with respect to ``z`` is minivae's own backward pass
through the decoder; the model's parameters are held fixed (their ``requires_grad`` is switched off for the
duration and restored after). The ascent runs Adam (Kingma & Ba 2015) on ``z``, started from the encoder's
posterior mean of the masked image (hidden pixels set to 0), so it refines the amortised guess.

This is the classic use of a generative model's latent space for missing data (e.g. Rezende, Mohamed &
Wierstra 2014, sec. 5, "imputation"; here MAP over z instead of their Markov chain).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minivae import backend
import minivae.functional as F
from minivae.autograd.grad_mode import no_grad
from minivae.autograd.tensor import Tensor
from minivae.optim.adam import Adam

__all__ = ["square_mask", "masked_log_likelihood", "inpaint", "InpaintResult"]


def square_mask(shape, size: int, top: int | None = None, left: int | None = None) -> np.ndarray:
    """A float32 mask of ``shape`` ``(N, C, H, W)``: 1 everywhere except a ``size x size`` square of 0s.

    ``top``/``left`` place the square's upper-left corner (default: centred). Raises ValueError when the
    square does not fit inside ``H x W`` or ``size < 1``.
    """
    n, c, h, w = (int(s) for s in shape)
    top = (h - size) // 2 if top is None else int(top)
    left = (w - size) // 2 if left is None else int(left)
    if size < 1 or top < 0 or left < 0 or top + size > h or left + size > w:
        raise ValueError(f"a {size}x{size} square at ({top}, {left}) does not fit in a {h}x{w} image")
    mask = np.ones((n, c, h, w), np.float32)
    mask[:, :, top:top + size, left:left + size] = 0
    return mask


def masked_log_likelihood(output: Tensor, x: Tensor, mask: Tensor, likelihood: str = "bernoulli",
                          sigma: float = 1.0) -> Tensor:
    """``log p(x_visible | z)`` per example, ``(N,)``, in nats: the model's log-likelihood summed over the
    pixels where ``mask`` is 1. ``output``: decoder logits (Bernoulli) or means (Gaussian), shape of ``x``.
    Raises ValueError for an unknown likelihood."""
    n = x.shape[0]
    if likelihood == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(output, x, reduction="none")
        return -F.sum(F.reshape(per_pixel * mask, (n, -1)), axis=1)
    if likelihood == "gaussian":
        se = F.mse_loss(output, x, reduction="none")
        visible = F.sum(F.reshape(mask, (n, -1)), axis=1)
        nll = F.sum(F.reshape(se * mask, (n, -1)), axis=1) * (0.5 / sigma ** 2) \
            + visible * (0.5 * math.log(2 * math.pi * sigma ** 2))
        return -nll
    raise ValueError(f"unknown likelihood {likelihood!r}; choose 'bernoulli' or 'gaussian'")


@dataclass
class InpaintResult:
    """What :func:`inpaint` found.

    Attributes:
        z: MAP latents ``(N, latent_dim)``, host float array.
        means: decoded pixel means at ``z`` ``(N, C, H, W)`` in [0, 1] (Bernoulli: probabilities).
        filled: the input with its hidden pixels replaced by ``means`` (visible pixels unchanged).
        objective: ``log p(x_visible | z) + log p(z)`` per step, mean over the images, nats ``(steps + 1,)``
            (entry 0 at the start point).
    """

    z: np.ndarray
    means: np.ndarray
    filled: np.ndarray
    objective: np.ndarray


def _log_prior(z: Tensor) -> Tensor:
    """``log N(z; 0, I)`` per example, nats."""
    d = z.shape[1]
    return F.sum(z * z, axis=1) * -0.5 - 0.5 * d * math.log(2 * math.pi)


def inpaint(model, x: np.ndarray, mask: np.ndarray, steps: int = 200, lr: float = 0.05, y=None,
            z0: np.ndarray | None = None) -> InpaintResult:
    """Fill the hidden pixels of ``x`` by gradient ascent on ``log p(x_visible | z) + log p(z)`` over ``z``.

    Args:
        model: a trained :class:`~minivae.models.VAE` (``encode``, ``decode``, ``likelihood``, ``latent_dim``).
        x: host images ``(N, C, H, W)`` float32 in [0, 1]; only the pixels where ``mask`` is 1 are read.
        mask: host array of ``x``'s shape, 1 = visible, 0 = hidden (see :func:`square_mask`).
        steps: Adam steps on ``z``; lr: Adam's step size (in latent units).
        y: one-hot labels ``(N, num_classes)`` for conditional models.
        z0: start point ``(N, latent_dim)``; default: the encoder's mean of ``x * mask``.
    Returns:
        :class:`InpaintResult`.
    Raises:
        ValueError: ``mask`` and ``x`` differ in shape, or ``steps < 0``.
    """
    if tuple(mask.shape) != tuple(x.shape):
        raise ValueError(f"mask shape {tuple(mask.shape)} differs from the images' {tuple(x.shape)}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    dev = model.device
    xm = (x * mask).astype(x.dtype)
    xt, mt = Tensor(backend.to_device(xm, dev)), Tensor(backend.to_device(mask.astype(x.dtype), dev))
    yt = None if y is None else Tensor(backend.to_device(np.asarray(y, x.dtype), dev))
    if z0 is None:
        with no_grad():
            z0 = backend.to_device(model.encode(xt, yt)[0].data, "cpu")
    z = Tensor(backend.to_device(np.array(z0, dtype=x.dtype), dev), requires_grad=True)
    opt = Adam([z], lr=lr)
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    history = []
    try:
        for p in params:
            p.requires_grad = False
        for step in range(steps + 1):
            objective = masked_log_likelihood(model.decode(z, yt), xt, mt, model.likelihood,
                                              getattr(model, "sigma", 1.0)) + _log_prior(z)
            history.append(float(objective.data.mean()))
            if step == steps:
                break
            opt.zero_grad()
            (-F.sum(objective)).backward()  # ascent on the objective = descent on its negative
            opt.step()
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad = flag
    zh = backend.to_device(z.data, "cpu")
    with no_grad():
        out = model.decode(Tensor(z.data), yt)
        out = F.sigmoid(out) if model.likelihood == "bernoulli" else out
    means = np.clip(backend.to_device(out.data, "cpu"), 0.0, 1.0).reshape(x.shape)
    filled = np.where(mask > 0, x, means).astype(x.dtype)
    return InpaintResult(z=zh, means=means, filled=filled, objective=np.asarray(history))
