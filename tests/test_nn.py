"""nn: Module structure and names, modes, state dicts, layers' shapes and initialisation, hooks."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        self.scale = nn.Parameter(np.ones(2, np.float32))
        self.decoder = nn.Sequential(nn.Linear(2, 4, bias=False), nn.Tanh())

    def forward(self, x):
        return self.decoder(self.encoder(x) * self.scale)


def test_named_parameters_follow_pytorch_names():
    names = [n for n, _ in Net().named_parameters()]
    # as PyTorch: a module's own parameters first, then its sub-modules' in assignment order
    assert names == ["scale", "encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias",
                     "decoder.0.weight"]


def test_parameters_are_the_named_ones_and_counted():
    net = Net()
    params = net.parameters()
    assert [id(p) for p in params] == [id(p) for _, p in net.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in params)
    assert net.num_parameters() == 2 + 4 * 3 + 3 + 3 * 2 + 2 + 2 * 4


def test_shared_parameter_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]


def test_named_modules_and_children():
    net = Net()
    names = [n for n, _ in net.named_modules()]
    assert names == ["", "encoder", "encoder.0", "encoder.1", "encoder.2", "decoder", "decoder.0", "decoder.1"]
    assert [n for n, _ in net.named_children()] == ["encoder", "decoder"]


def test_train_eval_recursive():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_state_dict_round_trip():
    nn.init.manual_seed(1)
    a = Net()
    nn.init.manual_seed(2)
    b = Net()
    x = mv.Tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    assert not np.allclose(a(x).detach().numpy(), b(x).detach().numpy())
    state = a.state_dict()
    assert list(state) == [n for n, _ in a.named_parameters()]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    b.load_state_dict(state)
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    # the state dict holds copies: changing it (or b) does not change a
    state["scale"][:] = 100
    b.scale.data += 1
    np.testing.assert_array_equal(a.scale.detach().numpy(), np.ones(2))


def test_load_state_dict_keeps_dtype():
    net = Net()
    state = {k: v.astype(np.float64) for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    assert all(p.dtype == np.float32 for p in net.parameters())


def test_zero_grad():
    net = Net()
    net(mv.Tensor(np.ones((2, 4), np.float32))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# --------------------------------------------------------------------------- layers


def _check_uniform_bound(values, bound):
    values = np.asarray(values)
    assert np.abs(values).max() <= bound + 1e-7
    # the range is used: a much narrower init would fail this
    if values.size >= 200:
        assert np.abs(values).max() > 0.9 * bound
        assert values.min() < 0 < values.max()


def test_linear_shapes_and_default_init():
    nn.init.manual_seed(0)
    lin = nn.Linear(300, 20)
    assert lin.weight.shape == (20, 300) and lin.bias.shape == (20,)
    assert lin.weight.dtype == np.float32
    _check_uniform_bound(lin.weight.detach().numpy(), 1 / math.sqrt(300))
    assert np.abs(lin.bias.detach().numpy()).max() <= 1 / math.sqrt(300)
    x = np.random.default_rng(0).standard_normal((3, 300)).astype(np.float32)
    np.testing.assert_allclose(lin(mv.Tensor(x)).detach().numpy(),
                               x @ lin.weight.detach().numpy().T + lin.bias.detach().numpy(), rtol=1e-5)
    assert nn.Linear(3, 2, bias=False).bias is None


def test_conv2d_shapes_and_default_init():
    nn.init.manual_seed(0)
    conv = nn.Conv2d(3, 16, (3, 2), stride=2, padding=1)
    assert conv.weight.shape == (16, 3, 3, 2) and conv.bias.shape == (16,)
    fan_in = 3 * 3 * 2
    _check_uniform_bound(conv.weight.detach().numpy(), 1 / math.sqrt(fan_in))
    assert np.abs(conv.bias.detach().numpy()).max() <= 1 / math.sqrt(fan_in)
    x = mv.Tensor(np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(np.float32))
    y = conv(x)
    assert y.shape == (2, 16, 4, 4)
    # the layer runs exactly F.conv2d on the same inputs: bit for bit (the CPU kernels are deterministic)
    np.testing.assert_array_equal(y.detach().numpy(),
                                  F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1).detach().numpy())


def test_conv_transpose2d_shapes_and_default_init():
    nn.init.manual_seed(0)
    convt = nn.ConvTranspose2d(32, 8, 3, stride=2, padding=1, output_padding=1)
    assert convt.weight.shape == (32, 8, 3, 3) and convt.bias.shape == (8,)
    fan_in = 8 * 3 * 3  # PyTorch computes fan_in from weight.shape[1] (= out_channels here)
    _check_uniform_bound(convt.weight.detach().numpy(), 1 / math.sqrt(fan_in))
    assert np.abs(convt.bias.detach().numpy()).max() <= 1 / math.sqrt(fan_in)
    y = convt(mv.Tensor(np.zeros((1, 32, 7, 7), np.float32)))
    assert y.shape == (1, 8, 14, 14)
    # zero input: exactly the bias
    np.testing.assert_array_equal(y.detach().numpy()[0, :, 0, 0], convt.bias.detach().numpy())


def test_glorot_init_option():
    nn.init.manual_seed(0)
    lin = nn.Linear(100, 50, init_method="glorot_uniform")
    _check_uniform_bound(lin.weight.detach().numpy(), math.sqrt(6 / 150))
    np.testing.assert_array_equal(lin.bias.detach().numpy(), np.zeros(50))
    with pytest.raises(ValueError, match="unknown initialiser 'xavier'"):
        nn.Linear(2, 2, init_method="xavier")


def test_fan_in_and_fan_out():
    assert nn.init.fan_in_and_fan_out((20, 300)) == (300, 20)
    assert nn.init.fan_in_and_fan_out((16, 3, 3, 2)) == (18, 96)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.fan_in_and_fan_out((5,))


def test_manual_seed_makes_init_reproducible():
    nn.init.manual_seed(123)
    a = nn.Conv2d(2, 4, 3).weight.detach().numpy()
    nn.init.manual_seed(123)
    b = nn.Conv2d(2, 4, 3).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, nn.Conv2d(2, 4, 3).weight.detach().numpy())


def test_float64_layers():
    lin = nn.Linear(3, 2, dtype=np.float64)
    assert lin.weight.dtype == np.float64 and lin(mv.Tensor(np.ones((1, 3)))).dtype == np.float64


def test_sequential_flatten_unflatten():
    seq = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Sigmoid(), nn.Unflatten(1, (2, 3)))
    assert len(seq) == 4
    assert isinstance(seq[1], nn.Linear) and isinstance(seq[-1], nn.Unflatten)
    assert [type(m).__name__ for m in seq] == ["Flatten", "Linear", "Sigmoid", "Unflatten"]
    x = mv.Tensor(np.random.default_rng(0).standard_normal((5, 3, 2, 2)).astype(np.float32), requires_grad=True)
    y = seq(x)
    assert y.shape == (5, 2, 3)
    assert ((y.detach().numpy() > 0) & (y.detach().numpy() < 1)).all()
    y.sum().backward()
    assert x.grad.shape == (5, 3, 2, 2)
    assert nn.Flatten()(mv.Tensor(np.ones((2, 3, 4, 5)))).shape == (2, 60)
    assert nn.Unflatten(-1, (2, 2))(mv.Tensor(np.ones((3, 4)))).shape == (3, 2, 2)


def test_activation_modules_match_functional():
    x = mv.Tensor(np.linspace(-2, 2, 9))
    for mod, fn in [(nn.ReLU(), F.relu), (nn.Sigmoid(), F.sigmoid), (nn.Tanh(), F.tanh)]:
        np.testing.assert_array_equal(mod(x).detach().numpy(), fn(x).detach().numpy())


def test_forward_hook_called_replaces_output_and_removes():
    lin = nn.Linear(3, 2)
    x = mv.Tensor(np.ones((1, 3), np.float32))
    seen = []

    def record(module, inputs, output):
        seen.append((module, inputs, output.shape))

    handle = lin.register_forward_hook(record)
    plain = lin(x)
    assert len(seen) == 1 and seen[0][0] is lin and seen[0][1][0] is x and seen[0][2] == (1, 2)

    h2 = lin.register_forward_hook(lambda m, i, out: out * 0.0)
    assert np.all(lin(x).detach().numpy() == 0)
    assert len(seen) == 2
    h2.remove()
    np.testing.assert_array_equal(lin(x).detach().numpy(), plain.detach().numpy())
    handle.remove()
    lin(x)
    assert len(seen) == 3
    handle.remove()  # removing twice is harmless


def test_hook_on_a_submodule_sees_intermediate_activations():
    net = Net()
    acts = {}
    net.encoder.register_forward_hook(lambda m, i, out: acts.setdefault("code", out.detach().numpy()))
    net(mv.Tensor(np.ones((2, 4), np.float32)))
    assert acts["code"].shape == (2, 2)


def test_repr_lists_layers():
    r = repr(Net())
    assert "(encoder): Sequential(" in r and "Linear(in_features=4, out_features=3, bias=True)" in r
    assert "(1): Tanh()" in r
