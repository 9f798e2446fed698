"""Pins every row of docs/differences_from_pytorch.md: each test shows minivae's convention (and, where PyTorch
is installed, PyTorch's) so that the page stays true."""
from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "differences_from_pytorch.md"


def test_every_row_of_the_page_names_a_test_that_exists():
    names = re.findall(r"\| `(test_\w+)` \|", DOC.read_text())
    assert len(names) >= 10
    missing = [n for n in names if n not in globals()]
    assert not missing, f"rows of {DOC.name} without a test: {missing}"


def test_int_tensor_times_float_scalar_promotes_as_numpy():
    assert (mv.tensor([1, 2]) * 2.5).dtype == np.float64
    np.testing.assert_array_equal((mv.tensor([1, 2]) * 2.5).numpy(), [2.5, 5.0])


def test_integer_true_division_is_float64():
    assert (mv.tensor([1, 2]) / mv.tensor([2, 2])).dtype == np.float64


def test_device_names():
    assert mv.zeros(1).device == "cpu"
    with pytest.raises(ValueError, match="unknown device 'cuda'"):
        mv.zeros(1, device="cuda")


def test_random_numbers_are_reproducible_not_pytorchs():
    mv.manual_seed(0)
    a = mv.randn(3).numpy()
    mv.manual_seed(0)
    np.testing.assert_array_equal(a, mv.randn(3).numpy())
    np.testing.assert_array_equal(a, np.random.default_rng(0).standard_normal(3, dtype=np.float32))


def test_expand_returns_a_copy():
    x = mv.tensor([[1.0], [2.0]])
    y = x.expand(2, 3)
    y[0, 0] = 5.0
    assert x[0, 0].item() == 1.0 and y.shape == (2, 3)


def test_empty_is_zeros():
    np.testing.assert_array_equal(mv.empty(2, 2).numpy(), np.zeros((2, 2), np.float32))


def test_inplace_on_a_view_in_a_graph_is_refused():
    x = mv.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    v = y[:2]
    with pytest.raises(RuntimeError, match="view of a tensor that is part of a graph"):
        v.mul_(3)
    with mv.no_grad():  # outside a recorded graph the change goes through to the base, as in PyTorch
        v.mul_(3)
    np.testing.assert_array_equal(y.detach().numpy(), [6.0, 12.0, 6.0])


def test_softmax_needs_dim():
    with pytest.raises(TypeError):
        F.softmax(mv.zeros(2, 3))


def test_max_of_two_tensors_points_to_maximum():
    with pytest.raises(TypeError, match="maximum"):
        mv.max(mv.zeros(2), mv.ones(2))


def test_prod_first_derivative_at_zeros_matches_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch (the test-only oracle) is not installed")
    data = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 2.0], [1.5, 2.0, -1.0]])
    x = mv.tensor(data, requires_grad=True)
    x.prod(dim=1).sum().backward()
    xt = torch.tensor(data, requires_grad=True)
    xt.prod(dim=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


def test_norm_second_derivative_at_zero():
    x = mv.zeros(3, dtype=mv.float64, requires_grad=True)
    (g,) = mv.autograd.grad(x.norm(), x, create_graph=True)
    (h,) = mv.autograd.grad((g * mv.tensor([1.0, 2.0, 3.0], dtype=mv.float64)).sum(), x)
    np.testing.assert_array_equal(g.detach().numpy(), np.zeros(3))
    np.testing.assert_array_equal(h.numpy(), np.zeros(3))


def test_second_derivative_of_zero_to_the_w():
    w = mv.tensor([0.5, 2.0], dtype=mv.float64, requires_grad=True)
    (g,) = mv.autograd.grad((mv.zeros(2, dtype=mv.float64) ** w).sum(), w, create_graph=True)
    (h,) = mv.autograd.grad(g.sum(), w)
    np.testing.assert_array_equal(h.numpy(), [0.0, 0.0])


def test_cross_entropy_weight_with_label_smoothing_is_refused():
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(mv.zeros(2, 3), mv.tensor([0, 1]), weight=mv.ones(3), label_smoothing=0.1)


def test_data_is_the_array():
    x = mv.zeros(2)
    assert isinstance(x.data, np.ndarray)


def test_repr_shows_the_dtype():
    assert repr(mv.tensor([1.0, 2.0])) == "tensor([1., 2.], dtype=float32)"


def test_numpy_aliases():
    x = mv.arange(6.0).view(2, 3)
    np.testing.assert_array_equal(x.sum(axis=1, keepdims=True).numpy(), x.sum(dim=1, keepdim=True).numpy())
    assert x.astype(np.float64).dtype == x.to(mv.float64).dtype == np.float64
