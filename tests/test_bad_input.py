"""Bad input: every error has the right type and a message that names the problem."""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
import minivae.train as train_mod
from minivae import nn
from minivae.checkpoint import load_checkpoint
from minivae.data import DatasetNotFoundError
from minivae.nn import StateDictError
from minivae.train import NonFiniteLossError, TrainConfig, fit, load_data


def t(shape, dtype=np.float32, requires_grad=False, seed=0):
    return mv.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=requires_grad)


# --------------------------------------------------------------------------- convolutions


def test_conv2d_channel_mismatch():
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels but weight \(4, 2, 3, 3\) expects "
                                         r"in_channels=2"):
        F.conv2d(t((1, 3, 5, 5)), t((4, 2, 3, 3)))


def test_conv_transpose2d_channel_mismatch():
    with pytest.raises(ValueError, match=r"conv_transpose2d: input has 3 channels .* in_channels=2"):
        F.conv_transpose2d(t((1, 3, 5, 5)), t((2, 4, 3, 3)))


def test_conv_bias_shape_mismatch():
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\), got \(3,\)"):
        F.conv2d(t((1, 2, 5, 5)), t((4, 2, 3, 3)), t((3,)))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"kernel size \(5, 3\) is larger than the padded input \(4, 6\)"):
        F.conv2d(t((1, 1, 2, 4)), t((1, 1, 5, 3)), padding=1)


@pytest.mark.parametrize("stride, output_padding", [(1, 1), (2, 2), ((2, 1), (1, 1)), (2, 3)])
def test_output_padding_not_smaller_than_stride(stride, output_padding):
    with pytest.raises(ValueError, match=r"output_padding .* must be smaller than stride"):
        F.conv_transpose2d(t((1, 1, 3, 3)), t((1, 1, 3, 3)), stride=stride, output_padding=output_padding)


def test_conv_transpose2d_empty_output():
    with pytest.raises(ValueError, match="empty output"):
        F.conv_transpose2d(t((1, 1, 1, 1)), t((1, 1, 1, 1)), padding=1)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_integer_tensors_to_conv(op):
    x = mv.Tensor(np.ones((1, 1, 4, 4), dtype=np.int64))
    w = mv.Tensor(np.ones((1, 1, 3, 3), dtype=np.int64))
    with pytest.raises(TypeError, match=rf"{op}: input must be a floating-point tensor, got dtype int64"):
        getattr(F, op)(x, w)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_mixed_float32_float64_to_conv(op):
    with pytest.raises(TypeError, match=r"expected one dtype for all inputs, got input=float32, weight=float64"):
        getattr(F, op)(t((1, 1, 4, 4), np.float32), t((1, 1, 3, 3), np.float64))
    with pytest.raises(TypeError, match=r"bias=float64"):
        getattr(F, op)(t((1, 1, 4, 4)), t((1, 1, 3, 3)), t((1,), np.float64))


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_wrong_ndim_to_conv(op):
    with pytest.raises(ValueError, match=rf"{op}: input must have 4 dimensions \(N, C, H, W\), got shape \(1, 4, 4\)"):
        getattr(F, op)(t((1, 4, 4)), t((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=rf"{op}: weight must have 4 dimensions .* got shape \(3, 3\)"):
        getattr(F, op)(t((1, 1, 4, 4)), t((3, 3)))


@pytest.mark.parametrize("kwargs, err, msg", [
    ({"stride": 0}, ValueError, r"conv2d: stride must be >= 1, got \(0, 0\)"),
    ({"padding": -1}, ValueError, r"conv2d: padding must be >= 0, got \(-1, -1\)"),
    ({"stride": 1.5}, TypeError, r"stride must be an int or a pair of ints, got 1.5"),
    ({"padding": (1, 2, 3)}, TypeError, r"padding must be an int or a pair of ints"),
    ({"stride": True}, TypeError, r"stride must be an int or a pair of ints"),
])
def test_bad_stride_and_padding(kwargs, err, msg):
    with pytest.raises(err, match=msg):
        F.conv2d(t((1, 1, 4, 4)), t((1, 1, 3, 3)), **kwargs)


# --------------------------------------------------------------------------- linear, matmul, shapes


def test_wrong_ndim_to_linear():
    assert F.linear(t((3,)), t((2, 3))).shape == (2,)  # input (*, in_features), as PyTorch
    with pytest.raises(ValueError, match=r"linear: weight must have 2 dimensions"):
        F.linear(t((4, 3)), t((2, 3, 1)))


def test_linear_feature_and_bias_mismatch():
    with pytest.raises(ValueError, match=r"input has 4 features but weight \(2, 3\) expects in_features=3"):
        F.linear(t((5, 4)), t((2, 3)))
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\), got \(3,\)"):
        F.linear(t((5, 3)), t((2, 3)), t((3,)))
    with pytest.raises(TypeError, match="linear: input must be a floating-point tensor"):
        F.linear(mv.Tensor(np.ones((2, 3), np.int32)), t((2, 3)))


def test_matmul_misaligned():
    with pytest.raises(ValueError, match=r"do not align \(3 != 4\)"):
        t((2, 3)) @ t((4, 2))


def test_kl_shape_mismatch():
    with pytest.raises(ValueError, match=r"kl_normal: shapes must match, got mu \(2, 3\), logvar \(2, 4\)"):
        F.kl_normal(t((2, 3)), t((2, 4)))
    with pytest.raises(ValueError, match=r"reparameterize_kl: eps must have 2 dimensions"):
        F.reparameterize_kl(t((2, 3)), t((2, 3)), t((2, 3, 1)))


# --------------------------------------------------------------------------- losses


@pytest.mark.parametrize("loss", [F.binary_cross_entropy_with_logits, F.mse_loss])
def test_unknown_reduction(loss):
    with pytest.raises(ValueError, match=r"reduction must be one of \('none', 'sum', 'mean'\), got 'avg'"):
        loss(t((2, 3)), t((2, 3)), reduction="avg")


def test_mismatched_bce_shapes():
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: shapes must match, got "
                                         r"logits \(2, 3\), target \(3, 2\)"):
        F.binary_cross_entropy_with_logits(t((2, 3)), t((3, 2)))
    with pytest.raises(ValueError, match=r"mse_loss: shapes must match"):
        F.mse_loss(t((2, 3)), t((2, 1)))


