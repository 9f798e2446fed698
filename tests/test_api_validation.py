"""Input validation across the public API, beyond the op-level cases of tests/test_bad_input.py: backward
seeds, devices, the kernel registry, optimizers, the data loader, layers and the ``minivae train`` command.
Each case checks the exception type and the message the user reads."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from datapaths import FASHION  # where the library finds Fashion-MNIST (tests/datapaths.py)

import minivae as mv
import minivae.functional as F
from minivae import backend, kernels, nn
from minivae.backend import DeviceMismatchError, GPUUnavailableError
from minivae.cli import main
from minivae.data import DataLoader
from minivae.optim import SGD, Adam, RMSprop


def leaf(shape, seed=0):
    return mv.Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


# --------------------------------------------------------------------------- Tensor.backward seeds


@pytest.mark.parametrize("make_grad", [np.ones, lambda s: mv.Tensor(np.ones(s))], ids=["array", "Tensor"])
@pytest.mark.parametrize("out_shape, grad_shape", [((2, 3), (3, 2)), ((2, 3), (3,)), ((2, 3), (1, 3)),
                                                   ((), (1,)), ((4,), ())])
def test_backward_seed_of_the_wrong_shape_is_not_broadcast(make_grad, out_shape, grad_shape):
    x = leaf(out_shape)
    y = x * 2.0
    with pytest.raises(ValueError) as info:
        y.backward(make_grad(grad_shape))
    assert str(info.value) == f"backward(gradient): gradient has shape {grad_shape}, expected {out_shape}"
    assert x.grad is None
    y.backward(np.ones(out_shape))  # the graph was not consumed by the failed call
    np.testing.assert_array_equal(x.grad.detach().numpy(), np.full(out_shape, 2.0))


def test_backward_seed_of_the_wrong_shape_on_a_leaf():
    x = leaf((2, 2))
    with pytest.raises(ValueError, match=r"^backward\(gradient\): gradient has shape \(4,\), expected \(2, 2\)$"):
        x.backward(np.ones(4))
    assert x.grad is None


# --------------------------------------------------------------------------- devices


def _pretend_gpu(monkeypatch, fake):
    """Make ``backend.device_of`` call the array ``fake`` a GPU array (no CuPy or GPU needed)."""
    real = backend.device_of
    monkeypatch.setattr(backend, "device_of", lambda a: backend.GPU if a is fake else real(a))


def test_check_same_device_raises_when_cpu_and_gpu_arrays_meet(monkeypatch):
    cpu, fake_gpu = np.ones(3), np.zeros(3)
    _pretend_gpu(monkeypatch, fake_gpu)
    assert backend.check_same_device(cpu, None, np.ones(2)) == "cpu"
    assert backend.check_same_device(fake_gpu, None) == "gpu"
    assert backend.check_same_device() == "cpu"
    for arrays in [(cpu, fake_gpu), (fake_gpu, None, cpu)]:
        with pytest.raises(DeviceMismatchError) as info:
            backend.check_same_device(*arrays, op="conv2d")
        assert str(info.value) == ("conv2d: expected all arrays on one device, got 'cpu' and 'gpu' arrays "
                                   "together; move them with .to('cpu') or .to('gpu') first")
        assert isinstance(info.value, RuntimeError)


class _FakeGPUArray(np.ndarray):
    """An array the patched ``device_of`` reports on the GPU (Function.apply checks devices of non-ndarray types)."""


def test_an_op_on_mixed_devices_names_the_op(monkeypatch):
    a, b = mv.Tensor(np.ones(3), requires_grad=True), mv.Tensor(np.zeros(3).view(_FakeGPUArray))
    bias = np.zeros(4).view(_FakeGPUArray)
    real = backend.device_of
    monkeypatch.setattr(backend, "device_of", lambda x: backend.GPU if isinstance(x, _FakeGPUArray) else real(x))
    with pytest.raises(DeviceMismatchError, match=r"^Add: expected all arrays on one device"):
        a + b
    with pytest.raises(DeviceMismatchError, match=r"^Linear: expected all arrays on one device"):
        F.linear(mv.Tensor(np.ones((2, 3))), mv.Tensor(np.ones((4, 3))), mv.Tensor(bias))
    assert a.grad is None


def test_to_an_unknown_device():
    x = mv.Tensor(np.ones(2))
    for name in ("tpu", "cuda", "GPU", ""):
        with pytest.raises(ValueError) as info:
            x.to(name)
        assert str(info.value) == f"unknown device {name!r}; expected one of ('cpu', 'gpu')"
    assert x.to("cpu") is x


@pytest.mark.skipif(backend.gpu_available(), reason="a real GPU is available: .to('gpu') works here")
def test_to_gpu_without_a_gpu_says_why():
    with pytest.raises(GPUUnavailableError) as info:
        mv.Tensor(np.ones(2)).to("gpu")
    msg = str(info.value)
    assert msg.startswith("device 'gpu' requested but unavailable: ")
    # without CuPy: how to install the extra; with CuPy under the simulator (as in these tests): the simulator
    assert ("pip install minivae[gpu]" in msg) or ("simulator" in msg) or ("no CUDA device" in msg), msg
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" and backend._cupy() is not None:
        assert "NUMBA_ENABLE_CUDASIM=1 is set: the CUDA simulator is not a real GPU" in msg


def test_to_gpu_without_cupy_says_how_to_install_the_extra(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", lambda: None)
    with pytest.raises(GPUUnavailableError) as info:
        mv.Tensor(np.ones(2)).to("gpu")
    assert str(info.value) == (
        "device 'gpu' requested but unavailable: CuPy is not installed; install the GPU extra: "
        "`pip install minivae[gpu]` (CUDA 13 drivers) or `pip install minivae[gpu-cu12]` (CUDA 12 drivers)")


def test_to_gpu_under_the_simulator_is_refused_even_with_cupy(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", lambda: object())  # "CuPy is installed"
    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "1")
    with pytest.raises(GPUUnavailableError, match="the CUDA simulator is not a real GPU"):
        backend.require_gpu()


# --------------------------------------------------------------------------- kernel registry


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_use_unknown_implementation_lists_the_registered_ones(device):
    before = kernels.current(device)
    with pytest.raises(ValueError) as info:
        kernels.use("nope", device=device)
    assert str(info.value) == (f"no kernel implementation 'nope' for device {device!r}; "
                               f"registered: {kernels.implementations(device)}")
    assert "numba" in str(info.value) and "reference" in str(info.value)
    assert kernels.current(device) == before  # a refused selection changes nothing


def test_get_unknown_kernel_is_a_key_error_listing_the_kernels():
    with pytest.raises(KeyError) as info:
        kernels.get("nope")
    msg = info.value.args[0]
    assert msg.startswith("unknown kernel 'nope'; known kernels: conv2d_forward, ")
    assert all(k in msg for k in kernels.KERNELS)
    with pytest.raises(ValueError, match=r"no kernel implementation 'nope' for device 'cpu'"):
        kernels.module("cpu", "nope")
    with pytest.raises(ValueError, match=r"unknown device 'tpu'"):
        kernels.current("tpu")


# --------------------------------------------------------------------------- optimizers


def params():
    return [nn.Parameter(np.ones(2)), nn.Parameter(np.ones((2, 3)))]


NAN = math.nan


@pytest.mark.parametrize("cls, kwargs", [
    (Adam, {"lr": 0}), (Adam, {"lr": -1e-3}), (Adam, {"lr": NAN}), (Adam, {"eps": 0}), (Adam, {"eps": NAN}),
    (Adam, {"betas": (1.0, 0.999)}), (Adam, {"betas": (0.9, 1.0)}), (Adam, {"betas": (-0.1, 0.9)}),
    (Adam, {"betas": (0.9,)}), (Adam, {"betas": (0.9, NAN)}), (Adam, {"weight_decay": -1}),
    (SGD, {"lr": 0}), (SGD, {"lr": NAN}), (SGD, {"lr": 0.1, "momentum": -0.5}), (SGD, {"lr": 0.1, "momentum": NAN}),
    (SGD, {"lr": 0.1, "weight_decay": -1}), (SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 2}),
    (RMSprop, {"lr": 0}), (RMSprop, {"lr": NAN}), (RMSprop, {"alpha": 1}), (RMSprop, {"alpha": -0.5}),
    (RMSprop, {"eps": 0}),
])
def test_invalid_optimizer_hyper_parameters(cls, kwargs):
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: invalid hyper-parameters .*\(need lr > 0"):
        cls(params(), **kwargs)


@pytest.mark.parametrize("cls, kwargs", [
    (Adam, {"betas": (0.0, 0.0)}), (Adam, {"lr": 1e-12, "weight_decay": 0.0}), (SGD, {"lr": 1.0, "momentum": 0.0}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 1.0}), (RMSprop, {"alpha": 0.0}),
])
def test_boundary_hyper_parameters_are_accepted(cls, kwargs):
    opt = cls(params(), **kwargs)
    for p in opt.params:
        p.grad = mv.Tensor(np.ones(p.shape))
    opt.step()
    assert all(np.isfinite(p.data).all() for p in opt.params)


def test_nesterov_needs_momentum_and_no_dampening():
    with pytest.raises(ValueError, match="^SGD: Nesterov momentum needs momentum > 0 and dampening = 0$"):
        SGD(params(), lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD(params(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)


def test_empty_parameter_list():
    for empty in ([], iter([]), (p for p in [])):
        with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
            Adam(empty)


def test_load_state_dict_with_another_parameter_count_changes_nothing():
    src = Adam(params() + [nn.Parameter(np.ones(4))], lr=0.5)
    for p in src.params:
        p.grad = mv.Tensor(np.ones(p.shape))
    src.step()
    dst = Adam(params(), lr=1e-3)
    with pytest.raises(ValueError) as info:
        dst.load_state_dict(src.state_dict())
    assert str(info.value) == "optimizer state has 3 parameters, this optimizer has 2"
    assert dst.defaults["lr"] == 1e-3 and dst.step_count == 0 and dst.state == [{}, {}]
    with pytest.raises(ValueError, match=r"^not an optimizer state dict: missing keys \['hyper', 'step_count', "
                                         r"'state'\]$"):
        dst.load_state_dict({})
    with pytest.raises(ValueError, match=r"missing keys \['step_count'\]"):
        dst.load_state_dict({"hyper": {}, "state": [{}, {}]})


# --------------------------------------------------------------------------- data loader


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, "8"])
def test_data_loader_bad_batch_size(batch_size):
    with pytest.raises(ValueError) as info:
        DataLoader(np.arange(10), batch_size=batch_size)
    assert str(info.value) == f"batch_size must be a positive integer, got {batch_size!r}"


def test_data_loader_lengths_and_arrays():
    with pytest.raises(ValueError, match=r"^arrays must have the same length, got \[10, 9\]$"):
        DataLoader(np.arange(10), np.arange(9), batch_size=2)
    with pytest.raises(ValueError, match="^DataLoader needs at least one array$"):
        DataLoader(batch_size=2)


# --------------------------------------------------------------------------- layers


@pytest.mark.parametrize("make, msg", [
    (lambda: nn.Linear(0, 3), "Linear: in_features must be a positive int, got 0"),
    (lambda: nn.Linear(3, -1), "Linear: out_features must be a positive int, got -1"),
    (lambda: nn.Linear(2.5, 3), "Linear: in_features must be a positive int, got 2.5"),
    (lambda: nn.Conv2d(1, 4, 0), "Conv2d: kernel_size must be positive ints, got (0, 0)"),
    (lambda: nn.Conv2d(0, 4, 3), "Conv2d: in_channels must be a positive int, got 0"),
    (lambda: nn.ConvTranspose2d(2, 0, (3, 3)), "ConvTranspose2d: out_channels must be a positive int, got 0"),
])
def test_layers_reject_non_positive_sizes(make, msg):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == msg


# --------------------------------------------------------------------------- minivae train


def test_train_unknown_dataset_exits_1(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "nope", "--out", str(out), "--no-figures", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "minivae train: error: unknown dataset 'nope'; known: mnist, fashion-mnist, kmnist\n"
    assert "Traceback" not in captured.out + captured.err
    assert not (out / "checkpoint.npz").exists()


def test_train_unknown_kernels_exits_1(tmp_path, capsys):
    before = kernels.current("cpu")
    assert main(["train", "--kernels", "nope", "--out", str(tmp_path), "--no-figures", "--no-progress"]) == 1
    assert capsys.readouterr().err == ("minivae train: error: no kernel implementation 'nope' for device 'cpu'; "
                                       "registered: ['numba', 'reference']\n")
    assert kernels.current("cpu") == before


def test_train_unknown_model_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--model", "nope", "--out", str(tmp_path)])
    assert info.value.code == 2
    assert "argument --model: invalid choice: 'nope'" in capsys.readouterr().err


@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"Fashion-MNIST is not installed at {FASHION}")
def test_train_batch_size_zero_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--batch-size", "0", "--train-limit", "64", "--test-limit", "16", "--epochs", "1",
              "--out", str(tmp_path), "--no-figures", "--no-progress"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == "minivae train: error: argument --batch-size: must be >= 1, got 0"
    assert not (tmp_path / "checkpoint.npz").exists()


@pytest.mark.parametrize("bad", ["x", None, True, 2.5])
def test_dataloader_rejects_non_integer_batch_sizes(bad):
    import numpy as np

    from minivae.data import DataLoader

    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader(np.zeros((4, 1)), batch_size=bad)


@pytest.mark.parametrize("bad", [None, "text", {"a": 1}])
def test_tensor_rejects_non_numeric_data(bad):
    import minivae as mv

    with pytest.raises(TypeError, match="Tensor needs numeric data"):
        mv.Tensor(bad)


def test_adam_state_does_not_load_into_sgd():
    import numpy as np

    from minivae.nn import Parameter
    from minivae.optim import SGD, Adam

    p = Parameter(np.zeros(3))
    with pytest.raises(ValueError, match="state dict of another optimizer"):
        SGD([p], lr=0.1).load_state_dict(Adam([p]).state_dict())
