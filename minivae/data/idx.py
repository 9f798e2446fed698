"""Reading and writing IDX files (the MNIST file format), raw or gzip-compressed.

An IDX file is: two zero bytes, a dtype code, the number of dimensions ``ndim``, then ``ndim``
big-endian uint32 sizes, then the data in C order, big-endian.  Compression is detected from the
gzip magic bytes (``1f 8b``), not from the file name.
"""
from __future__ import annotations

import gzip as _gzip
import os
import struct
import zlib

import numpy as np

from .errors import DataFileError

__all__ = ["read_idx", "write_idx", "parse_idx", "read_maybe_gzip", "IDX_DTYPES"]

#: IDX dtype code -> NumPy dtype (big-endian as stored in the file).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(data: bytes) -> bool:
    """True when ``data`` starts with the gzip magic bytes."""
    return data[:2] == _GZIP_MAGIC


def decompress(data: bytes, name: str) -> bytes:
    """Decompress a gzip stream; a cut-off or corrupt stream raises :class:`DataFileError`."""
    try:
        return _gzip.decompress(data)
    except EOFError as err:
        raise DataFileError(f"{name}: gzip stream is truncated (cut off before its end): {err}") from None
    except (OSError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise DataFileError(f"{name}: corrupt gzip stream: {err}") from None


def read_maybe_gzip(path: str | os.PathLike) -> tuple[bytes, bytes]:
    """Return ``(raw_bytes, content_bytes)`` of a file; content is decompressed if it is gzip.

    Raises :class:`DataFileError` for a corrupt gzip stream and :class:`FileNotFoundError` /
    :class:`OSError` if the file cannot be read.
    """
    name = os.fspath(path)
    with open(name, "rb") as f:
        raw = f.read()
    return raw, (decompress(raw, name) if is_gzip(raw) else raw)


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the (decompressed) bytes of an IDX file into a native-endian, writable array.

    ``name`` is used in error messages.  Raises :class:`DataFileError` for a bad magic number, an
    unknown dtype code, a header that is cut short, or a data length that differs from what the
    dimensions imply (truncated or trailing bytes).
    """
    if len(data) < 4:
        raise DataFileError(f"{name}: not an IDX file: only {len(data)} bytes, the header needs at least 4")
    if data[0] != 0 or data[1] != 0:
        raise DataFileError(f"{name}: not an IDX file: bad magic number {data[:4].hex()} "
                            "(the first two bytes must be zero)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataFileError(f"{name}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise DataFileError(f"{name}: IDX header says 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFileError(f"{name}: truncated header: {ndim} dimensions need {header} bytes, found {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise DataFileError(f"{name}: truncated: expected {expected} bytes of data for shape {shape}, found {found}")
    if found > expected:
        raise DataFileError(f"{name}: {found - expected} trailing bytes after the data: expected {expected} bytes "
                            f"of data for shape {shape}, found {found}")
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip or raw, detected from its first bytes) into a NumPy array.

    Returns a native-endian, writable array of the file's dtype (``uint8`` for MNIST images, shape
    ``(N, 28, 28)``; labels shape ``(N,)``).
    Raises :class:`DataFileError` (message names the file) for a corrupt/cut-off gzip stream, bad
    magic, unknown dtype code, truncated data or trailing bytes; :class:`FileNotFoundError` if absent.
    """
    _, content = read_maybe_gzip(path)
    return parse_idx(content, os.fspath(path))


def write_idx(path: str | os.PathLike, array: np.ndarray, gzip: bool = False) -> None:
    """Write ``array`` as an IDX file (big-endian), gzip-compressed when ``gzip`` is true.

    The array's dtype must be one of uint8, int8, int16, int32, float32, float64; raises
    :class:`ValueError` otherwise or for a 0-d array or a dimension >= 2**32.
    """
    array = np.asarray(array)
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {array.ndim}")
    if any(s >= 2 ** 32 for s in array.shape):
        raise ValueError(f"IDX dimensions must be < 2**32, got {array.shape}")
    for code, dtype in IDX_DTYPES.items():
        if array.dtype.kind == dtype.kind and array.dtype.itemsize == dtype.itemsize:
            break
    else:
        raise ValueError(f"dtype {array.dtype} cannot be stored in IDX "
                         "(use uint8, int8, int16, int32, float32 or float64)")
    payload = (bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
               + np.ascontiguousarray(array, dtype=dtype).tobytes())
    if gzip:
        payload = _gzip.compress(payload, mtime=0)
    with open(path, "wb") as f:
        f.write(payload)
