"""Resuming training end to end through the command line, on a small slice of real Fashion-MNIST.

An uninterrupted 3-epoch run, a 1-epoch run resumed to 3 epochs, and a run interrupted (KeyboardInterrupt)
in the middle of epoch 2 then resumed all end with exactly the same model and optimizer arrays. Resuming
with another model or config, from a truncated checkpoint, and an interrupted checkpoint write all fail
cleanly and leave the previous checkpoint as it was.
"""
from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest
from datapaths import FASHION  # where the library finds Fashion-MNIST (tests/datapaths.py)

import minivae.train as train_mod
from minivae.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minivae.cli import main

pytestmark = pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                                reason=f"Fashion-MNIST is not installed at {FASHION}")

TRAIN_LIMIT, BATCH = 256, 32
STEPS_PER_EPOCH = TRAIN_LIMIT // BATCH  # 8
COMMON = ["--dataset", "fashion-mnist", "--model", "conv", "--latent-dim", "2", "--train-limit", str(TRAIN_LIMIT),
          "--test-limit", "200", "--batch-size", str(BATCH), "--no-figures", "--no-progress"]


def train(out, *extra):
    return main(["train", *COMMON, "--out", str(out), *extra])


def resume(out, *extra):
    return main(["train", "--resume", str(out), "--no-figures", "--no-progress", *extra])


def arrays_of(run_dir):
    """Model and optimizer arrays of a run's checkpoint, and its metadata."""
    ckpt = load_checkpoint(pathlib.Path(run_dir) / "checkpoint.npz")
    return ckpt["model"], ckpt["optimizer"], ckpt["meta"]


