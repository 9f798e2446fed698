"""The VAE family: every registered model's shapes, config round trip and a few training steps; CVAE
conditioning (and that its samples follow the label on real digits); beta and capacity losses; likelihoods."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import minivae as mv
from minivae.autograd.tensor import Tensor
from minivae.data import one_hot
from minivae.models import (CVAE, MLPVAE, MODELS, build_model, capacity_at, is_conditional, negative_elbo)
from minivae.models.vae import condition_input
from minivae.optim import Adam
from minivae.train import TrainConfig, fit, train_step

SMALL = {"vae-mlp": {"hidden": [32]}, "vae-mlp-torch": {"hidden": [32]}, "cvae": {"hidden": [32]}}


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, 28, 28), np.float32)
    for i in range(n):  # blocky binary images with some structure
        r, c = rng.integers(4, 20, size=2)
        x[i, 0, r:r + 8, c:c + 8] = 1
    return x, one_hot(np.arange(n) % 10, 10)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_shapes_and_config_round_trip(name):
    x, y = _batch(4)
    model = build_model(name, latent_dim=3, **SMALL.get(name, {}))
    yy = Tensor(y) if is_conditional(name) else None
    mu, logvar = model.encode(Tensor(x), yy)
    assert mu.shape == logvar.shape == (4, 3)
    out = model.decode(mu, yy)
    assert out.shape == x.shape
    terms = negative_elbo(model, x, np.zeros((4, 3), np.float32), y=y if is_conditional(name) else None)
    assert terms.recon.shape == terms.kl.shape == (4,) and terms.likelihood == "bernoulli"
    twin = build_model(name, **model.config())           # what a checkpoint does
    twin.load_state_dict(model.state_dict())
    t2 = negative_elbo(twin, x, np.zeros((4, 3), np.float32), y=y if is_conditional(name) else None)
    np.testing.assert_allclose(t2.loss.item(), terms.loss.item(), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_few_steps_lower_the_loss(name):
    x, y = _batch(16)
    mv.nn.init.manual_seed(0)
    model = build_model(name, latent_dim=2, **SMALL.get(name, {}))
    y = y if is_conditional(name) else None
    opt = Adam(model.parameters(), lr=2e-3)
    eps = np.random.default_rng(1).standard_normal((16, 2)).astype(np.float32)
    before = negative_elbo(model, x, eps, y=y).loss.item()
    rng = np.random.default_rng(0)
    for _ in range(8):
        stats = train_step(model, opt, x, rng, y=y)
        assert set(stats) == {"loss", "recon", "kl"} and math.isfinite(stats["loss"])
    after = negative_elbo(model, x, eps, y=y).loss.item()
    assert after < before - 5, (before, after)


def test_layer_sizes_of_the_classics():
    keras = MLPVAE(latent_dim=2)                      # Keras example: 784-512-2
    assert keras.num_parameters() == 784 * 512 + 512 + 512 * 4 + 4 + 2 * 512 + 512 + 512 * 784 + 784
    torch_ex = build_model("vae-mlp-torch", latent_dim=20)   # PyTorch example: 784-400-20
    assert torch_ex.num_parameters() == (784 * 400 + 400) + (400 * 40 + 40) + (20 * 400 + 400) + (400 * 784 + 784)
    deep = MLPVAE(latent_dim=2, hidden=(64, 32))
    assert [p.shape for p in deep.encoder.parameters()][::2] == [(64, 784), (32, 64), (4, 32)]
    keras_cnn = build_model("vae-conv-keras", latent_dim=2)
    shapes = [p.shape for p in keras_cnn.encoder.parameters()][::2]
    assert shapes == [(32, 1, 3, 3), (64, 32, 3, 3), (16, 3136), (4, 16)]
    with pytest.raises(ValueError, match="hidden"):
        MLPVAE(hidden=())
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope")
    with pytest.raises(ValueError, match="likelihood"):
        MLPVAE(likelihood="poisson")


def test_condition_input_channels_and_features_and_gradcheck():
    x = np.random.default_rng(0).random((2, 1, 4, 4))
    y = one_hot(np.array([2, 0]), 3, dtype=np.float64)
    ch = condition_input(Tensor(x), Tensor(y), "channels").data
    assert ch.shape == (2, 4, 4, 4)
    np.testing.assert_array_equal(ch[:, 0], x[:, 0])
    assert (ch[0, 3] == 1).all() and (ch[0, 1] == 0).all() and (ch[1, 1] == 1).all()
    feat = condition_input(Tensor(x), Tensor(y), "features").data
    assert feat.shape == (2, 19) and (feat[:, 16:] == y).all()
    for how in ("channels", "features"):
        assert mv.gradcheck(lambda a, b: condition_input(a, b, how), [x, y])
    with pytest.raises(ValueError, match="rows"):
        condition_input(Tensor(x), Tensor(y[:1]), "channels")


def test_cvae_needs_labels_of_the_right_shape():
    model = CVAE(latent_dim=2, hidden=(16,))
    x, y = _batch(2)
    with pytest.raises(ValueError, match="conditional"):
        model.encode(Tensor(x))
    with pytest.raises(ValueError, match="one-hot"):
        model.decode(Tensor(np.zeros((2, 2), np.float32)), Tensor(y[:, :5]))
    with pytest.raises(ValueError, match="base"):
        CVAE(base="transformer")
    conv = build_model("cvae-conv", latent_dim=2)
    assert conv.base == "conv" and conv.encoder[0].weight.shape == (32, 11, 3, 3)


def test_beta_and_capacity_losses():
    x, _ = _batch(6)
    model = MLPVAE(latent_dim=2, hidden=(16,))
    eps = np.random.default_rng(0).standard_normal((6, 2)).astype(np.float32)
    plain = negative_elbo(model, x, eps)
    beta = negative_elbo(model, x, eps, beta=7.0)
    r, k = plain.recon.data.astype(np.float64), plain.kl.data.astype(np.float64)
    np.testing.assert_allclose(beta.loss.item(), (r + 7 * k).mean(), rtol=1e-5)
    for c in (0.0, k.mean() + 3.0):                 # KL above C, then below C
        cap = negative_elbo(model, x, eps, capacity=c, gamma=10.0)
        np.testing.assert_allclose(cap.loss.item(), r.mean() + 10 * abs(k.mean() - c), rtol=1e-5)
        np.testing.assert_allclose(cap.elbo, plain.elbo, rtol=1e-6)   # the bound itself is unchanged
    # below the target the capacity term pushes the KL up: its gradient is that of mean(recon) - gamma * mean(kl)
    from minivae import functional as F

    cap = negative_elbo(model, x, eps, capacity=k.mean() + 3.0, gamma=10.0)
    model.zero_grad()
    cap.loss.backward()
    g_cap = model.encoder[1].weight.grad.data.copy()
    ref = negative_elbo(model, x, eps)
    model.zero_grad()
    (F.mean(ref.recon) - F.mean(ref.kl) * 10.0).backward()
    np.testing.assert_allclose(g_cap, model.encoder[1].weight.grad.data, rtol=1e-5, atol=1e-6)


def test_capacity_schedule_values():
    assert capacity_at(0, 25.0, 1000) == 0.0
    assert capacity_at(250, 25.0, 1000) == pytest.approx(6.25)
    assert capacity_at(1000, 25.0, 1000) == 25.0
    assert capacity_at(5000, 25.0, 1000) == 25.0
    with pytest.raises(ValueError):
        capacity_at(1, 25.0, 0)
    with pytest.raises(ValueError):
        capacity_at(-1, 25.0, 10)


def test_gaussian_likelihood_is_the_mse_form():
    x, _ = _batch(3)
    x = x * 0.7 + 0.1
    model = MLPVAE(latent_dim=2, hidden=(16,), likelihood="gaussian", sigma=0.5)
    eps = np.zeros((3, 2), np.float32)
    t = negative_elbo(model, x, eps)
    mean = t.logits.data.astype(np.float64)
    d = 784
    want = ((x - mean) ** 2).reshape(3, -1).sum(1) / (2 * 0.25) + d / 2 * math.log(2 * math.pi * 0.25)
    np.testing.assert_allclose(t.recon.data, want, rtol=1e-4)
    assert t.likelihood == "gaussian" and build_model("vae-mlp", **model.config()).sigma == 0.5


def _small_data(n_train=120, n_test=40):
    x, _ = _batch(n_train + n_test, seed=3)
    y = np.arange(n_train + n_test) % 10
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def test_fit_cvae_with_capacity_resumes_exactly(tmp_path):
    data = _small_data()
    base = TrainConfig(model="cvae", dataset="mnist", epochs=2, batch_size=32, lr=1e-3, latent_dim=2,
                       capacity_max=5.0, capacity_steps=6, gamma=10.0, model_options={"hidden": [16]},
                       figures=False, progress=False, out=str(tmp_path / "full"))
    full = fit(base, data=data, log=lambda *a: None)
    assert full["epochs"][-1]["capacity"] == 5.0      # 8 steps >= 6: the schedule reached C_max
    half = dataclasses.replace(base, epochs=1, out=str(tmp_path / "half"))
    fit(half, data=data, log=lambda *a: None)
    resumed = fit(dataclasses.replace(base, out=str(tmp_path / "half")), resume=tmp_path / "half", data=data,
                  log=lambda *a: None)
    assert resumed["test_elbo"] == full["test_elbo"]
    a = np.load(tmp_path / "full" / "checkpoint.npz")
    b = np.load(tmp_path / "half" / "checkpoint.npz")
    for k in a.files:
        if k.startswith("model/"):
            np.testing.assert_array_equal(a[k], b[k])


def test_cvae_samples_follow_the_label(shared_mnist_dir):
    """Train a small CVAE on 6,000 real MNIST test digits for a few epochs; then for every label the mean of
    its decoded samples is nearest (of the ten class means of real digits) to its own class mean."""
    from minivae.data import binarize, load_dataset, to_float

    images, labels = load_dataset("mnist", "test", data_dir=shared_mnist_dir)
    x, y = binarize(to_float(images[:6000])), labels[:6000]
    cfg = TrainConfig(model="cvae", dataset="mnist", epochs=3, batch_size=100, lr=3e-3, latent_dim=2, seed=0,
                      model_options={"hidden": [128]}, figures=False, progress=False,
                      out=str(shared_mnist_dir.parent / "unused"))
    from minivae import train as T

    mv.nn.init.manual_seed(0)
    model = build_model("cvae", **T.model_kwargs(cfg, 1, 10))
    opt = Adam(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(0)
    yoh = one_hot(y, 10)
    for _ in range(cfg.epochs):
        perm = rng.permutation(len(x))
        for s in range(0, len(x), cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            train_step(model, opt, x[idx], rng, y=yoh[idx])
    from minivae.plots import decode_probs

    z = np.random.default_rng(1).standard_normal((200, 2))
    sample_means = np.stack([decode_probs(model, z, one_hot(np.full(200, c), 10)).mean(0).ravel()
                             for c in range(10)])
    class_means = np.stack([x[y == c].mean(0).ravel() for c in range(10)])
    dist = ((sample_means[:, None, :] - class_means[None, :, :]) ** 2).sum(-1)
    hits = int((dist.argmin(1) == np.arange(10)).sum())
    assert hits >= 9, dist.argmin(1)
    # the same z decoded under two labels differs far more than under one label and a nearby z
    a = decode_probs(model, z[:50], one_hot(np.full(50, 1), 10))
    b = decode_probs(model, z[:50], one_hot(np.full(50, 8), 10))
    c = decode_probs(model, z[:50] + 0.05, one_hot(np.full(50, 1), 10))
    assert np.abs(a - b).mean() > 5 * np.abs(a - c).mean()
