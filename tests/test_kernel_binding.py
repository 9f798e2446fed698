"""Kernels bound to the graph: a node's backward (and every higher-order backward) runs on the kernel set its
forward ran on, whatever is selected by then; the selection is context-local and nests."""
from __future__ import annotations

import contextvars
import threading

import numpy as np
import pytest
import spy_kernels

import minivae as mv
import minivae.functional as F
from minivae import kernels
from minivae.autograd import grad


@pytest.fixture(autouse=True)
def _spy_set(monkeypatch):
    """The spy set registered for each test only (other tests list the registered sets)."""
    monkeypatch.setitem(kernels._MODULES, ("cpu", "spy"), "spy_kernels")
    kernels.register("cpu", "spy", "spy_kernels")  # the public call, on the patched registry
    spy_kernels.CALLS.clear()
    yield
    spy_kernels.CALLS.clear()


def _model_loss():
    rng = np.random.default_rng(0)
    x = mv.Tensor(rng.standard_normal((2, 1, 6, 6)), requires_grad=True)
    w = mv.Tensor(rng.standard_normal((3, 1, 3, 3)), requires_grad=True)
    wt = mv.Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    lin = mv.Tensor(rng.standard_normal((4, 2 * 6 * 6)), requires_grad=True)
    h = F.relu(F.conv2d(x, w, stride=2, padding=1))
    y = F.conv_transpose2d(h, wt, stride=2, padding=1, output_padding=1)
    z = F.linear(F.reshape(y, (2, -1)), lin)
    mu, logvar = z[:, :2], z[:, 2:]
    zz, kl = F.reparameterize_kl(mu, logvar, mv.Tensor(np.ones((2, 2))))
    loss = F.binary_cross_entropy_with_logits(zz, mv.Tensor(np.full((2, 2), 0.5))) + F.sum(kl)
    return loss, (x, w, wt, lin)


def test_backward_after_the_block_runs_on_the_forward_kernels():
    with kernels.use("spy"):
        loss, leaves = _model_loss()
    forward_calls = list(spy_kernels.CALLS)
    assert kernels.current("cpu") != "spy"
    loss.backward()
    backward_calls = spy_kernels.CALLS[len(forward_calls):]
    # every backward kernel ran on the spy set (conv input gradients are the other convolution's forward)
    for name in ("conv_transpose2d_backward", "conv_transpose2d_forward", "conv2d_backward_weight", "dense_backward",
                 "reparameterize_kl_backward", "bce_with_logits_backward"):
        assert name in backward_calls, (name, backward_calls)
    assert all(t.grad is not None for t in leaves)


def test_backward_inside_the_block_of_a_graph_built_outside_does_not_use_it():
    loss, _ = _model_loss()
    with kernels.use("spy"):
        loss.backward()
    assert spy_kernels.CALLS == []


def test_double_backward_stays_on_the_forward_kernels():
    with kernels.use("spy"):
        loss, (x, w, wt, lin) = _model_loss()
    n = len(spy_kernels.CALLS)
    (gx,) = grad(loss, x, create_graph=True)
    (gw,) = grad((gx * gx).sum(), w)
    assert "conv2d_backward_weight" in spy_kernels.CALLS[n:]
    assert gw.shape == w.shape


def test_spy_set_gives_the_numba_results():
    with kernels.use("spy"):
        a, leaves_a = _model_loss()
    a.backward()
    b, leaves_b = _model_loss()
    b.backward()
    for la, lb in zip(leaves_a, leaves_b):
        np.testing.assert_allclose(la.grad.data, lb.grad.data, rtol=1e-10, atol=1e-12)


def test_selection_nests_and_is_context_local():
    default = kernels.current("cpu")
    with kernels.use("reference"):
        with kernels.use("spy"):
            assert kernels.current("cpu") == "spy"
        assert kernels.current("cpu") == "reference"
        seen = []
        t = threading.Thread(target=lambda: seen.append(kernels.current("cpu")))
        t.start()
        t.join()
        assert seen == [default]  # a new thread starts from the default
        ctx = contextvars.copy_context()
        assert ctx.run(kernels.current, "cpu") == "reference"  # a copied context carries it
    assert kernels.current("cpu") == default


def test_registering_an_unknown_device_or_selecting_an_unknown_set_fails_at_once():
    with pytest.raises(ValueError, match="unknown device"):
        kernels.register("tpu", "x", "spy_kernels")
    with pytest.raises(ValueError, match="no kernel implementation 'nope'"):
        kernels.use("nope")


def test_the_registry_requires_exactly_what_the_ops_call():
    """Every kernel name appears in an op's source (``kernels.get("name"...)``) and every name an op asks for is in
    KERNELS: the contract is no wider than the ops."""
    import pathlib
    import re

    ops = pathlib.Path(kernels.__file__).resolve().parents[1] / "ops"
    called = set()
    for f in ops.glob("*.py"):
        called |= set(re.findall(r'kernels\.get\(\s*"([a-z0-9_]+)"', f.read_text()))
    assert called == set(kernels.KERNELS)
    assert not hasattr(kernels, "get_optional") and not hasattr(kernels, "OPTIONAL_KERNELS")


@pytest.mark.parametrize("create_graph", [False, True])
def test_transposed_conv_backward_has_one_route_in_every_grad_mode(create_graph):
    """Both gradients of a transposed convolution come from one op (the kernel conv_transpose2d_backward), with
    or without create_graph: the derivative never switches route on grad mode; the gradients agree."""
    with kernels.use("spy"):
        loss, leaves = _model_loss()
    n = len(spy_kernels.CALLS)
    grads = grad(loss, leaves, create_graph=create_graph)
    calls = spy_kernels.CALLS[n:]
    assert calls.count("conv_transpose2d_backward") == 1
    # besides convT's pair, conv2d's own backward: one weight gradient and no conv2d_forward
    assert "conv2d_forward" not in calls and calls.count("conv2d_backward_weight") == 1
    assert all(g.requires_grad == create_graph for g in grads[1:3])
    with kernels.use("reference"):
        loss, leaves = _model_loss()
    for a, b in zip(grad(loss, leaves), grads):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-14)
