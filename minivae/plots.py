"""Figures (matplotlib's object-oriented ``Figure``, rendered by Agg to PNG, so no GUI backend is chosen and
pyplot's state, e.g. a notebook's inline backend, is left alone): reconstructions, prior samples, loss curves, latent means,
the decoded 2-D manifold, interpolations, CVAE class rows, latent traversals, denoising and inpainting.

Images are ``(N, C, H, W)`` host float arrays in [0, 1]; decoded images are Bernoulli means (sigmoid of the
logits) or Gaussian means clipped to [0, 1]. Conditional models take one-hot labels ``y`` ``(N, K)``.
Every PNG is written atomically (:func:`save_figure`: a temporary file renamed over the destination).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from minivae import backend
from minivae.autograd.grad_mode import no_grad
from minivae.autograd.tensor import Tensor
from minivae.ops.activation import sigmoid


def _subplots(figsize):
    """A new Figure (not registered with pyplot) and its one Axes."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


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


def png_path(path) -> Path:
    """The file a figure saved to ``path`` really lands in: a name without a suffix gets ``.png`` (as
    matplotlib would add), an existing folder gets ``samples.png`` inside it."""
    path = Path(path)
    if path.is_dir():
        return path / "samples.png"
    return path if path.suffix else path.with_name(path.name + ".png")


def save_figure(fig, path) -> Path:
    """Render ``fig`` as PNG (120 dpi) to a temporary file beside ``png_path(path)`` and rename it over that
    file (:func:`minivae.checkpoint.atomic_write`): a full disk or a kill leaves the old figure or none, never
    a truncated PNG, and a symbolic link at the destination is replaced, never written through. Returns the
    path. Raises OSError when the folder cannot be written."""
    from minivae.checkpoint import atomic_write

    return atomic_write(png_path(path), lambda f: fig.savefig(f, dpi=120, format="png"))


