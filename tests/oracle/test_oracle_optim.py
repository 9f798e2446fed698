"""minivae.optim against torch.optim: the same parameter trajectory over 50 float64 steps on a small problem
(a least-squares fit plus a quartic term, two parameters of different shapes, one of which misses its
gradient on some steps, so per-parameter step counts matter), for every option PyTorch has; and the
constructors' names and defaults are PyTorch's."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import minivae as mv
import minivae.optim as mo

STEPS = 50
R = np.random.default_rng(7)
A = R.standard_normal((6, 4))
Y = R.standard_normal((6, 3))
W0 = R.standard_normal((4, 3)) * 0.5
B0 = R.standard_normal(3) * 0.5


def _loss(lib, w, b, step):
    a, y = lib.tensor(A), lib.tensor(Y)
    pred = a @ w + b
    loss = ((pred - y) ** 2).sum() + 0.1 * (w ** 4).sum()
    if step % 5 == 3:  # b gets no gradient on these steps (its step count falls behind w's)
        return loss
    return loss + 0.3 * (b ** 2).sum()


def _grads_torch(w, b, step, maximize=False):
    """The gradients of the loss, or of minus the loss for ``maximize`` (ascent on it stays bounded)."""
    loss = _loss(torch, w, b, step)
    loss = -loss if maximize else loss
    grads = torch.autograd.grad(loss, [w, b], allow_unused=True)
    return grads


def trajectory_torch(cls, kwargs):
    w = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    opt = getattr(torch.optim, cls)([w, b], **kwargs)
    out = []
    for step in range(STEPS):
        opt.zero_grad(set_to_none=True)
        gw, gb = _grads_torch(w, b, step, kwargs.get("maximize", False))
        w.grad = gw
        b.grad = gb if step % 5 != 3 else None
        opt.step()
        out.append((w.detach().numpy().copy(), b.detach().numpy().copy()))
    return out


def trajectory_minivae(cls, kwargs):
    w = mv.Tensor(W0.copy(), requires_grad=True)
    b = mv.Tensor(B0.copy(), requires_grad=True)
    opt = getattr(mo, cls)([w, b], **kwargs)
    out = []
    for step in range(STEPS):
        opt.zero_grad()
        tw = torch.tensor(w.data, requires_grad=True)
        tb = torch.tensor(b.data, requires_grad=True)
        # the same gradients as PyTorch's run: this test is about the update rule
        gw, gb = _grads_torch(tw, tb, step, kwargs.get("maximize", False))
        w.grad = mv.Tensor(gw.numpy())
        b.grad = mv.Tensor(gb.numpy()) if step % 5 != 3 else None
        opt.step()
        out.append((w.data.copy(), b.data.copy()))
    return out


CONFIGS = [
    ("SGD", dict(lr=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9)),
    ("SGD", dict(lr=0.01, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.01, momentum=0.5, weight_decay=0.1)),
    ("SGD", dict(lr=0.01, momentum=0.8, nesterov=True, weight_decay=0.05, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, maximize=True)),
]


@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=[f"{c}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                                                     for c, kw in CONFIGS])
def test_trajectory_matches_torch_optim(cls, kwargs):
    want = trajectory_torch(cls, kwargs)
    got = trajectory_minivae(cls, kwargs)
    for step, ((gw, gb), (ww, wb)) in enumerate(zip(got, want)):
        np.testing.assert_allclose(gw, ww, rtol=1e-10, atol=1e-12, err_msg=f"{cls} {kwargs}: w after step {step + 1}")
        np.testing.assert_allclose(gb, wb, rtol=1e-10, atol=1e-12, err_msg=f"{cls} {kwargs}: b after step {step + 1}")
    assert np.isfinite(got[-1][0]).all() and not np.allclose(got[-1][0], W0), "the parameters moved, finitely"


@pytest.mark.parametrize("cls", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_names_and_defaults_are_pytorchs(cls):
    """Every keyword of torch.optim.<cls> that concerns the maths exists in minivae with PyTorch's default
    (foreach/capturable/differentiable/fused are PyTorch's implementation switches; minivae's Adam has its own
    ``fused``)."""
    ours = inspect.signature(getattr(mo, cls)).parameters
    theirs = inspect.signature(getattr(torch.optim, cls)).parameters
    switches = {"foreach", "capturable", "differentiable", "fused", "params"}
    for name, p in theirs.items():
        if name in switches or name == "self":
            continue
        assert name in ours, f"{cls} lacks PyTorch's keyword {name!r}"
        assert ours[name].default == p.default, f"{cls}({name}=...) defaults to {ours[name].default!r}, " \
                                                f"PyTorch's to {p.default!r}"
