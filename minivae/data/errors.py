"""Exceptions raised by :mod:`minivae.data`.

* :class:`DataFileError` (a :class:`ValueError`): a file exists but is corrupt, truncated, in the
  wrong format or fails its checksum. The message names the file and what is wrong.
* :class:`DatasetNotFoundError` (a :class:`FileNotFoundError`): a dataset's files are nowhere to be
  found. The message lists every place searched and how to get the data.
* :class:`DownloadError` (a :class:`RuntimeError`): a download failed (HTTP error, time-out,
  connection error, truncated body).
* :class:`ChecksumError` (a :class:`DownloadError`): a downloaded file does not match its checksum;
  the message says what was expected and what was got.
"""
from __future__ import annotations

import os
from typing import Iterable


class DataFileError(ValueError):
    """A data file is corrupt, truncated, of the wrong format, or fails its checksum."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files were not found in any of the searched places.

    Attributes: ``dataset`` (the name), ``searched`` (the folders looked in, in order),
    ``missing`` (the file names that could not be found).
    """

    def __init__(self, dataset: str, searched: Iterable[os.PathLike | str], missing: Iterable[str] = (),
                 hint: str = ""):
        self.dataset = dataset
        self.searched = [str(p) for p in searched]
        self.missing = list(missing)
        lines = [f"dataset {dataset!r} not found"
                 + (f" (missing: {', '.join(self.missing)})" if self.missing else "")
                 + "; looked in:"]
        lines += [f"  - {p}" for p in self.searched] or ["  (nowhere)"]
        lines.append("To get it:")
        lines.append(f"  - download it: `minivae data fetch {dataset}` (needs internet access)")
        lines.append("  - or put the IDX files (.gz or decompressed) in a folder and pass `--data-dir FOLDER`"
                     " (data_dir=FOLDER in Python) or set $MINIVAE_DATA=FOLDER")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))

    def __str__(self) -> str:  # FileNotFoundError's __str__ would show errno formatting otherwise
        return self.args[0]


class DownloadError(RuntimeError):
    """A download failed: HTTP error, time-out, connection error or truncated response."""


class ChecksumError(DownloadError):
    """A downloaded file does not match any recorded checksum (message: expected and got)."""

    def __init__(self, what: str, expected: str, got: str):
        self.expected = expected
        self.got = got
        super().__init__(f"checksum mismatch for {what}: expected {expected}; got {got}")
