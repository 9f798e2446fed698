"""Inpainting by gradient ascent over z: the mask, the masked likelihood, the MAP against a closed form,
and the figure `minivae plot` writes."""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae import nn, plots
from minivae.models import VAE, ConvVAE, inpaint, masked_log_likelihood, reconstruction_nll, square_mask


def test_square_mask_hides_a_centred_square():
    m = square_mask((2, 1, 8, 8), 4)
    assert m.shape == (2, 1, 8, 8) and m.dtype == np.float32
    assert (m[:, :, 2:6, 2:6] == 0).all() and m.sum() == 2 * (64 - 16)
    assert square_mask((1, 1, 8, 8), 2, top=0, left=6)[0, 0, 0:2, 6:8].sum() == 0
    with pytest.raises(ValueError, match="does not fit"):
        square_mask((1, 1, 8, 8), 4, top=6)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_masked_likelihood_reads_only_visible_pixels(rng, likelihood):
    out = mv.Tensor(rng.standard_normal((3, 1, 6, 6)))
    x = (rng.random((3, 1, 6, 6)) < 0.5).astype(np.float64)
    ones = mv.Tensor(np.ones_like(x))
    full = masked_log_likelihood(out, mv.Tensor(x), ones, likelihood).data
    np.testing.assert_allclose(full, -reconstruction_nll(out, mv.Tensor(x), likelihood).data, rtol=1e-12)
    mask = square_mask(x.shape, 3)
    x2 = np.where(mask > 0, x, 1 - x)  # change only the hidden pixels
    a = masked_log_likelihood(out, mv.Tensor(x), mv.Tensor(mask.astype(np.float64)), likelihood).data
    b = masked_log_likelihood(out, mv.Tensor(x2), mv.Tensor(mask.astype(np.float64)), likelihood).data
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, full)
    with pytest.raises(ValueError, match="unknown likelihood"):
        masked_log_likelihood(out, mv.Tensor(x), ones, "poisson")


def _linear_gaussian_vae(rng, latent=3, side=4, sigma=0.5):
    """A VAE whose decoder is affine, so the MAP z given visible pixels has a closed form."""
    d = side * side
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, 2 * latent, dtype=np.float64, rng=rng))
    decoder = nn.Sequential(nn.Linear(latent, d, dtype=np.float64, rng=rng), nn.Unflatten(1, (1, side, side)))
    return VAE(encoder, decoder, latent, likelihood="gaussian", sigma=sigma)


def test_inpaint_finds_the_closed_form_map_of_a_linear_gaussian_decoder(rng):
    model = _linear_gaussian_vae(rng)
    x = rng.random((2, 1, 4, 4))
    mask = square_mask(x.shape, 2)
    res = inpaint(model, x, mask, steps=1500, lr=0.02)
    lin = model.decoder[0]
    W, b = lin.weight.data, lin.bias.data  # (16, 3), (16,)
    s2 = model.sigma ** 2
    for i in range(2):
        v = mask[i].ravel() > 0
        A = W[v].T @ W[v] / s2 + np.eye(3)  # posterior precision: likelihood on visible pixels + N(0, I)
        z_map = np.linalg.solve(A, W[v].T @ (x[i].ravel()[v] - b[v]) / s2)
        np.testing.assert_allclose(res.z[i], z_map, atol=2e-3)
    # visible pixels kept, hidden pixels are the decoder's means at z (clipped to [0, 1])
    np.testing.assert_array_equal(res.filled[mask > 0], x[mask > 0])
    means = np.clip((res.z @ W.T + b).reshape(x.shape), 0, 1)
    np.testing.assert_allclose(res.filled[mask == 0], means[mask == 0], rtol=1e-10)
    assert res.objective.shape == (1501,) and res.objective[-1] > res.objective[0]


def test_inpaint_leaves_the_model_untouched_and_checks_its_arguments(rng):
    model = ConvVAE(latent_dim=2, rng=rng)
    before = [p.data.copy() for p in model.parameters()]
    x = (rng.random((2, 1, 28, 28)) < 0.3).astype(np.float32)
    res = inpaint(model, x, square_mask(x.shape, 10), steps=5)
    assert res.z.shape == (2, 2) and res.filled.shape == x.shape and res.objective.shape == (6,)
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="mask shape"):
        inpaint(model, x, np.ones((2, 1, 28, 27), np.float32))


def test_gradient_with_respect_to_z_matches_finite_differences(rng):
    model = _linear_gaussian_vae(rng)
    model.decoder = nn.Sequential(model.decoder[0], nn.Tanh(), model.decoder[1])  # a curved decoder
    x, mask = mv.Tensor(rng.random((2, 1, 4, 4))), mv.Tensor(square_mask((2, 1, 4, 4), 2).astype(np.float64))
    z = mv.Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    mv.gradcheck(lambda z: F.sum(masked_log_likelihood(model.decode(z), x, mask, "gaussian", 0.5)), [z])


def test_plot_writes_the_inpainting_figure(rng, tmp_path):
    model = ConvVAE(latent_dim=2, rng=rng)
    x = (rng.random((4, 1, 28, 28)) < 0.3).astype(np.float32)
    path = plots.inpainting(model, x, tmp_path / "inpainting.png", n=4, steps=3)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
