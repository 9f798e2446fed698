"""Importance-weighted estimate of log p(x) (Burda, Grosse & Salakhutdinov 2016) and run evaluation.

For a VAE with encoder q(z|x) = N(mu, diag(sigma^2)), prior p(z) = N(0, I) and decoder p(x|z), the
K-sample importance-weighted bound (Burda et al. 2016, eq. 8) is

    L_K(x) = log (1/K) sum_k w_k,   w_k = p(x, z_k) / q(z_k|x),   z_k = mu + sigma * eps_k,  eps_k ~ N(0, I)

with ``log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)``. ``L_1`` is the single-sample ELBO estimate with a
sampled (not analytic) KL; ``E[L_K]`` grows with K towards log p(x) (their theorem 1), so ``L_1000`` is the
usual reported test log-likelihood. Everything is in nats, computed without a graph (``no_grad``), with the
log-sum-exp taken stably (max subtracted) and streamed over chunks of samples, and batched so that at most
``max_rows`` decoded images are held at once. For conditional models everything is given y (log p(x|y)).

* Bernoulli: ``log p(x|z) = -sum_pixels BCE_with_logits(decoder(z), x)``;
* Gaussian (fixed sigma): ``log p(x|z) = -||x - decoder(z)||^2 / (2 sigma^2) - D/2 log(2 pi sigma^2)``;
* ``log p(z) = -||z||^2/2 - d/2 log 2pi``; ``log q(z|x) = -||eps||^2/2 - sum_j logvar_j / 2 - d/2 log 2pi``.
"""
from __future__ import annotations

import math

import numpy as np
from tqdm import tqdm

from minivae import backend
from minivae.autograd.grad_mode import no_grad
from minivae.autograd.tensor import Tensor
from minivae.models.elbo import reconstruction_nll

LOG_2PI = math.log(2 * math.pi)


def logsumexp(a, axis: int = -1) -> np.ndarray:
    """``log sum exp(a)`` along ``axis``, stable for huge or tiny values (max subtracted first). All ``-inf``
    gives ``-inf``; a ``+inf`` entry gives ``+inf``. Float64 result."""
    a = np.asarray(a, dtype=np.float64)
    m = np.max(a, axis=axis, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - m_safe), axis=axis, keepdims=True)) + m_safe
    out = np.where(np.isposinf(m), np.inf, out)
    return np.squeeze(out, axis=axis)


