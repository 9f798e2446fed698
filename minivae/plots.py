"""Figures (matplotlib, headless Agg backend, PNG): reconstructions, prior samples, loss curves, latent means."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minivae import backend  # noqa: E402
from minivae.autograd.grad_mode import no_grad  # noqa: E402
from minivae.autograd.tensor import Tensor  # noqa: E402
from minivae.ops.activation import sigmoid  # noqa: E402


def _host(t) -> np.ndarray:
    return backend.to_device(t.data if isinstance(t, Tensor) else t, "cpu")


def image_grid(images: np.ndarray, rows: int, cols: int, pad: int = 1) -> np.ndarray:
    """Tile ``(N, C, H, W)`` or ``(N, H, W)`` images (first ``rows*cols``) into one 2-D array, with padding."""
    imgs = images[:, 0] if images.ndim == 4 else images
    n, h, w = imgs.shape
    grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.float32)
    for k in range(min(n, rows * cols)):
        r, c = divmod(k, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = imgs[k]
    return grid


def save_grid(images: np.ndarray, path, rows: int, cols: int, title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(cols * 0.6 + 0.4, rows * 0.6 + 0.6))
    ax.imshow(image_grid(images, rows, cols), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def decode_probs(model, z: np.ndarray, y=None) -> np.ndarray:
    """Decode host latents ``(N, latent_dim)`` to pixel probabilities (Bernoulli) or means (Gaussian)."""
    with no_grad():
        zt = Tensor(backend.to_device(z.astype(np.float32), model.device))
        yt = None if y is None else Tensor(backend.to_device(y, model.device))
        out = model.decode(zt, yt)
        if model.likelihood == "bernoulli":
            out = sigmoid(out)
    return _host(out)


def reconstructions(model, x: np.ndarray, path, n: int = 16, y=None) -> Path:
    """Top row test images, bottom row their reconstructions (decoded posterior means)."""
    with no_grad():
        xt = Tensor(backend.to_device(x[:n], model.device))
        yt = None if y is None else Tensor(backend.to_device(y[:n], model.device))
        mu, _ = model.encode(xt, yt)
    probs = decode_probs(model, _host(mu), None if y is None else y[:n])
    both = np.concatenate([x[:n], probs.reshape(x[:n].shape)])
    return save_grid(both, path, 2, n, "test images (top) and reconstructions (bottom)")


def prior_samples(model, path, n: int = 64, seed: int = 0, y=None) -> Path:
    """``n`` decoded draws z ~ N(0, I), shown as pixel probabilities, in a square grid."""
    z = np.random.default_rng(seed).standard_normal((n, model.latent_dim))
    side = int(np.ceil(np.sqrt(n)))
    return save_grid(decode_probs(model, z, y), path, side, side, f"{n} samples from the prior")


def loss_curves(history: list, path) -> Path:
    """Train loss and test negative ELBO per epoch, nats."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss (-ELBO)")
    ax.plot(epochs, [-h["test_elbo"] for h in history], "s-", label="test -ELBO")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per example")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def latent_scatter(mu: np.ndarray, labels: np.ndarray, path, class_names=None) -> Path:
    """Test-set posterior means of a 2-D latent space, coloured by label."""
    fig, ax = plt.subplots(figsize=(6, 5))
    sc = ax.scatter(mu[:, 0], mu[:, 1], c=labels, cmap="tab10", s=2, alpha=0.7)
    cbar = fig.colorbar(sc, ax=ax, ticks=range(10))
    if class_names:
        cbar.ax.set_yticklabels(class_names, fontsize=7)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title("test-set means of q(z|x)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def training_figures(model, x_test, y_test, mu, history, out, seed: int = 0, dataset: str | None = None) -> dict:
    """Write the end-of-training figures into ``out``; returns ``{name: path}``."""
    out = Path(out)
    figs = {
        "reconstructions": reconstructions(model, x_test, out / "reconstructions.png"),
        "samples": prior_samples(model, out / "samples.png", seed=seed),
        "loss_curves": loss_curves(history, out / "loss_curves.png"),
    }
    if model.latent_dim == 2:
        names = None
        if dataset:
            try:
                from minivae.data import get_info

                names = list(get_info(dataset).class_names) or None
            except Exception:  # unknown or custom data set: numeric labels
                names = None
        figs["latent_means"] = latent_scatter(mu, y_test, out / "latent_means.png", names)
    return {k: str(v) for k, v in figs.items()}
