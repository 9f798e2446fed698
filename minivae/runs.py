"""Run folders (``train --out DIR``): never overwritten by accident, never written by two processes.

:func:`open_run_folder` is what :func:`minivae.train.fit` calls before anything else:

* it takes the folder's lock (``DIR/.lock``, see :class:`minivae.data.folders.FolderLock`); a second process is
  refused with a message naming the PID of the one training there;
* it deletes the temporary files (``.checkpoint.npz.*.tmp``, ``.metrics.json.*.tmp``) that a run killed
  during a write left behind;
* it refuses a folder that already holds a run (a ``checkpoint.npz`` or ``metrics.json``) unless the run is
  being resumed from that folder or ``overwrite`` is set, and says which flag to use; ``--resume DIR
  --overwrite`` on the same folder is refused (it would delete what it continues);
* a lock file that is a symbolic link is refused, never followed.
"""
from __future__ import annotations

import errno
from pathlib import Path

from minivae.data.folders import FolderInUseError, FolderLock, remove_stale

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.json"
LOCK = ".lock"
#: temporary files of :func:`minivae.checkpoint.atomic_write` (``.NAME.RANDOM.tmp``)
TEMP_PATTERNS = (".*.tmp",)


class RunFolderError(ValueError):
    """``--out`` cannot be used: it holds another run, another process trains there, or it is not writable."""


def holds_run(folder) -> bool:
    """Whether ``folder`` holds (part of) a run: its checkpoint or its metrics."""
    folder = Path(folder)
    return (folder / CHECKPOINT).exists() or (folder / METRICS).exists()


def _same_folder(a, b) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def open_run_folder(out, resume=None, overwrite: bool = False) -> FolderLock:
    """Lock the run folder ``out`` (created if missing), clean its stale temporary files and check it may
    be written. Returns the held lock; the caller releases it (``lock.release()``) when the run ends.

    Nothing is deleted here: with ``overwrite`` the caller calls :func:`clear_run` once everything the run
    needs (data, model, the checkpoint it resumes) has loaded, so a run that cannot start leaves the old one.

    Args:
        out: the run folder (``--out``).
        resume: the folder (or checkpoint file) the run continues, if any: ``out`` may then hold that run.
        overwrite: replace a run already in ``out``.
    Raises:
        RunFolderError: ``resume`` and ``overwrite`` together on the same folder (the run would delete what
            it continues), another process holds the folder (named by PID), its lock file is a symbolic link
            or cannot be opened, it holds a run and neither ``resume`` (from it) nor ``overwrite`` was given,
            or it cannot be created.
    """
    out = Path(out)
    src = Path(resume) if resume is not None else None
    resuming_here = src is not None and _same_folder(src if src.is_dir() else src.parent, out)
    if resuming_here and overwrite:
        raise RunFolderError(f"--resume {resume} with --overwrite: --overwrite would delete the run that --resume "
                             f"continues; drop --overwrite to continue it, or drop --resume to replace it")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunFolderError(f"--out {out} is not writable: {err.strerror or err}; choose another --out "
                             f"folder") from None
    lock = FolderLock(out, LOCK)
    try:
        lock.acquire()
    except FolderInUseError as err:
        who = f"process {err.pid}" if err.pid else "another process"
        raise RunFolderError(f"--out {out} is in use by {who} (another minivae train); wait for it to end "
                             f"or choose another --out") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise RunFolderError(f"--out {out}: its lock file {out / LOCK} is a symbolic link, which minivae "
                                 f"does not follow; delete the link or choose another --out") from None
        raise RunFolderError(f"--out {out}: cannot open its lock file {out / LOCK}: {err.strerror or err}; "
                             f"delete it or choose another --out") from None
    try:
        remove_stale(out, TEMP_PATTERNS)
        if holds_run(out) and not overwrite and not resuming_here:
            raise RunFolderError(f"--out {out} already holds a run; continue it with --resume {out}, or "
                                 f"replace it with --overwrite (or choose another --out)")
    except BaseException:
        lock.release()
        raise
    return lock


def clear_run(out) -> None:
    """Delete the run saved in ``out`` (its checkpoint and metrics), for ``--overwrite``; call while holding
    the folder's lock, once the new run has everything it needs to start."""
    for name in (CHECKPOINT, METRICS):
        (Path(out) / name).unlink(missing_ok=True)
