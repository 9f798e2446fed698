"""Kernels bound to the graph: a node's backward (and every higher-order backward) runs on the kernel set its
forward ran on, whatever is selected by then; the selection is context-local and nests."""
from __future__ import annotations

import contextvars
import threading

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae import kernels
from minivae.autograd import grad

import spy_kernels

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
    for name in ("conv2d_forward", "conv_transpose2d_forward", "conv2d_backward_weight", "dense_backward",
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


def test_optional_kernel_lookup():
    """get_optional: a set's optional kernel, None where the set lacks it, KeyError for other names."""
    from minivae.kernels import cpu

    with kernels.use("numba"):
        assert kernels.get_optional("conv_transpose2d_backward") is cpu.conv_transpose2d_backward
    with kernels.use("reference"):
        assert kernels.get_optional("conv_transpose2d_backward") is None
    with pytest.raises(KeyError, match="optional kernels: conv_transpose2d_backward"):
        kernels.get_optional("conv2d_forward")


def test_transposed_conv_backward_takes_the_optional_kernel_only_without_create_graph(monkeypatch):
    """A set with ``conv_transpose2d_backward`` gets one call for gx and gW in a plain backward (the Numba CPU
    set shares one im2col there); a create_graph backward keeps the two differentiable ops; the gradients agree."""
    from minivae.kernels import reference

    def both(gy, x, weight, stride, padding):
        spy_kernels.CALLS.append("conv_transpose2d_backward")
        return (reference.conv_transpose2d_backward_input(gy, weight, stride, padding),
                reference.conv_transpose2d_backward_weight(gy, x, weight.shape[2:], stride, padding))

    monkeypatch.setattr(spy_kernels, "conv_transpose2d_backward", both, raising=False)
    monkeypatch.setattr(kernels, "_FUNCTIONS", {})
    with kernels.use("spy"):
        loss, leaves = _model_loss()
    n = len(spy_kernels.CALLS)
    loss.backward(retain_graph=True)
    plain = spy_kernels.CALLS[n:]
    assert plain.count("conv_transpose2d_backward") == 1
    # without it, convT's gx is a conv2d_forward and its gW a second conv2d_backward_weight (besides conv2d's own)
    assert "conv2d_forward" not in plain and plain.count("conv2d_backward_weight") == 1
    first = [t.grad.data.copy() for t in leaves]
    n = len(spy_kernels.CALLS)
    grads = grad(loss, leaves, create_graph=True)
    assert "conv_transpose2d_backward" not in spy_kernels.CALLS[n:]
    assert all(g.requires_grad for g in grads[1:3])  # recorded: differentiable again
    for a, b in zip(first, grads):
        np.testing.assert_allclose(a, b.data, rtol=1e-12, atol=1e-14)


def test_required_and_optional_lookups_do_not_share_answers():
    """An optional kernel found by get_optional is still not a required kernel for get (separate cache keys)."""
    with kernels.use("numba"):
        assert kernels.get_optional("conv_transpose2d_backward") is not None
        with pytest.raises(KeyError, match="unknown kernel 'conv_transpose2d_backward'"):
            kernels.get("conv_transpose2d_backward")