def assert_same_final_state(dir_a, dir_b):
    model_a, opt_a, meta_a = arrays_of(dir_a)
    model_b, opt_b, meta_b = arrays_of(dir_b)
    assert sorted(model_a) == sorted(model_b) and model_a
    for k in model_a:
        assert np.array_equal(model_a[k], model_b[k]), f"model parameter {k} differs"
    assert opt_a["step_count"] == opt_b["step_count"] == 3 * STEPS_PER_EPOCH
    assert opt_a["hyper"] == opt_b["hyper"]
    assert len(opt_a["state"]) == len(opt_b["state"]) == len(model_a)
    for i, (sa, sb) in enumerate(zip(opt_a["state"], opt_b["state"])):
        assert sorted(sa) == sorted(sb) == ["m", "step", "v"]
        for k in sa:
            assert np.array_equal(sa[k], sb[k]), f"optimizer state {k} of parameter {i} differs"
    assert meta_a["epoch"] == meta_b["epoch"] == 3
    assert meta_a["step"] == meta_b["step"] == 3 * STEPS_PER_EPOCH
    metrics_a = json.loads((pathlib.Path(dir_a) / "metrics.json").read_text())
    metrics_b = json.loads((pathlib.Path(dir_b) / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics_a["epochs"]] == [e["epoch"] for e in metrics_b["epochs"]] == [1, 2, 3]
    for ea, eb in zip(metrics_a["epochs"], metrics_b["epochs"]):
        for key in ("test_elbo", "test_recon", "test_kl", "train_loss"):
            assert ea[key] == eb[key], f"epoch {ea['epoch']}: {key} {ea[key]} != {eb[key]}"
    assert metrics_a["test_elbo"] == metrics_b["test_elbo"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """An uninterrupted 3-epoch run (shared by the tests of this module; never modified)."""
    out = tmp_path_factory.mktemp("full") / "run"
    assert train(out, "--epochs", "3") == 0
    return out


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    """A 1-epoch run; tests copy it before touching it."""
    out = tmp_path_factory.mktemp("one") / "run"
    assert train(out, "--epochs", "1") == 0
    return out


def copy_run(src, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def temp_files(run_dir):
    """Hidden or .tmp files of a run folder, but not the folder's lock file (``.lock``, kept on purpose)."""
    return sorted(p.name for p in pathlib.Path(run_dir).iterdir()
                  if (p.name.startswith(".") or p.suffix == ".tmp") and p.name != ".lock")


# --------------------------------------------------------------------------- resume == uninterrupted


def test_one_epoch_then_resume_equals_uninterrupted(full_run, one_epoch_run, tmp_path, capsys):
    run = copy_run(one_epoch_run, tmp_path)
    assert arrays_of(run)[2]["epoch"] == 1
    capsys.readouterr()
    assert resume(run, "--epochs", "3") == 0
    out = capsys.readouterr().out
    assert f"resumed from {run / 'checkpoint.npz'} after epoch 1 (step {STEPS_PER_EPOCH})" in out
    assert "epoch 1:" not in out and "epoch 2:" in out and "epoch 3:" in out
    assert_same_final_state(full_run, run)


def test_interrupted_mid_epoch_two_keeps_epoch_one_checkpoint_and_resumes(full_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_step = train_mod.train_step
    calls = {"n": 0}
    snapshot = {}
    interrupt_at = STEPS_PER_EPOCH + STEPS_PER_EPOCH // 2  # the 4th step of epoch 2

    def step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == STEPS_PER_EPOCH + 1:  # first step of epoch 2: the epoch-1 checkpoint is on disk
            snapshot["bytes"] = (run / "checkpoint.npz").read_bytes()
            snapshot["metrics"] = (run / "metrics.json").read_bytes()
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_mod, "train_step", step)
    assert train(run, "--epochs", "3") == 130  # Ctrl-C: one line on stderr, exit status 130
    assert calls["n"] == interrupt_at
    monkeypatch.setattr(train_mod, "train_step", real_step)

    # the epoch-1 checkpoint and metrics are untouched, load, and describe epoch 1; no temporary file is left
    assert (run / "checkpoint.npz").read_bytes() == snapshot["bytes"]
    assert (run / "metrics.json").read_bytes() == snapshot["metrics"]
    assert temp_files(run) == []
    model, opt, meta = arrays_of(run)
    assert meta["epoch"] == 1 and meta["step"] == STEPS_PER_EPOCH and opt["step_count"] == STEPS_PER_EPOCH
    assert all(np.isfinite(v).all() for v in model.values())
    assert [e["epoch"] for e in json.loads((run / "metrics.json").read_text())["epochs"]] == [1]

    # resuming (the saved config already says 3 epochs) reaches the uninterrupted run's final state
    assert resume(run) == 0
    assert_same_final_state(full_run, run)


# --------------------------------------------------------------------------- refusing to resume


@pytest.mark.parametrize("flags, expected", [
    (["--latent-dim", "4"], "latent_dim: checkpoint 2, requested 4"),
    (["--model", "vae-mlp"], "model: checkpoint 'conv', requested 'vae-mlp'"),
    (["--model", "vae-mlp", "--lr", "0.001"], "lr: checkpoint 0.0001, requested 0.001"),
])
def test_resume_with_another_model_or_config_exits_1_naming_the_keys(one_epoch_run, tmp_path, capsys, flags,
                                                                     expected):
    run = copy_run(one_epoch_run, tmp_path)
    before = (run / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert resume(run, *flags) == 1
    err = capsys.readouterr().err
    assert err.startswith("minivae train: error: ")
    assert "written by another model or config; refusing to resume" in err
    assert expected in err
    assert str(run / "checkpoint.npz") in err
    assert (run / "checkpoint.npz").read_bytes() == before  # nothing was overwritten
    assert temp_files(run) == []


def test_truncated_checkpoint_gives_a_clear_error(one_epoch_run, tmp_path, capsys):
    run = copy_run(one_epoch_run, tmp_path)
    path = run / "checkpoint.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"checkpoint {path} is corrupt or truncated"):
        load_checkpoint(path)
    capsys.readouterr()
    assert resume(run, "--epochs", "3") == 1
    err = capsys.readouterr().err
    assert f"minivae train: error: checkpoint {path} is corrupt or truncated" in err
    assert "Traceback" not in err


def test_resume_from_a_folder_without_checkpoint(tmp_path, capsys):
    assert resume(tmp_path / "nowhere") == 1  # a missing folder is taken for a checkpoint file's path
    assert capsys.readouterr().err == f"minivae train: error: checkpoint not found: {tmp_path / 'nowhere'}\n"
    (tmp_path / "empty").mkdir()
    assert resume(tmp_path / "empty") == 1
    assert capsys.readouterr().err == \
        f"minivae train: error: checkpoint not found: {tmp_path / 'empty' / 'checkpoint.npz'}\n"


# --------------------------------------------------------------------------- interrupted checkpoint write


def _failing_savez(exc):
    def savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half of a zip archive")  # some bytes reach the temporary file
        raise exc

    return savez


@pytest.mark.parametrize("exc", [OSError("No space left on device"), KeyboardInterrupt()])
def test_interrupted_checkpoint_write_keeps_the_previous_file(one_epoch_run, tmp_path, monkeypatch, exc):
    run = copy_run(one_epoch_run, tmp_path)
    path = run / "checkpoint.npz"
    before = path.read_bytes()
    model, opt, meta = arrays_of(run)

    class Stub:  # enough of a model for save_checkpoint
        def state_dict(self):
            return {k: v + 1 for k, v in model.items()}

    monkeypatch.setattr(np, "savez", _failing_savez(exc))
    with pytest.raises(type(exc)):
        save_checkpoint(path, Stub(), meta={"epoch": 99})
    assert path.read_bytes() == before
    assert temp_files(run) == []
    assert load_checkpoint(path)["meta"]["epoch"] == 1


def test_checkpoint_write_interrupted_at_the_end_of_a_resumed_epoch(one_epoch_run, tmp_path, monkeypatch):
    """Training epoch 2 of a resumed run, the checkpoint write fails: the epoch-1 checkpoint and metrics stay."""
    run = copy_run(one_epoch_run, tmp_path)
    ckpt_before = (run / "checkpoint.npz").read_bytes()
    metrics_before = (run / "metrics.json").read_bytes()
    monkeypatch.setattr(np, "savez", _failing_savez(KeyboardInterrupt()))
    assert resume(run, "--epochs", "2") == 130
    assert (run / "checkpoint.npz").read_bytes() == ckpt_before
    assert (run / "metrics.json").read_bytes() == metrics_before
    assert temp_files(run) == []
