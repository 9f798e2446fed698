"""Optimizers against hand-written NumPy versions of their update rules, state dicts, convergence."""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
from minivae import nn
from minivae.optim import SGD, Adam, RMSprop

GRADS = [np.random.default_rng(s).standard_normal((3, 2)) for s in range(6)]
P0 = np.random.default_rng(99).standard_normal((3, 2))


def run(opt_cls, steps=6, **hyper):
    p = nn.Parameter(P0.copy())
    opt = opt_cls([p], **hyper)
    out = []
    for g in GRADS[:steps]:
        opt.zero_grad()
        p.grad = mv.Tensor(g.copy())
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


def adam_reference(lr, b1, b2, eps, wd=0.0):
    """Kingma & Ba (2015), Algorithm 1 (with L2 weight decay added to the gradient, as torch.optim.Adam)."""
    theta, m, v = P0.copy(), np.zeros_like(P0), np.zeros_like(P0)
    out = []
    for t, g in enumerate(GRADS, start=1):
        g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(theta.copy())
    return out


@pytest.mark.parametrize("hyper", [dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8),
                                   dict(lr=0.1, betas=(0.5, 0.9), eps=1e-3),
                                   dict(lr=0.05, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.1)])
def test_adam_matches_algorithm_1(hyper):
    got = run(Adam, **hyper)
    want = adam_reference(hyper["lr"], *hyper["betas"], hyper["eps"], hyper.get("weight_decay", 0.0))
    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=f"step {k + 1}")


def test_adam_first_step_moves_each_coordinate_by_about_lr():
    # with bias correction, |step 1| = lr * |g| / (|g| + eps') ~ lr for every coordinate
    out = run(Adam, steps=1, lr=0.01)
    np.testing.assert_allclose(np.abs(out[0] - P0), 0.01, rtol=1e-4)


def sgd_reference(lr, momentum=0.0, dampening=0.0, wd=0.0, nesterov=False):
    """PyTorch's SGD: the momentum buffer is the gradient itself at the first step."""
    p, buf = P0.copy(), None
    out = []
    for g in GRADS:
        g = g + wd * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        out.append(p.copy())
    return out


@pytest.mark.parametrize("hyper", [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.5, dampening=0.3),
                                   dict(lr=0.1, momentum=0.9, nesterov=True), dict(lr=0.1, momentum=0.9, weight_decay=0.01)])
def test_sgd_matches_hand_written(hyper):
    got = run(SGD, **hyper)
    want = sgd_reference(hyper["lr"], hyper.get("momentum", 0.0), hyper.get("dampening", 0.0),
                         hyper.get("weight_decay", 0.0), hyper.get("nesterov", False))
    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=f"step {k + 1}")


def test_sgd_momentum_first_step_is_plain_sgd():
    out = run(SGD, steps=1, lr=0.1, momentum=0.9)
    np.testing.assert_allclose(out[0], P0 - 0.1 * GRADS[0])


def test_rmsprop_matches_hand_written():
    lr, alpha, eps = 0.01, 0.9, 1e-8
    p, v = P0.copy(), np.zeros_like(P0)
    want = []
    for g in GRADS:
        v = alpha * v + (1 - alpha) * g * g
        p = p - lr * g / (np.sqrt(v) + eps)
        want.append(p.copy())
    for a, b in zip(run(RMSprop, lr=lr, alpha=alpha, eps=eps), want):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_params_without_grad_are_skipped():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = Adam([a, b], lr=0.1)
    a.grad = mv.Tensor(np.ones(2))
    opt.step()
    np.testing.assert_array_equal(b.detach().numpy(), np.ones(2))
    assert not np.array_equal(a.detach().numpy(), np.ones(2))
    opt.zero_grad()
    assert a.grad is None


@pytest.mark.parametrize("opt_cls, hyper", [(Adam, dict(lr=0.05)), (SGD, dict(lr=0.05, momentum=0.9)),
                                            (RMSprop, dict(lr=0.01))])
def test_state_dict_round_trip_continues_identically(opt_cls, hyper):
    p1 = nn.Parameter(P0.copy())
    opt1 = opt_cls([p1], **hyper)
    for g in GRADS[:3]:
        p1.grad = mv.Tensor(g.copy())
        opt1.step()
    state = opt1.state_dict()
    # a fresh optimizer (other hyper-parameters: restored from the state) on a copy of the parameter
    p2 = nn.Parameter(p1.detach().numpy().copy())
    opt2 = opt_cls([p2], lr=0.5)
    opt2.load_state_dict(state)
    assert opt2.step_count == 3 and opt2.defaults == opt1.defaults
    # the saved state is a copy: further steps of opt1 do not change it
    for g in GRADS[3:]:
        for p, opt in ((p1, opt1), (p2, opt2)):
            p.grad = mv.Tensor(g.copy())
            opt.step()
    np.testing.assert_array_equal(p1.detach().numpy(), p2.detach().numpy())
    assert opt1.step_count == 6


def test_state_dict_is_a_host_copy():
    p = nn.Parameter(P0.copy())
    opt = Adam([p], lr=0.1)
    p.grad = mv.Tensor(GRADS[0])
    opt.step()
    st = opt.state_dict()
    m = st["state"][0]["m"].copy()
    p.grad = mv.Tensor(GRADS[1])
    opt.step()
    np.testing.assert_array_equal(st["state"][0]["m"], m)


