"""The training loop on small synthetic data: outputs, figures, determinism, resume, the CLI."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from minivae import cli
from minivae.checkpoint import CheckpointError
from minivae.models import ConvVAE
from minivae.train import TrainConfig, evaluate, fit

EPOCH_KEYS = {"epoch", "train_loss", "test_elbo", "test_recon", "test_kl", "seconds"}
TIMING_KEYS = {"seconds", "examples_per_second"}


def synthetic(n=64, n_test=16, seed=0):
    """Binary 1x28x28 images: a few blobs, so that there is something to learn."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n + n_test, 1, 28, 28)) < 0.1).astype(np.float32)
    x[: (n + n_test) // 2, :, 8:20, 8:20] = 1.0
    y = rng.integers(0, 10, n + n_test)
    return x[:n], y[:n], x[n:], y[n:]


def config(out, **kw):
    base = dict(model="conv", epochs=2, batch_size=16, lr=1e-3, figures=False, progress=False, out=str(out),
                eval_batch_size=8)
    return TrainConfig(**{**base, **kw})


def quiet(*args):
    pass


def without_timings(history):
    return [{k: v for k, v in rec.items() if k not in TIMING_KEYS} for rec in history]


def checkpoint_arrays(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if k != "meta"}


def test_fit_writes_metrics_checkpoint_and_figures(tmp_path):
    out = tmp_path / "run"
    metrics = fit(config(out, figures=True), data=synthetic(), log=quiet)
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["test_elbo"] == metrics["test_elbo"] == on_disk["epochs"][-1]["test_elbo"]
    assert on_disk["units"] == "nats"
    assert [rec["epoch"] for rec in on_disk["epochs"]] == [1, 2]
    for rec in on_disk["epochs"]:
        assert EPOCH_KEYS <= set(rec)
        assert all(np.isfinite(rec[k]) for k in EPOCH_KEYS)
        assert rec["seconds"] > 0
        assert rec["test_elbo"] == pytest.approx(-(rec["test_recon"] + rec["test_kl"]), rel=1e-9)
        assert rec["test_elbo"] < 0 and rec["test_kl"] >= 0
    assert on_disk["config"]["epochs"] == 2 and on_disk["config"]["batch_size"] == 16
    assert (out / "checkpoint.npz").stat().st_size > 0
    figures = metrics["figures"]
    assert figures and on_disk["figures"] == figures
    for name in ("reconstructions", "samples", "loss_curves", "latent_means"):
        assert name in figures, sorted(figures)
    for path in figures.values():
        data = open(path, "rb").read()
        assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n", path


def test_training_reduces_the_loss(tmp_path):
    m = fit(config(tmp_path, epochs=3), data=synthetic(), log=quiet)
    losses = [rec["train_loss"] for rec in m["epochs"]]
    assert losses[-1] < losses[0]


def test_same_seed_same_metrics_other_seed_different(tmp_path):
    data = synthetic()
    a = fit(config(tmp_path / "a"), data=data, log=quiet)
    b = fit(config(tmp_path / "b"), data=data, log=quiet)
    c = fit(config(tmp_path / "c", seed=1), data=data, log=quiet)
    assert without_timings(a["epochs"]) == without_timings(b["epochs"])
    assert without_timings(a["epochs"]) != without_timings(c["epochs"])
    ca, cb = checkpoint_arrays(tmp_path / "a" / "checkpoint.npz"), checkpoint_arrays(tmp_path / "b" / "checkpoint.npz")
    assert ca.keys() == cb.keys()
    for k in ca:
        np.testing.assert_array_equal(ca[k], cb[k], err_msg=k)


def test_resume_ends_with_the_same_parameters(tmp_path):
    data = synthetic()
    straight = fit(config(tmp_path / "straight", epochs=2), data=data, log=quiet)
    fit(config(tmp_path / "split", epochs=1), data=data, log=quiet)
    after_one = checkpoint_arrays(tmp_path / "split" / "checkpoint.npz")
    logs = []
    resumed = fit(config(tmp_path / "split", epochs=2), resume=tmp_path / "split", data=data, log=logs.append)
    assert any("resumed" in line and "epoch 1" in line for line in logs)
    a = checkpoint_arrays(tmp_path / "straight" / "checkpoint.npz")
    b = checkpoint_arrays(tmp_path / "split" / "checkpoint.npz")
    assert a.keys() == b.keys()
    assert any(k.startswith("model/") for k in a) and any(k.startswith("optim/") for k in a)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # and the resumed run did train: epoch 2 changed the parameters
    assert any(not np.array_equal(after_one[k], b[k]) for k in b if k.startswith("model/"))
    assert without_timings(straight["epochs"]) == without_timings(resumed["epochs"])


def test_resume_from_the_checkpoint_file_itself(tmp_path):
    data = synthetic(32, 8)
    fit(config(tmp_path / "r", epochs=1), data=data, log=quiet)
    m = fit(config(tmp_path / "r", epochs=2), resume=tmp_path / "r" / "checkpoint.npz", data=data, log=quiet)
    assert [rec["epoch"] for rec in m["epochs"]] == [1, 2]


def test_resume_with_another_latent_dim_is_refused(tmp_path):
    data = synthetic(32, 8)
    fit(config(tmp_path / "r", epochs=1), data=data, log=quiet)
    before = (tmp_path / "r" / "checkpoint.npz").read_bytes()
    with pytest.raises(CheckpointError, match=r"refusing to resume.*latent_dim: checkpoint 2, requested 3"):
        fit(config(tmp_path / "r", epochs=2, latent_dim=3), resume=tmp_path / "r", data=data, log=quiet)
    assert (tmp_path / "r" / "checkpoint.npz").read_bytes() == before


def test_resume_with_tuple_model_options(tmp_path):
    """model_options go through JSON in the checkpoint (tuples come back as lists): still the same config."""
    data = synthetic(16, 8)
    cfg = config(tmp_path / "m", model="vae-mlp", epochs=1, batch_size=8, model_options={"hidden": (16,)})
    fit(cfg, data=data, log=quiet)
    m = fit(dataclasses.replace(cfg, epochs=2), resume=tmp_path / "m", data=data, log=quiet)
    assert [rec["epoch"] for rec in m["epochs"]] == [1, 2]
    with pytest.raises(CheckpointError, match="model_options"):
        fit(dataclasses.replace(cfg, epochs=3, model_options={"hidden": (8,)}), resume=tmp_path / "m", data=data,
            log=quiet)


def test_resume_from_nowhere(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        fit(config(tmp_path / "x"), resume=tmp_path / "missing", data=synthetic(32, 8), log=quiet)


def test_evaluate_is_deterministic_and_consistent():
    x = synthetic(8, 8)[2]
    model = ConvVAE(latent_dim=2)
    a = evaluate(model, x, batch_size=3, seed=0)
    b = evaluate(model, x, batch_size=3, seed=0)
    assert a["elbo"] == b["elbo"] and a["mu"].shape == (8, 2)
    assert a["elbo"] == pytest.approx(-(a["recon"] + a["kl"]))
    whole = evaluate(model, x, batch_size=8, seed=0)
    np.testing.assert_allclose(whole["mu"], a["mu"], rtol=1e-5, atol=1e-6)  # batching does not change mu


def test_train_config_round_trips_through_asdict():
    c = config("somewhere", latent_dim=5)
    assert TrainConfig(**dataclasses.asdict(c)) == c


# --------------------------------------------------------------------------- the CLI


def test_cli_train_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--dataset", "--epochs", "--batch-size", "--latent-dim", "--out", "--resume", "--no-figures"):
        assert flag in out


def test_cli_top_level_help_lists_train(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    assert "train" in capsys.readouterr().out


def test_cli_unknown_dataset_exits_1_with_message(tmp_path, capsys):
    status = cli.main(["train", "--dataset", "no-such-set", "--out", str(tmp_path / "o"), "--no-figures",
                       "--no-progress", "--epochs", "1"])
    assert status == 1
    captured = capsys.readouterr()
    assert "minivae train: error:" in captured.err and "no-such-set" in captured.err
    assert "test ELBO" not in captured.out


def test_cli_resume_from_a_missing_folder_exits_1(tmp_path, capsys):
    status = cli.main(["train", "--resume", str(tmp_path / "nothing"), "--no-progress"])
    assert status == 1
    assert "checkpoint not found" in capsys.readouterr().err
