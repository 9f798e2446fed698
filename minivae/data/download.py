"""Downloading dataset files from their public mirrors, safely.

A download goes to a temporary file in the destination folder, is checked against the recorded
checksums and only then renamed (:func:`os.replace`) to its final name, so no partial or corrupt
file is ever left in the cache.
"""
from __future__ import annotations

import http.client
import os
import pathlib
import socket
import tempfile
import urllib.error
import urllib.request
from typing import Sequence

from tqdm import tqdm

from minivae.data.folders import FolderLock, remove_stale

from .errors import ChecksumError, DataFileError, DownloadError
from .registry import Checksum, DatasetInfo, get_info
from .sources import cache_dir, check_bytes, find_file, search_dirs, verify_file

__all__ = ["download", "fetch", "mirrors_for", "target_dir"]

PathLike = str | os.PathLike
_CHUNK = 1 << 16


def _is_timeout(err: BaseException) -> bool:
    return isinstance(err, (TimeoutError, socket.timeout)) or (
        isinstance(err, urllib.error.URLError) and isinstance(err.reason, (TimeoutError, socket.timeout)))


def download(url: str, dest: PathLike, checksums: Sequence[Checksum] = (), timeout: float = 30,
             progress: bool = True) -> pathlib.Path:
    """Download ``url`` to ``dest`` (created atomically), verified against ``checksums``.

    Raises :class:`DownloadError` for an HTTP error (message: status and URL), a time-out, a
    connection error or a body shorter than its Content-Length ("truncated"); :class:`ChecksumError`
    (expected and got) when no applicable checksum matches.  The temporary file is always removed
    on failure; ``dest`` is untouched unless the download succeeded.  Returns ``dest`` as a Path.
    """
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = pathlib.Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "minivae"})
                with urllib.request.urlopen(request, timeout=timeout) as resp:
                    length = resp.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    got = 0
                    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                              desc=dest.name, disable=not progress, leave=False) as bar:
                        while True:
                            try:
                                chunk = resp.read(_CHUNK)
                            except http.client.IncompleteRead as err:
                                out.write(err.partial)
                                got += len(err.partial)
                                break
                            if not chunk:
                                break
                            out.write(chunk)
                            got += len(chunk)
                            bar.update(len(chunk))
            except urllib.error.HTTPError as err:
                raise DownloadError(f"HTTP {err.code} {err.reason} for {url}") from None
            except Exception as err:  # noqa: BLE001 - translate every transport failure
                if _is_timeout(err):
                    raise DownloadError(f"timed out after {timeout:g} s downloading {url}") from None
                if isinstance(err, urllib.error.URLError):
                    raise DownloadError(f"could not connect to {url}: {err.reason}") from None
                if isinstance(err, (OSError, http.client.HTTPException, ValueError)):
                    raise DownloadError(f"connection error downloading {url}: {err!r}") from None
                raise
        if total is not None and got != total:
            raise DownloadError(f"truncated download from {url}: the server announced {total} bytes "
                                f"(Content-Length) but sent {got}")
        raw = tmp.read_bytes()
        v = check_bytes(raw, checksums, url)
        if not v.ok:
            raise ChecksumError(url, v.expected, v.got)
        os.replace(tmp, dest)
        return dest
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass


def mirrors_for(name: str | DatasetInfo, mirrors: Sequence[str] | str | None = None) -> list[str]:
    """Mirror base URLs to try: ``mirrors`` if given (a list or a comma/space separated string),
    else ``$MINIVAE_MIRROR`` (same format) if set, else the registry's.  Each ends with ``/``."""
    info = get_info(name)
    if mirrors is None:
        mirrors = os.environ.get("MINIVAE_MIRROR") or None
    if mirrors is None:
        mirrors = info.mirrors
    if isinstance(mirrors, str):
        mirrors = mirrors.replace(",", " ").split()
    return [m if m.endswith("/") else m + "/" for m in mirrors]