def test_integer_target_to_bce():
    with pytest.raises(TypeError, match="target must be a floating-point tensor"):
        F.binary_cross_entropy_with_logits(t((2, 3)), np.ones((2, 3), np.int64))


# --------------------------------------------------------------------------- backward


def test_non_scalar_backward_without_grad():
    x = t((2, 3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad can be implicitly created only for scalar outputs.*\(2, 3\)"):
        (x * 2.0).backward()


def test_backward_twice_through_freed_graph():
    x = t((3,), np.float64, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = t((3,), np.float64, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.detach().numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), 2 * first)
    np.testing.assert_allclose(first, np.exp(x.data) * (x.data + 1))


def test_backward_grad_of_wrong_shape():
    x = t((2, 3), requires_grad=True)
    with pytest.raises(ValueError, match=r"gradient has shape \(3, 2\), expected \(2, 3\)"):
        (x * 2.0).backward(np.ones((3, 2)))


def test_backward_on_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        t((1,)).backward()


def test_function_backward_returning_the_wrong_shape_is_reported():
    class Bad(mv.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy[:1]

    x = t((3,), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Bad.backward returned a gradient of shape \(1,\) for an input of "
                                           r"shape \(3,\)"):
        Bad.apply(x).sum().backward()


# --------------------------------------------------------------------------- load_state_dict


def _mlp():
    nn.init.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def _snapshot(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _assert_unchanged(model, before):
    after = model.state_dict()
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


def test_load_state_dict_missing_keys():
    model = _mlp()
    before = _snapshot(model)
    state = {k: v + 1 for k, v in before.items() if not k.startswith("2.")}
    with pytest.raises(StateDictError) as info:
        model.load_state_dict(state)
    assert "missing keys: 2.weight, 2.bias" in str(info.value)
    _assert_unchanged(model, before)
    assert isinstance(info.value, KeyError)


def test_load_state_dict_unexpected_keys():
    model = _mlp()
    before = _snapshot(model)
    state = {k: v + 1 for k, v in before.items()}
    state["3.weight"] = np.zeros((1, 1))
    state["extra"] = np.zeros(2)
    with pytest.raises(StateDictError, match="unexpected keys: 3.weight, extra") as info:
        model.load_state_dict(state)
    assert "missing" not in str(info.value)
    _assert_unchanged(model, before)
    # non-strict ignores the extra keys and loads the rest
    model.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(model.state_dict()["0.weight"], before["0.weight"] + 1)


def test_load_state_dict_wrong_shapes():
    model = _mlp()
    before = _snapshot(model)
    state = {k: v + 1 for k, v in before.items()}
    state["0.weight"] = np.zeros((4, 5))
    state["2.bias"] = np.zeros(3)
    with pytest.raises(StateDictError) as info:
        model.load_state_dict(state)
    msg = str(info.value)
    assert "shape mismatch for 0.weight: checkpoint has (4, 5), model has (4, 3)" in msg
    assert "shape mismatch for 2.bias: checkpoint has (3,), model has (2,)" in msg
    _assert_unchanged(model, before)
    with pytest.raises(StateDictError, match="shape mismatch"):  # shapes are checked even when not strict
        model.load_state_dict(state, strict=False)
    _assert_unchanged(model, before)


def test_load_state_dict_missing_and_unexpected_together():
    model = _mlp()
    state = dict(_snapshot(model))
    state["encoder.0.weight"] = state.pop("0.weight")
    with pytest.raises(StateDictError, match="missing keys: 0.weight; unexpected keys: encoder.0.weight"):
        model.load_state_dict(state)


# --------------------------------------------------------------------------- training: NaN loss


def _synthetic(n=64, n_test=16, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 1, 28, 28)) < 0.3).astype(np.float32)
    xt = (rng.random((n_test, 1, 28, 28)) < 0.3).astype(np.float32)
    return x, rng.integers(0, 10, n), xt, rng.integers(0, 10, n_test)


def test_nan_loss_in_epoch_two_names_epoch_and_step_and_keeps_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = TrainConfig(model="conv", epochs=2, batch_size=16, figures=False, progress=False, out=str(out))
    real_step = train_mod.train_step
    calls = {"n": 0}
    snapshots = {}

    def step(model, optimizer, x, rng, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5 and "ckpt" not in snapshots:  # first step of epoch 2 (64 / 16 = 4 steps per epoch)
            snapshots["ckpt"] = (out / "checkpoint.npz").read_bytes()
        if calls["n"] == 6:  # second step of epoch 2: poison the batch so that the real loss is NaN
            x = x.copy()
            x[0, 0, 0, 0] = np.nan
        return real_step(model, optimizer, x, rng, *args, **kwargs)

    monkeypatch.setattr(train_mod, "train_step", step)
    with pytest.raises(NonFiniteLossError) as info:
        fit(config, data=_synthetic(), log=lambda *a: None)
    msg = str(info.value)
    assert "loss is nan" in msg
    assert "epoch 2, step 2" in msg and "global step 6" in msg
    assert "last good checkpoint is kept" in msg and str(out / "checkpoint.npz") in msg
    # the epoch-1 checkpoint is untouched (byte for byte) and loads
    assert (out / "checkpoint.npz").read_bytes() == snapshots["ckpt"]
    ckpt = load_checkpoint(out / "checkpoint.npz")
    assert ckpt["meta"]["epoch"] == 1 and ckpt["meta"]["step"] == 4
    assert all(np.isfinite(v).all() for v in ckpt["model"].values())
    assert not list(out.glob(".checkpoint.npz.*"))  # no stray temporary file


def test_nan_loss_before_any_checkpoint(tmp_path, monkeypatch):
    def step(*args, **kwargs):
        raise NonFiniteLossError("loss is inf")

    monkeypatch.setattr(train_mod, "train_step", step)
    config = TrainConfig(epochs=1, batch_size=16, figures=False, progress=False, out=str(tmp_path))
    with pytest.raises(NonFiniteLossError, match="loss is inf at epoch 1, step 1.*no checkpoint had been written"):
        fit(config, data=_synthetic(32), log=lambda *a: None)
    assert not (tmp_path / "checkpoint.npz").exists()


def test_train_step_rejects_nan_before_updating(rng):
    from minivae.models import ConvVAE
    from minivae.optim import Adam

    nn.init.manual_seed(0)
    model = ConvVAE(latent_dim=2)
    opt = Adam(model.parameters(), lr=1e-3)
    before = _snapshot(model)
    x = np.zeros((2, 1, 28, 28), np.float32)
    x[1, 0, 3, 3] = np.nan
    with pytest.raises(NonFiniteLossError, match="loss is nan"):
        train_mod.train_step(model, opt, x, rng)
    _assert_unchanged(model, before)
    assert opt.step_count == 0


# --------------------------------------------------------------------------- missing data set


def test_missing_dataset_says_where_it_looked(tmp_path, monkeypatch):
    empty_env, empty_home, empty_cache = tmp_path / "env", tmp_path / "home", tmp_path / "cache"
    for d in (empty_env, empty_home, empty_cache):
        d.mkdir()
    monkeypatch.setenv("MINIVAE_DATA", str(empty_env))
    monkeypatch.setenv("HOME", str(empty_home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(empty_cache))
    # and an empty system folder, in case KMNIST gets installed system-wide one day
    import dataclasses

    from minivae.data import registry

    system = tmp_path / "system-kmnist"
    monkeypatch.setitem(registry.REGISTRY, "kmnist",
                        dataclasses.replace(registry.REGISTRY["kmnist"], system_dirs=(str(system),)))
    missing = tmp_path / "no-such-dir"
    config = TrainConfig(dataset="kmnist", data_dir=str(missing), out=str(tmp_path / "out"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_data(config)
    msg = str(info.value)
    assert "dataset 'kmnist' not found" in msg
    for where in (missing, empty_env, empty_cache / "minivae" / "kmnist", system):
        assert str(where) in msg
    assert "minivae data fetch kmnist" in msg
    assert isinstance(info.value, FileNotFoundError)
    # fit refuses the missing --data-dir itself, and with an existing empty one reports where it looked
    with pytest.raises(ValueError, match="--data-dir .*no-such-dir: no such folder"):
        fit(dataclasses_replace(config, figures=False, progress=False), log=lambda *a: None)
    missing.mkdir()
    with pytest.raises(DatasetNotFoundError):
        fit(dataclasses_replace(config, figures=False, progress=False), log=lambda *a: None)


def dataclasses_replace(config, **kw):
    import dataclasses

    return dataclasses.replace(config, **kw)


def test_train_with_zero_epochs_is_a_clear_error(capsys, tmp_path):
    from minivae.cli import main

    with pytest.raises(SystemExit) as info:
        main(["train", "--epochs", "0", "--out", str(tmp_path), "--no-progress"])
    assert info.value.code == 2
    assert "argument --epochs: must be >= 1, got 0" in capsys.readouterr().err
