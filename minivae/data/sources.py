"""Finding a dataset's files on disk and verifying their checksums.

Search order (:func:`search_dirs`): an explicit ``data_dir`` and ``data_dir/NAME``; ``$MINIVAE_DATA``
and ``$MINIVAE_DATA/NAME``; the cache ``($XDG_CACHE_HOME or ~/.cache)/minivae/NAME``; then the
dataset's system folders (e.g. ``/usr/share/datasets/fashion-mnist``).  In each folder a file may be
present gzip-compressed (``train-images-idx3-ubyte.gz``) or decompressed (``train-images-idx3-ubyte``).
"""
from __future__ import annotations

import hashlib
import os
import pathlib
from dataclasses import dataclass
from typing import Iterable, Sequence

from .errors import DataFileError, DatasetNotFoundError
from .idx import decompress, is_gzip
from .registry import Checksum, DatasetInfo, get_info

__all__ = ["cache_dir", "search_dirs", "find_file", "locate", "verify_file", "check_bytes",
           "Verification", "clear_verification_cache"]

PathLike = str | os.PathLike


def cache_dir() -> pathlib.Path:
    """The download cache: ``$XDG_CACHE_HOME/minivae`` if set, else ``~/.cache/minivae``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "minivae"


def search_dirs(name: str | DatasetInfo, data_dir: PathLike | None = None) -> list[pathlib.Path]:
    """The folders searched for dataset ``name``, in order, without duplicates (existing or not)."""
    info = get_info(name)
    dirs: list[pathlib.Path] = []
    if data_dir is not None:
        d = pathlib.Path(data_dir).expanduser()
        dirs += [d, d / info.name]
    env = os.environ.get("MINIVAE_DATA")
    if env:
        d = pathlib.Path(env).expanduser()
        dirs += [d, d / info.name]
    dirs.append(cache_dir() / info.name)
    dirs += [pathlib.Path(p) for p in info.system_dirs]
    out: list[pathlib.Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def find_file(filename: str, dirs: Iterable[PathLike]) -> pathlib.Path | None:
    """The first existing ``DIR/filename`` or ``DIR/filename-without-.gz`` in ``dirs``, else None."""
    names = [filename] + ([filename[:-3]] if filename.endswith(".gz") else [])
    for d in dirs:
        for n in names:
            p = pathlib.Path(d) / n
            if p.is_file():
                return p
    return None


@dataclass(frozen=True)
class Verification:
    """Result of a checksum check: ``ok``; ``checked`` false when no recorded checksum applied to
    the file's form (then ``ok`` is true); ``expected`` and ``got`` as text for messages."""

    ok: bool
    checked: bool
    expected: str
    got: str


def _applicable(checksums: Sequence[Checksum], gz: bool) -> list[Checksum]:
    return [c for c in checksums if c.of == "decompressed" or (gz and c.of == "file")]


def check_bytes(raw: bytes, checksums: Sequence[Checksum], name: str = "<bytes>",
                content: bytes | None = None) -> Verification:
    """Check ``raw`` (the bytes of a file, gzip or not) against ``checksums``.

    ``of="file"`` checksums apply only to gzip files; ``of="decompressed"`` ones to the decompressed
    content (the raw bytes themselves when not gzip).  Passes when any applicable checksum matches.
    ``content`` may pass the already-decompressed bytes to save work.  A gzip stream that cannot be
    decompressed counts as a mismatch for the decompressed checksums.
    """
    gz = is_gzip(raw)
    sums = _applicable(checksums, gz)
    if not sums:
        return Verification(True, False, "", "")
    got: dict[tuple[str, str], str] = {}
    for c in sums:
        key = (c.algorithm, c.of)
        if key not in got:
            if c.of == "file":
                got[key] = hashlib.new(c.algorithm, raw).hexdigest()
            else:
                if content is None:
                    try:
                        content = decompress(raw, name) if gz else raw
                    except DataFileError as err:
                        got[key] = f"<undecodable: {err}>"
                        continue
                got[key] = hashlib.new(c.algorithm, content).hexdigest()
        if got[key] == c.hexdigest:
            return Verification(True, True, str(c), f"{c.algorithm}:{got[key]}")
    expected = " or ".join(str(c) for c in sums)
    got_text = ", ".join(f"{alg}:{h} (of the {'decompressed content' if of == 'decompressed' else '.gz file'})"
                         for (alg, of), h in got.items())
    return Verification(False, True, expected, got_text)


# (realpath, size, mtime_ns, checksums) -> Verification, so repeated loads do not re-hash.
_VERIFIED: dict[tuple, Verification] = {}


def clear_verification_cache() -> None:
    """Forget the per-process record of verified files."""
    _VERIFIED.clear()


def _cache_key(path: pathlib.Path, checksums: Sequence[Checksum]) -> tuple:
    st = path.stat()
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns, tuple(checksums))


def verify_file(path: PathLike, checksums: Sequence[Checksum], raw: bytes | None = None,
                content: bytes | None = None) -> Verification:
    """Verify a local file against ``checksums``; raise :class:`DataFileError` (naming the file,
    expected and got) on mismatch.  Results are remembered per (path, size, mtime) in this process.
    ``raw``/``content`` may pass the file's bytes already read."""
    path = pathlib.Path(path)
    key = _cache_key(path, checksums)
    v = _VERIFIED.get(key)
    if v is None:
        if raw is None:
            raw = path.read_bytes()
        v = check_bytes(raw, checksums, str(path), content)
        if v.ok:
            _VERIFIED[key] = v
    if not v.ok:
        raise DataFileError(f"{path}: checksum mismatch (corrupt or wrong file): expected {v.expected}; "
                            f"got {v.got}. Delete it and fetch the data again.")
    return v


def is_verified(path: PathLike, checksums: Sequence[Checksum]) -> bool:
    """True when ``path`` (unchanged) was already verified in this process."""
    try:
        return _cache_key(pathlib.Path(path), checksums) in _VERIFIED
    except OSError:
        return False


def locate(name: str | DatasetInfo, split: str, data_dir: PathLike | None = None,
           verify: bool = True) -> tuple[pathlib.Path, pathlib.Path]:
    """Find ``(images_path, labels_path)`` of a split, each from the first folder holding it.

    With ``verify`` each file is checksum-verified (:func:`verify_file`).  Raises
    :class:`DatasetNotFoundError` listing the searched folders when a file is missing,
    :class:`DataFileError` when a found file fails its checksum, :class:`ValueError` for an unknown
    dataset or split.
    """
    info = get_info(name)
    dirs = search_dirs(info, data_dir)
    found, missing = [], []
    for fname in info.filenames(split):
        p = find_file(fname, dirs)
        (found if p is not None else missing).append(p if p is not None else fname)
    if missing:
        raise DatasetNotFoundError(info.name, dirs, missing, info.install_hint)
    if verify:
        for p, fname in zip(found, info.filenames(split)):
            verify_file(p, info.checksums_for(fname))
    return found[0], found[1]