def target_dir(name: str | DatasetInfo, data_dir: PathLike | None = None) -> pathlib.Path:
    """Where :func:`fetch` saves downloads: ``data_dir/NAME``, else ``$MINIVAE_DATA/NAME``, else the
    cache ``.../minivae/NAME``."""
    info = get_info(name)
    base = data_dir if data_dir is not None else os.environ.get("MINIVAE_DATA") or None
    return (pathlib.Path(base).expanduser() / info.name) if base is not None else cache_dir() / info.name


def fetch(name: str | DatasetInfo, data_dir: PathLike | None = None,
          splits: Sequence[str] = ("train", "test"), mirrors: Sequence[str] | str | None = None,
          timeout: float = 30, progress: bool = True) -> dict[str, tuple[pathlib.Path, pathlib.Path]]:
    """Make a dataset's files available locally; return ``{split: (images_path, labels_path)}``.

    Each file is taken from the local search folders when present and valid (see
    :func:`minivae.data.sources.search_dirs`); otherwise it is downloaded into :func:`target_dir`
    from each mirror in turn (:func:`mirrors_for`) until one succeeds.  Raises
    :class:`DownloadError` listing every mirror's error when all fail (:class:`ChecksumError` if
    every failure was a checksum mismatch); :class:`DataFileError` when a local copy outside the
    download folder fails its checksum (it is reported, not silently shadowed); :class:`ValueError`
    for an unknown dataset or split.

    Downloads into a folder happen under a lock on it (``flock`` on the folder itself): a second ``fetch`` into the same
    folder waits for the first. Once the lock is held, ``.*.part`` files left by killed downloads are
    deleted.
    """
    info = get_info(name)
    if isinstance(splits, str):
        splits = (splits,)
    dest_dir = target_dir(info, data_dir)
    dirs = search_dirs(info, data_dir)
    urls = mirrors_for(info, mirrors)
    lock = FolderLock(dest_dir, None)
    if dest_dir.is_dir():
        try:
            _lock_and_clean(lock)
        except OSError:  # a read-only folder: nothing to clean, and nothing will be downloaded into it
            pass
    try:
        return _fetch(info, splits, dest_dir, dirs, urls, timeout, progress, lock)
    finally:
        lock.release()


def _lock_and_clean(lock: FolderLock) -> None:
    """Hold the download folder's lock (waiting for another fetch into it to finish), then delete the
    ``.part`` files downloads killed before their ``finally`` ran left there."""
    if not lock.held:
        lock.acquire(wait=True)
        remove_stale(lock.folder, (".*.part",))


def _fetch(info, splits, dest_dir, dirs, urls, timeout, progress, lock):
    result: dict[str, tuple[pathlib.Path, pathlib.Path]] = {}
    for split in splits:
        paths = []
        for fname in info.filenames(split):
            sums = info.checksums_for(fname)
            local = find_file(fname, dirs)
            if local is not None:
                try:
                    verify_file(local, sums)
                    paths.append(local)
                    continue
                except DataFileError:
                    if local.parent != dest_dir:
                        raise  # someone else's file: report it rather than shadow it
                    # a bad file in our own download folder is replaced below
            errors: list[tuple[str, DownloadError]] = []
            _lock_and_clean(lock)
            for base in urls:
                try:
                    paths.append(download(base + fname, dest_dir / fname, sums, timeout, progress))
                    break
                except DownloadError as err:
                    errors.append((base + fname, err))
            else:
                lines = "\n".join(f"  - {u}: {e}" for u, e in errors) or "  (no mirrors configured)"
                msg = (f"could not download {fname} of dataset {info.name!r} from any mirror:\n{lines}\n"
                       f"Alternatively place the files in {dest_dir} or pass --data-dir.")
                if errors and all(isinstance(e, ChecksumError) for _, e in errors):
                    err = ChecksumError(fname, errors[-1][1].expected, errors[-1][1].got)
                    err.args = (msg,)
                    raise err
                raise DownloadError(msg)
            if local is not None and local.parent == dest_dir and local != paths[-1]:
                local.unlink(missing_ok=True)  # the bad decompressed copy would shadow nothing, but tidy up
        result[split] = (paths[0], paths[1])
    return result
