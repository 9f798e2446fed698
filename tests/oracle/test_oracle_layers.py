"""Linear, Conv2d, ConvTranspose2d against torch.nn: default initialisation distributions (PyTorch's
``kaiming_uniform_(a=sqrt(5))`` weight, i.e. ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and a bias in the same
bound, with PyTorch's ``fan_in`` = ``weight.size(1) * prod(kernel)``, which for ConvTranspose2d's
``(C_in, C_out, kH, kW)`` weight counts C_out), shapes, dtypes and state_dict keys.

The distributions are checked by their bound (no value outside it, the extremes close to it) and loosely by
moments and deciles against the uniform law, at a fixed seed (deterministic), and against the same statistics
of PyTorch's own layers (also at a fixed seed).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import minivae.nn as mnn

LAYERS = [
    ("Linear", (300, 200), lambda w: w.shape[1]),
    ("Conv2d", (16, 32, 3), lambda w: w.shape[1] * w.shape[2] * w.shape[3]),
    ("Conv2d", (8, 64, (5, 3)), lambda w: w.shape[1] * w.shape[2] * w.shape[3]),
    ("ConvTranspose2d", (32, 16, 4), lambda w: w.shape[1] * w.shape[2] * w.shape[3]),
    ("ConvTranspose2d", (64, 8, (3, 5)), lambda w: w.shape[1] * w.shape[2] * w.shape[3]),
]
IDS = [f"{name}{args}" for name, args, _ in LAYERS]


def _pair(layer_args, name):
    ours = getattr(mnn, name)(*layer_args, rng=np.random.default_rng(0))
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*layer_args)
    return ours, theirs


def _check_uniform(values, bound, what):
    """``values`` look like U(-bound, bound): inside the bound, reaching near it, mean ~ 0, variance ~ bound^2/3,
    deciles ~ bound * (2q - 1) (tolerances several standard errors wide: the check is loose but deterministic)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    n = v.size
    assert np.abs(v).max() <= bound * (1 + 1e-6), f"{what}: a value {np.abs(v).max()} outside the bound {bound}"
    assert np.abs(v).max() >= bound * (1 - 20.0 / n), f"{what}: extremes {np.abs(v).max()} far inside {bound}"
    se = bound / math.sqrt(3 * n)
    assert abs(v.mean()) < 6 * se, f"{what}: mean {v.mean()} (bound {bound}, n {n})"
    assert abs(v.var() / (bound ** 2 / 3) - 1) < 6 * math.sqrt(0.8 / n), f"{what}: variance {v.var()} vs {bound**2/3}"
    if n >= 1000:
        q = np.linspace(0.1, 0.9, 9)
        np.testing.assert_allclose(np.quantile(v, q), bound * (2 * q - 1), atol=bound * 8 / math.sqrt(n),
                                   err_msg=f"{what}: deciles")


@pytest.mark.parametrize("name, args, fan_in", LAYERS, ids=IDS)
def test_default_initialisation_is_pytorchs(name, args, fan_in):
    ours, theirs = _pair(args, name)
    w, tw = ours.weight.data, theirs.weight.detach().numpy()
    assert w.shape == tw.shape and w.dtype == np.float32 and str(tw.dtype) == "float32"
    assert fan_in(w) == torch.nn.init._calculate_fan_in_and_fan_out(theirs.weight)[0]
    bound = 1 / math.sqrt(fan_in(w))
    _check_uniform(tw, bound, f"PyTorch's {name} weight")  # the expectation itself, checked on PyTorch
    _check_uniform(w, bound, f"minivae's {name} weight")
    b, tb = ours.bias.data, theirs.bias.detach().numpy()
    assert b.shape == tb.shape and b.dtype == np.float32
    _check_uniform(tb, bound, f"PyTorch's {name} bias")
    _check_uniform(b, bound, f"minivae's {name} bias")


@pytest.mark.parametrize("name, args, fan_in", LAYERS, ids=IDS)
def test_state_dict_keys_shapes_and_dtypes_are_pytorchs(name, args, fan_in):
    ours, theirs = _pair(args, name)
    mine = ours.state_dict()
    ref = theirs.state_dict()
    assert list(mine) == list(ref)
    for k in ref:
        assert tuple(mine[k].shape) == tuple(ref[k].shape) and str(mine[k].dtype) == "float32", k


def test_nested_state_dict_keys_are_pytorchs():
    ours = mnn.Sequential(mnn.Conv2d(1, 4, 3), mnn.ReLU(), mnn.Flatten(), mnn.Linear(4, 2, bias=False),
                          mnn.Sequential(mnn.Linear(2, 2)))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(4, 2, bias=False), torch.nn.Sequential(torch.nn.Linear(2, 2)))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_pytorch_state_dict_loads_into_minivae_and_computes_the_same():
    """Weights exported from torch.nn load into the minivae layer (same names, layouts) and give PyTorch's
    output: the layouts agree, not just the key names."""
    import minivae as mv

    for name, args, _ in LAYERS[:4:3] + LAYERS[1:2]:
        ours, theirs = _pair(args, name)
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        shape = (2, args[0]) if name == "Linear" else (1, args[0], 5, 6)
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(ours(mv.Tensor(x)).detach().numpy(), theirs(torch.from_numpy(x)).detach().numpy(),
                                   rtol=1e-4, atol=1e-5, err_msg=name)