def log_importance_weights(model, x: np.ndarray, eps: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """``log w[n, k] = log p(x_n|z_nk) + log p(z_nk) - log q(z_nk|x_n)`` with ``z_nk = mu_n + sigma_n eps_nk``.

    Args: ``x`` host ``(N, C, H, W)``; ``eps`` host ``(N, K, latent_dim)``; ``y`` one-hot ``(N, num_classes)``
    for conditional models. Returns float64 ``(N, K)``, nats. Decodes ``N*K`` images at once (no graph).
    Raises ValueError when ``eps`` does not match ``(N, K, latent_dim)``.
    """
    n = len(x)
    if eps.ndim != 3 or eps.shape[0] != n or eps.shape[2] != model.latent_dim:
        raise ValueError(f"eps must be (N={n}, K, latent_dim={model.latent_dim}), got {eps.shape}")
    k = eps.shape[1]
    dev = model.device
    with no_grad():
        xt = Tensor(backend.to_device(np.ascontiguousarray(x), dev))
        yt = None if y is None else Tensor(backend.to_device(np.ascontiguousarray(y), dev))
        mu, logvar = model.encode(xt, yt)
        mu = backend.to_device(mu.data, "cpu").astype(np.float64)
        logvar = backend.to_device(logvar.data, "cpu").astype(np.float64)
        eps = np.asarray(eps, dtype=np.float64)
        z = mu[:, None, :] + np.exp(0.5 * logvar)[:, None, :] * eps           # (N, K, d)
        zt = Tensor(backend.to_device(z.reshape(n * k, -1).astype(x.dtype), dev))
        yr = None if y is None else Tensor(backend.to_device(np.repeat(y, k, axis=0), dev))
        out = model.decode(zt, yr)
        xr = Tensor(backend.to_device(np.repeat(x, k, axis=0), dev))
        nll = reconstruction_nll(out, xr, model.likelihood, getattr(model, "sigma", 1.0))
        log_px_z = -backend.to_device(nll.data, "cpu").astype(np.float64).reshape(n, k)
    d = model.latent_dim
    log_pz = -0.5 * (z * z).sum(-1) - 0.5 * d * LOG_2PI
    log_qz = -0.5 * (eps * eps).sum(-1) - 0.5 * logvar.sum(-1)[:, None] - 0.5 * d * LOG_2PI
    return log_px_z + log_pz - log_qz


def iw_log_likelihood(model, images: np.ndarray, k: int = 1000, labels_onehot: np.ndarray | None = None,
                      seed: int = 0, max_rows: int = 2000, progress: bool = True) -> dict:
    """Importance-weighted estimate ``L_K`` of log p(x) for each image (Burda et al. 2016, eq. 8), in nats.

    Args:
        model: a VAE; images: host ``(N, C, H, W)`` in the model's data format (binarised for Bernoulli).
        k: importance samples per image (>= 1). labels_onehot: ``(N, num_classes)`` for conditional models.
        seed: the eps ~ N(0, I) stream (drawn per example batch as ``(B, S, latent_dim)`` chunks).
        max_rows: most decoded images in one pass (examples x samples), which bounds memory.
        progress: a tqdm bar over example batches.
    Returns ``{"log_likelihood": mean L_K, "per_example": (N,) float64, "elbo_mc": mean over examples and
    samples of log w (a K-sample Monte-Carlo ELBO), "k", "n", "units": "nats"}``.
    Raises ValueError for ``k < 1`` or ``max_rows < 1``.
    """
    if k < 1 or max_rows < 1:
        raise ValueError(f"k and max_rows must be >= 1, got {k}, {max_rows}")
    rng = np.random.default_rng(seed)
    n = len(images)
    per_batch = max(1, max_rows // k)            # examples per pass
    chunk = min(k, max(1, max_rows // per_batch))  # samples per pass
    per_example = np.empty(n, np.float64)
    sum_logw = 0.0
    bar = tqdm(range(0, n, per_batch), desc=f"IW log p(x), K={k}", unit="batch", disable=not progress,
               dynamic_ncols=True)
    for start in bar:
        xb = images[start:start + per_batch]
        yb = None if labels_onehot is None else labels_onehot[start:start + per_batch]
        m = np.full(len(xb), -np.inf)   # running max of log w
        s = np.zeros(len(xb))           # running sum of exp(log w - m)
        done = 0
        while done < k:
            S = min(chunk, k - done)
            lw = log_importance_weights(model, xb, rng.standard_normal((len(xb), S, model.latent_dim)), yb)
            sum_logw += float(lw.sum())
            m_new = np.maximum(m, lw.max(axis=1))
            s = s * np.exp(m - m_new) + np.exp(lw - m_new[:, None]).sum(axis=1)
            m = m_new
            done += S
        per_example[start:start + len(xb)] = m + np.log(s) - math.log(k)
    bar.close()
    return {"log_likelihood": float(per_example.mean()), "per_example": per_example,
            "elbo_mc": sum_logw / (n * k), "k": int(k), "n": int(n), "units": "nats"}


def load_run_test_data(config, test_limit: int | None = None, data_dir: str | None = None):
    """The test images and int labels a run was evaluated on (same data set, binarisation and test limit, unless
    ``test_limit``/``data_dir`` override them). Returns ``(x (N, C, H, W) float32, y (N,) int64)``.
    Raises DatasetNotFoundError when the data set is missing, ValueError for ``test_limit`` < 1 (0 would
    silently mean the whole test set)."""
    import dataclasses

    from minivae.train import load_data

    if test_limit is not None and not (isinstance(test_limit, int) and not isinstance(test_limit, bool)
                                       and test_limit >= 1):
        raise ValueError(f"--test-limit must be an integer >= 1, got {test_limit!r}")
    changes = {}
    if test_limit is not None:
        changes["test_limit"] = test_limit
    if data_dir is not None:
        changes["data_dir"] = data_dir
    config = dataclasses.replace(config, **changes)
    if config.binarize == "stochastic":  # the test draws follow the training set's in one RNG stream
        _, _, xte, yte = load_data(config)
        return xte, yte
    from minivae.data import binarize, load_dataset, to_float

    xte, yte = load_dataset(config.dataset, "test", data_dir=config.data_dir)
    if config.test_limit:
        xte, yte = xte[:config.test_limit], yte[:config.test_limit]
    xte = to_float(xte)
    if config.binarize == "fixed":
        xte = binarize(xte)
    elif config.binarize != "none":
        raise ValueError(f"binarize must be 'fixed', 'stochastic' or 'none', got {config.binarize!r}")
    return xte, yte


def evaluate_run(path, k: int = 1000, test_limit: int | None = None, data_dir: str | None = None,
                 max_rows: int = 2000, seed: int = 0, progress: bool = True, device: str = "cpu") -> dict:
    """Single-sample test ELBO with its terms and the K-sample IW estimate of log p(x) for a checkpoint file or
    run folder. Returns a JSON-ready dict (nats; ``k = 0`` skips the IW estimate). Raises CheckpointError,
    DatasetNotFoundError."""
    import time

    from minivae.data import one_hot
    from minivae.train import evaluate, model_from_checkpoint

    model, config, meta = model_from_checkpoint(path, device=device)
    x, y = load_run_test_data(config, test_limit, data_dir)
    yoh = one_hot(y, model.num_classes) if getattr(model, "num_classes", 0) else None
    t0 = time.perf_counter()
    ev = evaluate(model, x, batch_size=max(1, min(max_rows, 500)), seed=seed, labels_onehot=yoh)
    res = {"checkpoint": str(path), "model": config.model, "model_config": meta["model_config"],
           "dataset": config.dataset, "binarize": config.binarize, "likelihood": model.likelihood,
           "epochs": meta.get("epoch"), "n_test": int(len(x)), "units": "nats",
           "test_elbo": ev["elbo"], "test_recon": ev["recon"], "test_kl": ev["kl"],
           "elbo_seconds": time.perf_counter() - t0}
    if k:
        t0 = time.perf_counter()
        iw = iw_log_likelihood(model, x, k=k, labels_onehot=yoh, seed=seed, max_rows=max_rows, progress=progress)
        res.update({"iw_k": k, "iw_log_likelihood": iw["log_likelihood"], "iw_elbo_mc": iw["elbo_mc"],
                    "iw_seconds": time.perf_counter() - t0})
    return res
