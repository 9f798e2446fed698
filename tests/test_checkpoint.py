"""Checkpoints: round trips of model, optimizer and metadata; atomic writes; corrupt and foreign files."""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
from minivae import nn
from minivae.checkpoint import CheckpointError, atomic_write, atomic_write_text, load_checkpoint, save_checkpoint
from minivae.optim import SGD, Adam


def small_model(seed=0):
    nn.init.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))


def trained(model, opt, steps=2):
    x = mv.Tensor(np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32))
    for _ in range(steps):
        opt.zero_grad()
        (model(x) ** 2).sum().backward()
        opt.step()


def test_round_trip_model_optimizer_and_meta(tmp_path):
    model = small_model()
    opt = Adam(model.parameters(), lr=0.01, betas=(0.8, 0.9))
    trained(model, opt)
    meta = {"epoch": 3, "note": "hello", "history": [{"loss": 1.5}]}
    path = save_checkpoint(tmp_path / "c.npz", model, opt, meta)
    assert path == tmp_path / "c.npz" and path.is_file()

    ckpt = load_checkpoint(path)
    assert ckpt["meta"] == meta
    assert list(ckpt["model"]) == [n for n, _ in model.named_parameters()]
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(ckpt["model"][name], p.detach().numpy())
        assert ckpt["model"][name].dtype == np.float32
    o = ckpt["optimizer"]
    assert o["type"] == "Adam" and o["step_count"] == 2
    assert o["hyper"]["betas"] == (0.8, 0.9) and o["hyper"]["lr"] == 0.01

    # restoring into fresh objects continues exactly as the original
    model2 = small_model(seed=5)
    opt2 = Adam(model2.parameters(), lr=0.5)
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(o)
    trained(model, opt, steps=2)
    trained(model2, opt2, steps=2)
    for (n, a), (_, b) in zip(model.named_parameters(), model2.named_parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy(), err_msg=n)


def test_without_optimizer_and_meta(tmp_path):
    model = small_model()
    save_checkpoint(tmp_path / "m.npz", model)
    ckpt = load_checkpoint(tmp_path / "m.npz")
    assert ckpt["optimizer"] is None and ckpt["meta"] == {}
    assert set(ckpt["model"]) == set(model.state_dict())


def test_sgd_momentum_state_round_trip(tmp_path):
    model = small_model()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    trained(model, opt)
    save_checkpoint(tmp_path / "s.npz", model, opt)
    o = load_checkpoint(tmp_path / "s.npz")["optimizer"]
    assert o["type"] == "SGD"
    for st, ref in zip(o["state"], opt.state_dict()["state"]):
        np.testing.assert_array_equal(st["momentum_buffer"], ref["momentum_buffer"])


def test_overwrite_replaces_the_file(tmp_path):
    model = small_model()
    save_checkpoint(tmp_path / "c.npz", model, meta={"epoch": 1})
    save_checkpoint(tmp_path / "c.npz", model, meta={"epoch": 2})
    assert load_checkpoint(tmp_path / "c.npz")["meta"]["epoch"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary files left


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_text(path, "old contents")

    def broken(f):
        f.write(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text() == "old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_atomic_write_creates_folders(tmp_path):
    path = atomic_write_text(tmp_path / "a" / "b" / "x.txt", "hi")
    assert path.read_text() == "hi"


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*nope.npz"):
        load_checkpoint(tmp_path / "nope.npz")


def test_truncated_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "c.npz", small_model())
    data = (tmp_path / "c.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "t.npz")


def test_not_an_npz(tmp_path):
    (tmp_path / "x.npz").write_text("this is not a zip file")
    with pytest.raises(CheckpointError, match=r"x.npz is corrupt or truncated"):
        load_checkpoint(tmp_path / "x.npz")


def test_npz_without_metadata(tmp_path):
    np.savez(tmp_path / "foreign.npz", weight=np.zeros(3))
    with pytest.raises(CheckpointError, match="has no metadata: not written by minivae"):
        load_checkpoint(tmp_path / "foreign.npz")


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)
