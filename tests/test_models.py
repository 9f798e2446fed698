"""ConvVAE (TensorFlow's conv VAE tutorial) and the ELBO: shapes, parameter count, loss terms, training."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minivae as mv
from minivae import nn
from minivae.models import ConvVAE, build_model, negative_elbo
from minivae.optim import Adam


@pytest.fixture(scope="module")
def model():
    nn.init.manual_seed(0)
    return ConvVAE(latent_dim=2)


def binary_batch(n, seed=0, p=0.3):
    return (np.random.default_rng(seed).random((n, 1, 28, 28)) < p).astype(np.float32)


def test_layer_shapes(model):
    x = mv.Tensor(binary_batch(3))
    stats = model.encoder(x)
    assert stats.shape == (3, 4)  # mu and logvar side by side
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 2)
    np.testing.assert_array_equal(np.concatenate([mu.detach().numpy(), logvar.detach().numpy()], axis=1),
                                  stats.detach().numpy())
    logits = model.decode(mv.Tensor(np.zeros((3, 2), np.float32)))
    assert logits.shape == (3, 1, 28, 28) and logits.dtype == np.float32
    # intermediate shapes of the tutorial: 28 -> 13 -> 6 (encoder), 7 -> 14 -> 28 -> 28 (decoder)
    shapes = []
    for layer in list(model.encoder)[:4]:
        x = layer(x)
        shapes.append(x.shape[1:])
    assert shapes == [(32, 13, 13), (32, 13, 13), (64, 6, 6), (64, 6, 6)]


def test_forward_returns_all_terms(model):
    x = mv.Tensor(binary_batch(2))
    eps = mv.Tensor(np.zeros((2, 2), np.float32))
    logits, mu, logvar, z, kl = model(x, eps)
    assert logits.shape == (2, 1, 28, 28) and kl.shape == (2,)
    np.testing.assert_array_equal(z.detach().numpy(), mu.detach().numpy())  # eps = 0: z is the mean


def tf_tutorial_parameter_count(latent_dim, channels=1):
    """Count of TensorFlow's tutorial CVAE, layer by layer (weights + biases)."""
    conv = lambda c_in, c_out, k: c_in * c_out * k * k + c_out  # noqa: E731  (a one-line formula)
    dense = lambda n_in, n_out: n_in * n_out + n_out  # noqa: E731  (a one-line formula)
    encoder = conv(channels, 32, 3) + conv(32, 64, 3) + dense(6 * 6 * 64, 2 * latent_dim)
    decoder = dense(latent_dim, 7 * 7 * 32) + conv(32, 64, 3) + conv(64, 32, 3) + conv(32, channels, 3)
    return encoder + decoder


@pytest.mark.parametrize("latent_dim", [2, 8])
def test_parameter_count_equals_the_tutorial(latent_dim):
    m = ConvVAE(latent_dim=latent_dim)
    assert m.num_parameters() == tf_tutorial_parameter_count(latent_dim)
    if latent_dim == 2:
        assert m.num_parameters() == 69989


def test_parameter_names(model):
    names = [n for n, _ in model.named_parameters()]
    assert names[:4] == ["encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias"]
    assert "encoder.5.weight" in names and "decoder.0.weight" in names and names[-1] == "decoder.7.bias"
    assert dict(model.named_parameters())["decoder.3.weight"].shape == (32, 64, 3, 3)  # ConvTranspose2d layout


