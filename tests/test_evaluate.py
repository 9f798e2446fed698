"""The importance-weighted log-likelihood (Burda et al. 2016, eq. 8): agreement with the ELBO at K=1,
the bound growing with K, batching invariance, and a stable log-sum-exp."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minivae as mv
from minivae.data import one_hot
from minivae.evaluate import iw_log_likelihood, log_importance_weights, logsumexp
from minivae.models import CVAE, MLPVAE, negative_elbo
from minivae.optim import Adam
from minivae.train import train_step


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 1, 28, 28)) < 0.15).astype(np.float32)
    x[:, :, 10:18, 10:18] = 1
    return x


@pytest.fixture(scope="module")
def model():
    mv.nn.init.manual_seed(0)
    m = MLPVAE(latent_dim=3, hidden=(32,))
    x = _data(64, seed=5)
    opt, rng = Adam(m.parameters(), lr=2e-3), np.random.default_rng(0)
    for _ in range(20):
        train_step(m, opt, x, rng)
    return m


def test_logsumexp_is_stable():
    a = np.array([[1e4, 1e4], [-1e4, -1e4], [0.0, -np.inf], [-np.inf, -np.inf], [3.0, 700.0]])
    out = logsumexp(a, axis=1)
    np.testing.assert_allclose(out[:3], [1e4 + math.log(2), -1e4 + math.log(2), 0.0])
    assert out[3] == -np.inf
    np.testing.assert_allclose(out[4], 700.0 + math.log1p(math.exp(3.0 - 700.0)))
    b = np.random.default_rng(0).standard_normal((4, 7))
    np.testing.assert_allclose(logsumexp(b, axis=1), np.log(np.exp(b).sum(1)))
    assert logsumexp(np.array([1.0, np.inf])) == np.inf


def test_k1_weights_are_the_single_sample_elbo(model):
    """log w with K=1 is -recon(z) + log p(z) - log q(z|x) at the same eps: the reconstruction term is exactly
    negative_elbo's; the rest is a sampled KL whose average over eps is the analytic KL."""
    x = _data(6)
    eps = np.random.default_rng(1).standard_normal((6, 1, 3))
    lw = log_importance_weights(model, x, eps)[:, 0]
    terms = negative_elbo(model, x, eps[:, 0].astype(np.float32))
    mu, logvar = (t.data.astype(np.float64) for t in model.encode(mv.Tensor(x)))
    z = mu + np.exp(0.5 * logvar) * eps[:, 0]
    log_ratio = (-0.5 * (z ** 2).sum(1)) - (-0.5 * (eps[:, 0] ** 2).sum(1) - 0.5 * logvar.sum(1))
    np.testing.assert_allclose(lw, -terms.recon.data + log_ratio, rtol=1e-5, atol=1e-3)
    # in expectation over eps, log w is the analytic ELBO
    many = log_importance_weights(model, x, np.random.default_rng(2).standard_normal((6, 2000, 3)))
    se = many.std(1) / math.sqrt(2000)
    mc_elbo = many.mean(1)
    # the analytic-KL ELBO averaged over the same eps
    elbo = []
    for j in range(0, 2000, 500):
        t = negative_elbo(model, np.repeat(x, 500, 0), np.random.default_rng(2).standard_normal(
            (6, 2000, 3))[:, j:j + 500].reshape(-1, 3).astype(np.float32))
        elbo.append(-(t.recon.data + t.kl.data).reshape(6, 500).astype(np.float64))
    analytic = np.concatenate(elbo, axis=1).mean(1)
    assert np.all(np.abs(mc_elbo - analytic) < 5 * se + 0.05), (mc_elbo, analytic, se)


def test_iw_k1_matches_the_weights_and_batching_does_not_matter(model):
    x = _data(5)
    one = iw_log_likelihood(model, x, k=1, seed=3, max_rows=2, progress=False)
    eps = np.random.default_rng(3).standard_normal((5, 1, 3))   # the same stream, drawn row by row
    np.testing.assert_allclose(one["per_example"], log_importance_weights(model, x, eps)[:, 0], rtol=1e-6)
    big = iw_log_likelihood(model, x, k=1, seed=3, max_rows=1000, progress=False)
    np.testing.assert_allclose(big["per_example"], one["per_example"], rtol=1e-6)
    # with one example per pass, chunking the K samples streams the log-sum-exp: equal up to float32's
    # resolution (the model runs in float32, and a GEMM over 12 rows and one over 5 may round a row's
    # dot products differently; the streamed log-sum-exp itself is float64)
    a = iw_log_likelihood(model, x, k=12, seed=4, max_rows=12, progress=False)
    b = iw_log_likelihood(model, x, k=12, seed=4, max_rows=5, progress=False)
    np.testing.assert_allclose(a["per_example"], b["per_example"], rtol=1e-6)
    lw = log_importance_weights(model, x, np.random.default_rng(4).standard_normal((5, 12, 3)))
    np.testing.assert_allclose(a["per_example"], logsumexp(lw, axis=1) - math.log(12), rtol=1e-6)
    assert a["units"] == "nats" and a["k"] == 12 and a["n"] == 5


def test_iw_bound_is_above_the_elbo_and_grows_with_k(model):
    x = _data(20, seed=7)
    l1 = iw_log_likelihood(model, x, k=1, seed=0, progress=False)["log_likelihood"]
    l10 = iw_log_likelihood(model, x, k=10, seed=0, progress=False)["log_likelihood"]
    r200 = iw_log_likelihood(model, x, k=200, seed=0, progress=False)
    assert l1 < l10 < r200["log_likelihood"]
    assert r200["elbo_mc"] < r200["log_likelihood"]
    assert np.all(np.isfinite(r200["per_example"]))


def test_iw_for_conditional_and_gaussian_models():
    mv.nn.init.manual_seed(0)
    x = _data(4)
    y = one_hot(np.arange(4), 10)
    cvae = CVAE(latent_dim=2, hidden=(16,))
    r = iw_log_likelihood(cvae, x, k=20, labels_onehot=y, progress=False)
    assert np.isfinite(r["log_likelihood"])
    with pytest.raises(ValueError, match="conditional"):
        iw_log_likelihood(cvae, x, k=2, progress=False)
    gauss = MLPVAE(latent_dim=2, hidden=(16,), likelihood="gaussian", sigma=0.3)
    g = iw_log_likelihood(gauss, x * 0.5, k=20, progress=False)
    assert np.isfinite(g["log_likelihood"]) and g["log_likelihood"] >= g["elbo_mc"]
    with pytest.raises(ValueError):
        iw_log_likelihood(gauss, x, k=0)
    with pytest.raises(ValueError, match="eps"):
        log_importance_weights(gauss, x, np.zeros((4, 2)))
