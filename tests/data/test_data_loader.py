"""DataLoader and transforms."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from minivae.data import DataLoader, binarize, binarize_stochastic, one_hot, to_float


def _epoch(loader):
    return [tuple(a.copy() for a in batch) for batch in loader]


def _order(loader):
    return np.concatenate([b[0] for b in loader])


def test_batches_cover_every_index_once():
    x = np.arange(103)
    y = x * 10
    loader = DataLoader(x, y, batch_size=10, seed=3)
    assert len(loader) == 11
    for _ in range(3):
        batches = list(loader)
        assert len(batches) == 11
        assert [len(b[0]) for b in batches] == [10] * 10 + [3]
        seen = np.concatenate([b[0] for b in batches])
        assert sorted(seen.tolist()) == list(range(103))
        for bx, by in batches:
            np.testing.assert_array_equal(by, bx * 10)  # arrays stay aligned
    assert loader.epoch == 3


def test_shuffles_differ_between_epochs_and_are_deterministic_per_seed():
    x = np.arange(100)
    a, b, c = (DataLoader(x, batch_size=16, seed=s) for s in (7, 7, 8))
    ea = [_order(a) for _ in range(3)]
    eb = [_order(b) for _ in range(3)]
    ec = _order(c)
    for u, v in zip(ea, eb):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(ea[0], ea[1])
    assert not np.array_equal(ea[0], ec)
    assert not np.array_equal(ea[0], x)


def test_no_shuffle_is_in_order():
    x = np.arange(25).reshape(25, 1)
    batches = list(DataLoader(x, batch_size=10, shuffle=False))
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    assert isinstance(batches[0], tuple) and len(batches[0]) == 1


def test_drop_last():
    loader = DataLoader(np.arange(103), batch_size=10, drop_last=True)
    assert len(loader) == 10
    batches = list(loader)
    assert len(batches) == 10 and all(len(b[0]) == 10 for b in batches)
    assert len(DataLoader(np.arange(5), batch_size=10, drop_last=True)) == 0
    assert list(DataLoader(np.arange(5), batch_size=10, drop_last=True)) == []


def test_invalid_arguments():
    with pytest.raises(ValueError, match="same length"):
        DataLoader(np.arange(10), np.arange(9), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.arange(10), batch_size=0)
    with pytest.raises(ValueError):
        DataLoader(batch_size=2)


def test_state_dict_between_epochs_resumes_same_order():
    x = np.arange(50)
    ref = DataLoader(x, batch_size=8, seed=1)
    orders = [_order(ref) for _ in range(4)]

    a = DataLoader(x, batch_size=8, seed=1)
    _order(a)
    _order(a)
    state = pickle.loads(pickle.dumps(a.state_dict()))
    b = DataLoader(x, batch_size=8, seed=999)  # a different seed: the state overrides it
    b.load_state_dict(state)
    assert b.epoch == 2
    np.testing.assert_array_equal(_order(b), orders[2])
    np.testing.assert_array_equal(_order(b), orders[3])


def test_state_dict_mid_epoch_resumes_remaining_batches():
    x = np.arange(50)
    ref = DataLoader(x, batch_size=8, seed=5)
    ref_epochs = [_epoch(ref) for _ in range(2)]

    a = DataLoader(x, batch_size=8, seed=5)
    it = iter(a)
    first = [next(it) for _ in range(3)]
    state = a.state_dict()
    assert state["batch"] == 3 and state["epoch"] == 1
    b = DataLoader(x, batch_size=8, seed=0)
    b.load_state_dict(state)
    rest = _epoch(b)
    got = [f[0] for f in first] + [r[0] for r in rest]
    assert len(got) == len(ref_epochs[0])
    for u, (v,) in zip(got, ref_epochs[0]):
        np.testing.assert_array_equal(u, v)
    for (u,), (v,) in zip(_epoch(b), ref_epochs[1]):  # and the following epoch matches too
        np.testing.assert_array_equal(u, v)


def test_load_state_dict_rejects_other_data():
    state = DataLoader(np.arange(10), batch_size=2).state_dict()
    with pytest.raises(ValueError, match="n=10"):
        DataLoader(np.arange(11), batch_size=2).load_state_dict(state)


# ---------------------------------------------------------------- transforms

def test_to_float():
    imgs = np.array([[[0, 255], [128, 51]]], dtype=np.uint8)
    x = to_float(imgs)
    assert x.dtype == np.float32 and x.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(x[0, 0], [[0, 1], [128 / 255, 0.2]], rtol=1e-6)
    assert to_float(x).shape == (1, 1, 2, 2)
    with pytest.raises(ValueError):
        to_float(np.zeros((2, 3, 4, 4), dtype=np.uint8))


def test_binarize_fixed_threshold():
    x = np.array([0.0, 0.5, 0.5001, 1.0, 0.2], dtype=np.float32)
    out = binarize(x)
    assert out.dtype == np.float32
    assert out.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
    assert binarize(x, threshold=0.1).tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]


def test_binarize_stochastic():
    x = np.full((200, 100), 0.3, dtype=np.float32)
    x[:, :10] = 0.0
    x[:, 10:20] = 1.0
    a = binarize_stochastic(x, np.random.default_rng(0))
    b = binarize_stochastic(x, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and set(np.unique(a).tolist()) <= {0.0, 1.0}
    assert a[:, :10].sum() == 0 and a[:, 10:20].min() == 1
    assert abs(a[:, 20:].mean() - 0.3) < 0.01  # 16,000 draws: sd ~0.0036
    assert not np.array_equal(a, binarize_stochastic(x, np.random.default_rng(1)))


def test_one_hot():
    out = one_hot(np.array([2, 0, 9]), 10)
    assert out.shape == (3, 10) and out.dtype == np.float32
    assert out.sum(axis=1).tolist() == [1, 1, 1]
    assert out.argmax(axis=1).tolist() == [2, 0, 9]
    assert one_hot(np.array([1]), 3, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError):
        one_hot(np.array([10]), 10)
    with pytest.raises(ValueError):
        one_hot(np.array([-1]), 10)