def test_load_state_dict_mismatch():
    opt = Adam([nn.Parameter(np.ones(2))])
    hyper = opt.state_dict()["hyper"]
    with pytest.raises(ValueError, match="optimizer state has 2 parameters, this optimizer has 1"):
        opt.load_state_dict({"hyper": hyper, "step_count": 0, "state": [{}, {}]})
    with pytest.raises(ValueError, match=r"state 'm' of parameter 0 has shape \(3,\), the parameter has \(2,\)"):
        opt.load_state_dict({"hyper": hyper, "step_count": 1, "state": [{"m": np.zeros(3), "v": np.zeros(3)}]})


def test_invalid_hyper_parameters():
    p = [nn.Parameter(np.ones(1))]
    with pytest.raises(ValueError, match="Adam: invalid"):
        Adam(p, lr=-1)
    with pytest.raises(ValueError, match="Adam: invalid"):
        Adam(p, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="SGD: invalid"):
        SGD(p, lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam([])


def test_adam_minimises_a_quadratic():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    hess = a @ a.T + np.eye(4)  # positive definite
    target = rng.standard_normal(4)
    x = nn.Parameter(np.zeros(4))
    opt = Adam([x], lr=0.05)
    h, tt = mv.Tensor(hess), mv.Tensor(target)
    first = None
    for _ in range(1500):
        opt.zero_grad()
        d = (x - tt).reshape(1, 4)
        loss = (d @ h @ d.T).sum() * 0.5
        first = loss.item() if first is None else first
        loss.backward()
        opt.step()
    assert loss.item() < 1e-6 * first
    np.testing.assert_allclose(x.detach().numpy(), target, atol=1e-3)


def test_float32_parameters_stay_float32():
    p = nn.Parameter(np.ones(3, np.float32))
    for opt in (Adam([p], lr=0.1), SGD([p], lr=0.1, momentum=0.9), RMSprop([p])):
        p.grad = mv.Tensor(np.ones(3, np.float32))
        opt.step()
        assert p.dtype == np.float32


def test_adam_counts_steps_per_parameter_as_pytorch():
    """A parameter that gets its first gradient at the second step still starts at t = 1:
    its first update is lr * g / (|g| + eps), i.e. almost exactly lr, not 0.74 lr."""
    import numpy as np

    from minivae.nn import Parameter
    from minivae.optim import Adam

    a, b = Parameter(np.zeros(3)), Parameter(np.zeros(3))
    opt = Adam([a, b], lr=0.1)
    a.grad = Parameter(np.ones(3)).detach()
    opt.step()  # only a has a gradient
    b.grad = Parameter(np.full(3, 2.0)).detach()
    a.grad = Parameter(np.ones(3)).detach()
    opt.step()
    np.testing.assert_allclose(b.data, -0.1 * 2.0 / (2.0 + 1e-8), rtol=1e-12)
    assert opt.state[0]["step"] == 2 and opt.state[1]["step"] == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_jitted_cpu_step_has_the_bits_of_the_numpy_path(dtype, weight_decay, monkeypatch):
    """On the CPU each parameter's Adam update is one jitted loop (kernels/_cpu_adam.py); it repeats the NumPy
    operations in their order and dtype, so 20 steps of both paths agree to the last bit."""
    from minivae.kernels import _cpu_adam

    rng = np.random.default_rng(3)
    p0 = rng.standard_normal((5, 7)).astype(dtype)
    grads = [(rng.standard_normal((5, 7)) * 10.0 ** rng.integers(-6, 3)).astype(dtype) for _ in range(20)]

    def train(use_jit):
        monkeypatch.setattr(_cpu_adam, "fits", _cpu_adam.fits if use_jit else (lambda *a: False))
        p = nn.Parameter(p0.copy())
        opt = Adam([p], lr=3e-3, betas=(0.8, 0.995), eps=1e-7, weight_decay=weight_decay)
        for g in grads:
            p.grad = mv.Tensor(g.copy())
            opt.step()
        return p.detach().numpy(), opt.state[0]["m"], opt.state[0]["v"]

    calls = []
    real_step = _cpu_adam.adam_step
    monkeypatch.setattr(_cpu_adam, "adam_step", lambda *a, **k: (calls.append(1), real_step(*a, **k)))
    jitted = train(True)
    assert len(calls) == 20  # the jitted path really ran
    numpy_path = train(False)
    assert len(calls) == 20
    for a, b in zip(jitted, numpy_path):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)


def test_adam_jitted_step_refuses_what_it_cannot_take():
    from minivae.kernels import _cpu_adam

    a = np.zeros((4, 4), np.float32)
    assert _cpu_adam.fits(a, a.copy(), a.copy(), a.copy())
    assert not _cpu_adam.fits(a, a.T.copy()[:, :2], a.copy(), a.copy())          # shape
    assert not _cpu_adam.fits(a[:, ::2], a[:, ::2].copy(), a[:, ::2].copy(), a[:, ::2].copy())  # strided
    assert not _cpu_adam.fits(a, a.astype(np.float64), a.copy(), a.copy())      # mixed dtypes
    assert not _cpu_adam.fits(*(np.zeros(3, np.float16) for _ in range(4)))     # no float16 loop
    with pytest.raises(ValueError, match="C-contiguous"):
        _cpu_adam.adam_step(a[:, ::2], a[:, ::2], a[:, ::2], a[:, ::2], 1e-3, 0.9, 0.999, 1e-8, 1)
