"""``np.asarray(tensor)`` gives the tensor's array (PyTorch's tensors convert too); a GPU tensor refuses clearly."""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv


def test_asarray_gives_the_data_without_a_copy():
    t = mv.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    a = np.asarray(t)
    assert a is t.data and a.dtype == np.float64
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(np.array(t), t.data)
    assert np.array(t) is not t.data  # np.array copies, as for any array-like


def test_asarray_of_a_gpu_tensor_says_how_to_copy_it(monkeypatch):
    t = mv.Tensor(np.ones(2))
    monkeypatch.setattr(type(t), "device", property(lambda self: "gpu"))
    with pytest.raises(TypeError, match=r"can't convert a GPU tensor to a NumPy array: use t.numpy\(\)"):
        np.asarray(t)