def test_build_model_and_unknown_name():
    assert isinstance(build_model("conv", latent_dim=3), ConvVAE)
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        build_model("nope")


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_negative_elbo_terms(model):
    x = binary_batch(4, seed=1)
    eps = np.random.default_rng(2).standard_normal((4, 2)).astype(np.float32)
    terms = negative_elbo(model, mv.Tensor(x), mv.Tensor(eps))
    assert terms.loss.shape == () and terms.recon.shape == (4,) and terms.kl.shape == (4,)
    recon, kl = terms.recon.detach().numpy().astype(np.float64), terms.kl.detach().numpy().astype(np.float64)
    # loss == mean(recon + kl)
    assert terms.loss.item() == pytest.approx(np.mean(recon + kl), rel=1e-5)
    assert terms.elbo == pytest.approx(-np.mean(recon + kl), rel=1e-6)
    # recon: BCE with logits summed over pixels, computed directly from the logits
    logits = terms.logits.detach().numpy().astype(np.float64)
    p = _sigmoid(logits)
    bce = -(x * np.log(p) + (1 - x) * np.log1p(-p))
    np.testing.assert_allclose(recon, bce.reshape(4, -1).sum(axis=1), rtol=1e-4)
    # kl: the analytic Gaussian KL of the encoder's statistics; z with the given eps
    mu, logvar = (a.detach().numpy().astype(np.float64) for a in model.encode(mv.Tensor(x)))
    np.testing.assert_allclose(kl, 0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar).sum(axis=1), rtol=1e-4, atol=1e-6)
    z = mu + np.exp(logvar / 2) * eps
    np.testing.assert_allclose(model.decode(mv.Tensor(z.astype(np.float32))).detach().numpy(),
                               terms.logits.detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_negative_elbo_beta_weights_only_the_kl(model):
    x, eps = binary_batch(3, seed=3), np.ones((3, 2), np.float32)
    plain = negative_elbo(model, x, eps)
    beta = negative_elbo(model, x, eps, beta=4.0)
    want = np.mean(beta.recon.detach().numpy().astype(np.float64) + 4.0 * beta.kl.detach().numpy())
    assert beta.loss.item() == pytest.approx(want, rel=1e-5)
    assert beta.elbo == pytest.approx(plain.elbo, rel=1e-6)  # beta does not enter the bound


def test_gradients_reach_every_parameter(model):
    model.zero_grad()
    terms = negative_elbo(model, binary_batch(2, seed=4), np.ones((2, 2), np.float32))
    terms.loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and np.isfinite(p.grad.detach().numpy()).all(), name
        assert np.abs(p.grad.detach().numpy()).sum() > 0, name
    model.zero_grad()


def test_train_steps_on_a_fixed_batch_decrease_the_loss():
    nn.init.manual_seed(0)
    m = ConvVAE(latent_dim=2)
    opt = Adam(m.parameters(), lr=1e-3)
    x = mv.Tensor(binary_batch(8, seed=5))
    eps = mv.Tensor(np.random.default_rng(6).standard_normal((8, 2)).astype(np.float32))
    losses = []
    for _ in range(6):
        terms = negative_elbo(m, x, eps)
        losses.append(terms.loss.item())
        opt.zero_grad()
        terms.loss.backward()
        opt.step()
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 20, losses  # the pixel biases alone make this easy
    assert all(b < a for a, b in zip(losses, losses[1:])), losses


def test_float64_model():
    m = ConvVAE(latent_dim=2, dtype=np.float64)
    terms = negative_elbo(m, binary_batch(2).astype(np.float64), np.zeros((2, 2)))
    assert terms.loss.dtype == np.float64


def test_official_mnist_test_images_give_about_784_log_2_at_init(shared_mnist_dir):
    from minivae.data import binarize, load_dataset, to_float

    images, labels = load_dataset("mnist", "test", data_dir=shared_mnist_dir)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8 and labels.shape == (10000,)
    x = binarize(to_float(images[:64]))
    assert x.shape == (64, 1, 28, 28) and set(np.unique(x)) <= {0.0, 1.0}
    assert 0.05 < x.mean() < 0.25  # MNIST digits: mostly background
    nn.init.manual_seed(0)
    m = ConvVAE(latent_dim=2)
    eps = np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)
    with mv.no_grad():
        terms = negative_elbo(m, x, eps)
    loss = terms.loss.item()
    assert math.isfinite(loss)
    # logits near 0 at init: each pixel costs about log 2 nats
    assert abs(loss - 784 * math.log(2)) < 0.3 * 784 * math.log(2), loss
