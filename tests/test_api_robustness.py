"""API edges of issue 12: float16 into the Numba CPU kernels, optimizers' parameter lists, NumPy integers."""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
from minivae import functional as F
from minivae import kernels, nn
from minivae.optim import SGD, Adam


def test_float16_into_the_numba_kernels_is_a_clear_type_error():
    x = mv.Tensor(np.ones((1, 1, 4, 4), np.float16))
    w = mv.Tensor(np.ones((1, 1, 3, 3), np.float16))
    with kernels.use("numba"):
        with pytest.raises(TypeError) as info:
            F.conv2d(x, w)
    assert str(info.value) == ("numba CPU kernel conv2d_forward: dtype float16 is not supported; these kernels "
                               "take float32 and float64. Convert with .astype(np.float32), or run "
                               "kernels.use(\"reference\"), whose NumPy kernels handle float16")
    with kernels.use("reference"):  # what the message promises
        y = F.conv2d(x, w)
    assert y.data.dtype == np.float16 and np.all(y.data == 9)


@pytest.mark.parametrize("name,args", [
    ("dense_forward", lambda a: (a((2, 3)), a((4, 3)), None)),
    ("reparameterize_kl_forward", lambda a: (a((2, 3)), a((2, 3)), a((2, 3)))),
    ("bce_with_logits_forward", lambda a: (a((5,)), a((5,)))),
    ("conv2d_backward_bias", lambda a: (a((1, 2, 3, 3)),)),
])
def test_every_cpu_kernel_checks_its_dtype(name, args):
    from minivae.kernels import cpu

    with pytest.raises(TypeError, match=f"^numba CPU kernel {name}: dtype float16 is not supported"):
        getattr(cpu, name)(*args(lambda shape: np.ones(shape, np.float16)))
    getattr(cpu, name)(*args(lambda shape: np.ones(shape, np.float32)))  # float32 still runs


@pytest.mark.parametrize("opt", [SGD, Adam])
def test_optimizers_reject_repeated_parameters(opt):
    p = nn.Parameter(np.ones(2, np.float32))
    with pytest.raises(ValueError, match=f"^{opt.__name__}: parameter 1 is the same Tensor as parameter 0; "):
        opt([p, p], lr=0.1)
    q = nn.Parameter(np.ones(2, np.float32))
    opt([p, q], lr=0.1)  # distinct parameters are fine


@pytest.mark.parametrize("opt", [SGD, Adam])
def test_optimizers_reject_non_tensor_parameters_when_built(opt):
    with pytest.raises(TypeError, match=f"^{opt.__name__}: parameter 0 is a ndarray, not a Tensor"):
        opt([np.ones(2, np.float32)], lr=0.1)
    with pytest.raises(TypeError, match="got one Tensor; wrap it in a list"):
        opt(nn.Parameter(np.ones(2, np.float32)), lr=0.1)


def test_sgd_updates_each_parameter_once():
    p = nn.Parameter(np.ones(2, np.float32))
    opt = SGD([p], lr=0.5)
    p.grad = mv.Tensor(np.ones(2, np.float32))
    opt.step()
    np.testing.assert_array_equal(p.data, np.full(2, 0.5, np.float32))


@pytest.mark.parametrize("itype", [np.int64, np.int32, np.uint8])
def test_numpy_integers_are_accepted_where_ints_are(itype):
    x = mv.Tensor(np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32))
    w = mv.Tensor(np.ones((3, 1, 3, 3), np.float32))
    a = F.conv2d(x, w, stride=itype(2), padding=itype(1))
    b = F.conv2d(x, w, stride=2, padding=1)
    np.testing.assert_array_equal(a.data, b.data)
    F.conv2d(x, w, stride=(itype(2), 1))
    conv = nn.Conv2d(itype(1), itype(3), itype(3), stride=itype(2), padding=itype(1))
    assert conv.kernel_size == (3, 3) and conv(x).shape == (2, 3, 4, 4)
    assert nn.ConvTranspose2d(itype(3), itype(1), itype(3), stride=itype(2))(conv(x)).shape[1] == 1
    assert nn.Linear(itype(4), itype(2))(mv.Tensor(np.ones((1, 4), np.float32))).shape == (1, 2)
    from minivae.data import DataLoader
    from minivae.models import MLPVAE

    assert len(list(DataLoader(np.zeros((10, 1)), batch_size=itype(4)))) == 3
    assert MLPVAE(latent_dim=2, hidden=itype(16)).config()["hidden"] in ((16,), [16])


def test_numpy_bools_and_floats_are_still_refused_as_sizes():
    x = mv.Tensor(np.ones((1, 1, 4, 4), np.float32))
    w = mv.Tensor(np.ones((1, 1, 3, 3), np.float32))
    for bad in (np.float64(2.0), True, np.bool_(True)):
        with pytest.raises(TypeError, match="stride must be an int or a pair of ints"):
            F.conv2d(x, w, stride=bad)