def save_grid(images: np.ndarray, path, rows: int, cols: int, title: str = "") -> Path:
    fig, ax = _subplots((cols * 0.6 + 0.4, rows * 0.6 + 0.6))
    ax.imshow(image_grid(images, rows, cols), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def decode_probs(model, z: np.ndarray, y=None) -> np.ndarray:
    """Decode host latents ``(N, latent_dim)`` to pixel probabilities (Bernoulli) or means (Gaussian)."""
    with no_grad():
        zt = Tensor(backend.to_device(z.astype(np.float32), model.device))
        yt = None if y is None else Tensor(backend.to_device(y, model.device))
        out = model.decode(zt, yt)
        if model.likelihood == "bernoulli":
            out = sigmoid(out)
    out = _host(out)
    return out if model.likelihood == "bernoulli" else np.clip(out, 0.0, 1.0)


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
    fig, ax = _subplots((5, 3.5))
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
    ax.plot(epochs, [-h["test_elbo"] for h in history], "s-", label="test -ELBO")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per example")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def latent_scatter(mu: np.ndarray, labels: np.ndarray, path, class_names=None) -> Path:
    """Test-set posterior means of a 2-D latent space, coloured by label."""
    fig, ax = _subplots((6, 5))
    sc = ax.scatter(mu[:, 0], mu[:, 1], c=labels, cmap="tab10", s=2, alpha=0.7)
    cbar = fig.colorbar(sc, ax=ax, ticks=range(10))
    if class_names:
        cbar.ax.set_yticklabels(class_names, fontsize=7)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title("test-set means of q(z|x)")
    fig.tight_layout()
    return save_figure(fig, path)


def encode_means(model, x: np.ndarray, y=None) -> np.ndarray:
    """Posterior means ``mu`` ``(N, latent_dim)`` of host images ``x`` (no graph)."""
    with no_grad():
        xt = Tensor(backend.to_device(np.ascontiguousarray(x), model.device))
        yt = None if y is None else Tensor(backend.to_device(y, model.device))
        return _host(model.encode(xt, yt)[0])


def _onehot(label: int, n: int, k: int) -> np.ndarray:
    y = np.zeros((n, k), np.float32)
    y[:, label] = 1
    return y


def normal_quantiles(n: int, lo: float = 0.05, hi: float = 0.95) -> np.ndarray:
    """``n`` quantiles of N(0, 1) at probabilities linspace(lo, hi, n) (the Keras example's grid)."""
    from statistics import NormalDist

    return np.array([NormalDist().inv_cdf(p) for p in np.linspace(lo, hi, n)])


def manifold(model, path, n: int = 20, y=None) -> Path:
    """Decoded means over an ``n x n`` grid of 2-D latent values at normal quantiles (Kingma & Welling 2014,
    fig. 4; the Keras example); z[0] grows to the right, z[1] upwards. Raises ValueError unless latent_dim is 2."""
    if model.latent_dim != 2:
        raise ValueError(f"the manifold figure needs a 2-D latent space, the model has {model.latent_dim}")
    q = normal_quantiles(n)
    zz = np.array([[q[c], q[n - 1 - r]] for r in range(n) for c in range(n)])
    yy = None if y is None else np.repeat(y[:1], len(zz), axis=0)
    return save_grid(decode_probs(model, zz, yy), path, n, n, "decoded latent manifold (normal quantiles 5%..95%)")


def interpolation(model, x_a: np.ndarray, x_b: np.ndarray, path, steps: int = 10, y_a=None, y_b=None,
                  pairs: int = 1) -> Path:
    """Rows: test image A, decoded means along the straight line between the posterior means of A and B, image B.
    ``x_a``/``x_b``: ``(pairs, C, H, W)``; conditional models interpolate the one-hot label too."""
    mu_a, mu_b = encode_means(model, x_a[:pairs], y_a), encode_means(model, x_b[:pairs], y_b)
    t = np.linspace(0, 1, steps)[:, None]
    rows = []
    for i in range(pairs):
        z = (1 - t) * mu_a[i] + t * mu_b[i]
        y = None if y_a is None else ((1 - t) * y_a[i] + t * y_b[i]).astype(np.float32)
        rows += [x_a[i:i + 1], decode_probs(model, z, y).reshape((steps,) + x_a.shape[1:]), x_b[i:i + 1]]
    return save_grid(np.concatenate(rows), path, pairs, steps + 2,
                     "interpolation between the posterior means of two test images (ends: the images)")


def class_rows(model, path, per_class: int = 10, seed: int = 0, labels=None, class_names=None) -> Path:
    """CVAE: one row per class (or per ``labels``), the same ``per_class`` prior draws z in every row, so a
    column shows one 'style' across classes. Raises ValueError for an unconditional model."""
    if not getattr(model, "num_classes", 0):
        raise ValueError("class rows need a conditional model (cvae)")
    labels = list(range(model.num_classes)) if labels is None else list(labels)
    z = np.random.default_rng(seed).standard_normal((per_class, model.latent_dim))
    imgs = [decode_probs(model, z, _onehot(lab, per_class, model.num_classes)) for lab in labels]
    title = "p(x|z,y): rows = class " + ", ".join(str(class_names[lab]) if class_names else str(lab)
                                                      for lab in labels)
    return save_grid(np.concatenate(imgs), path, len(labels), per_class, title if len(title) < 90 else
                     "p(x|z,y): one row per class, same z per column")


def traversals(model, x: np.ndarray, path, steps: int = 9, limit: float = 3.0, y=None,
               max_dims: int = 16) -> Path:
    """Latent traversals (Higgins et al. 2017, fig. 1-2): start from the posterior mean of the test image ``x[0]``,
    vary one latent dimension over linspace(-limit, limit, steps), decode; one row per dimension (the first
    ``max_dims``)."""
    base = encode_means(model, x[:1], None if y is None else y[:1])[0]
    dims = min(model.latent_dim, max_dims)
    vals = np.linspace(-limit, limit, steps)
    z = np.repeat(base[None], dims * steps, axis=0)
    for d in range(dims):
        z[d * steps:(d + 1) * steps, d] = vals
    yy = None if y is None else np.repeat(y[:1], len(z), axis=0)
    return save_grid(decode_probs(model, z, yy), path, dims, steps,
                     f"latent traversals: row d varies z[d] from {-limit:g} to {limit:g}")


def add_noise(x: np.ndarray, rng: np.random.Generator, amount: float = 0.2, binary: bool = True) -> np.ndarray:
    """Corrupt images: binary data get each pixel flipped with probability ``amount``; grey-level data get
    N(0, amount^2) noise, clipped to [0, 1]. Same shape and dtype."""
    if binary:
        flip = rng.random(x.shape) < amount
        return np.where(flip, 1 - x, x).astype(x.dtype)
    return np.clip(x + amount * rng.standard_normal(x.shape), 0, 1).astype(x.dtype)


def denoising(model, x: np.ndarray, path, n: int = 12, amount: float = 0.08, seed: int = 0, y=None) -> Path:
    """Rows: clean test images, noisy versions (see :func:`add_noise`), decoded posterior means of the noisy ones."""
    x = x[:n]
    binary = bool(np.all((x == 0) | (x == 1)))
    noisy = add_noise(x, np.random.default_rng(seed), amount, binary)
    yy = None if y is None else y[:n]
    rec = decode_probs(model, encode_means(model, noisy, yy), yy).reshape(x.shape)
    return save_grid(np.concatenate([x, noisy, rec]), path, 3, len(x),
                     f"denoising: clean / noisy ({'flip' if binary else 'sigma'} {amount:g}) / reconstruction")


def inpainting(model, x: np.ndarray, path, n: int = 12, size: int | None = None, steps: int = 200,
               lr: float = 0.05, y=None) -> Path:
    """Rows: test images, the same with a centred ``size x size`` square hidden (shown grey), and the square
    filled by gradient ascent on ``log p(x_visible | z) + log p(z)`` over ``z`` (see
    :func:`minivae.models.inpaint`; ``steps`` Adam steps of size ``lr``). ``size`` defaults to half the
    image side."""
    from minivae.models.inpaint import inpaint, square_mask

    x = x[:n]
    size = x.shape[-1] // 2 if size is None else int(size)
    mask = square_mask(x.shape, size)
    result = inpaint(model, x, mask, steps=steps, lr=lr, y=None if y is None else y[:n])
    shown = np.where(mask > 0, x, 0.5).astype(np.float32)
    return save_grid(np.concatenate([x, shown, result.filled]), path, 3, len(x),
                     f"inpainting: test images / {size}x{size} square hidden / filled by MAP z "
                     f"({steps} Adam steps)")


def conditional_samples(model, path, n: int = 64, label: int = 0, seed: int = 0) -> Path:
    """``n`` draws z ~ N(0, I) decoded with the one label ``label``."""
    z = np.random.default_rng(seed).standard_normal((n, model.latent_dim))
    side = int(np.ceil(np.sqrt(n)))
    return save_grid(decode_probs(model, z, _onehot(label, n, model.num_classes)), path, side, side,
                     f"{n} samples of p(x|z, y={label})")


def training_figures(model, x_test, y_test, mu, history, out, seed: int = 0, dataset: str | None = None,
                     beta: float = 1.0, capacity: bool = False, label: int | None = None) -> dict:
    """Write the figures into ``out``; returns ``{name: path}``.

    Always: reconstructions, samples (CVAE: class rows, or ``label``'s samples), loss curves (if ``history``),
    interpolation, denoising, inpainting (image data), traversals (one row per latent dimension, up to 16). 2-D latents: test means
    coloured by label and the decoded manifold. ``y_test``: int labels ``(N,)`` (may be None for the
    unconditional models).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cond = bool(getattr(model, "num_classes", 0))
    yoh = None
    if cond:
        if y_test is None:
            raise ValueError("a conditional model's figures need the test labels")
        yoh = np.zeros((len(y_test), model.num_classes), np.float32)
        yoh[np.arange(len(y_test)), np.asarray(y_test)] = 1
    names = None
    if dataset:
        try:
            from minivae.data import get_info

            names = list(get_info(dataset).class_names) or None
        except Exception:  # unknown or custom data set: numeric labels
            names = None
    figs = {"reconstructions": reconstructions(model, x_test, out / "reconstructions.png", y=yoh)}
    if cond:
        figs["class_rows"] = class_rows(model, out / "class_rows.png", seed=seed, class_names=names)
        lab = 0 if label is None else int(label)
        figs["samples"] = conditional_samples(model, out / "samples.png", label=lab, seed=seed)
    else:
        figs["samples"] = prior_samples(model, out / "samples.png", seed=seed)
    if history:
        figs["loss_curves"] = loss_curves(history, out / "loss_curves.png")
    # two test images of different classes when labels are known
    j = 1
    if y_test is not None and len(y_test) > 1:
        diff = np.nonzero(np.asarray(y_test) != y_test[0])[0]
        j = int(diff[0]) if len(diff) else 1
    if len(x_test) > 1:
        figs["interpolation"] = interpolation(model, x_test[0:1], x_test[j:j + 1], out / "interpolation.png",
                                              y_a=None if yoh is None else yoh[0:1],
                                              y_b=None if yoh is None else yoh[j:j + 1])
    figs["traversals"] = traversals(model, x_test, out / "traversals.png", y=yoh)
    figs["denoising"] = denoising(model, x_test, out / "denoising.png", seed=seed, y=yoh)
    if x_test.ndim == 4 and min(x_test.shape[-2:]) >= 4:
        figs["inpainting"] = inpainting(model, x_test, out / "inpainting.png", y=yoh)
    if model.latent_dim == 2:
        if mu is None:
            mu = encode_means(model, x_test, yoh)
        if y_test is not None:
            figs["latent_means"] = latent_scatter(mu, y_test, out / "latent_means.png", names)
        figs["manifold"] = manifold(model, out / "manifold.png",
                                    y=None if not cond else _onehot(0 if label is None else int(label), 1,
                                                                    model.num_classes))
    return {k: str(v) for k, v in figs.items()}
