"""IDX reading and writing: round trips and every kind of broken file."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from minivae.data import DataFileError, read_idx, write_idx
from minivae.data.idx import IDX_DTYPES


@pytest.mark.parametrize("code", sorted(IDX_DTYPES))
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_each_dtype(tmp_path, code, compress):
    dtype = IDX_DTYPES[code]
    rng = np.random.default_rng(code)
    if dtype.kind == "f":
        arr = rng.normal(size=(3, 4, 5)).astype(dtype.newbyteorder("="))
    else:
        info = np.iinfo(dtype)
        arr = rng.integers(info.min, info.max, size=(3, 4, 5), endpoint=True).astype(dtype.newbyteorder("="))
    path = tmp_path / "a.idx"
    write_idx(path, arr, gzip=compress)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == compress
    content = gzip.decompress(raw) if compress else raw
    assert content[:4] == bytes([0, 0, code, 3])
    assert struct.unpack(">3I", content[4:16]) == (3, 4, 5)
    out = read_idx(path)
    assert out.dtype == arr.dtype and out.dtype.isnative
    assert out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 0  # writable


def test_big_endian_on_disk(tmp_path):
    path = tmp_path / "x"
    write_idx(path, np.array([1, 258], dtype=np.int32))
    assert path.read_bytes()[8:] == b"\x00\x00\x00\x01\x00\x00\x01\x02"


def test_gzip_detected_by_magic_not_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "compressed.idx", arr, gzip=True)
    write_idx(tmp_path / "plain.gz", arr, gzip=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed.idx"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), arr)


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="cannot be stored"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))


def _header(code=0x08, dims=(2, 3)):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("content, pattern", [
    (b"\x01\x00\x08\x02" + struct.pack(">2I", 2, 3) + bytes(6), "bad magic"),
    (_header(code=0x0A) + bytes(6), "dtype code 0x0A"),
    (_header() + bytes(5), "truncated: expected 6 bytes of data for shape (2, 3), found 5"),
    (_header() + bytes(8), "2 trailing bytes"),
    (_header(dims=(2, 3, 4))[:10], "truncated header"),
    (b"\x00\x00", "only 2 bytes"),
], ids=["magic", "dtype", "truncated", "trailing", "short-header", "tiny"])
def test_broken_files(tmp_path, content, pattern, compress):
    path = tmp_path / "broken-file-name.idx"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(DataFileError) as info:
        read_idx(path)
    msg = str(info.value)
    assert "broken-file-name.idx" in msg
    assert pattern in msg


def test_gzip_cut_in_half(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    path = tmp_path / "half-file.gz"
    write_idx(path, arr, gzip=True)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFileError, match="half-file.gz.*truncated"):
        read_idx(path)


def test_gzip_corrupt_body(tmp_path):
    arr = np.arange(1000, dtype=np.uint8)
    path = tmp_path / "corrupt-file.gz"
    write_idx(path, arr, gzip=True)
    raw = bytearray(path.read_bytes())
    raw[12:20] = b"\xff" * 8
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match="corrupt-file.gz"):
        read_idx(path)
