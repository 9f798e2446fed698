"""Folder locks and stale temporary files: the file-system side of "a run is never lost".

Two processes must not write one folder (a run folder, a data set's download folder) at the same time, and
a process killed mid-write (SIGKILL, power loss) leaves its temporary file behind, since no ``finally``
runs. :class:`FolderLock` holds an exclusive ``fcntl.flock`` on a lock file in the folder (the kernel drops
it when the holder dies, however it dies, so a lock is never stale) and writes the holder's PID into it, so
a refusal can name the process. While the lock is held no other minivae process writes the folder, so every
temporary file matching the folder's patterns is a leftover and :func:`remove_stale` may delete it.

Plain standard library; nothing here imports the rest of minivae (the data layer and the app layer use it).
POSIX only (``fcntl``).
"""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path


class FolderInUseError(OSError):
    """Another process holds the folder's lock. ``pid`` is its process id (None when it could not be read)."""

    def __init__(self, folder, pid):
        self.folder, self.pid = Path(folder), pid
        who = f"process {pid}" if pid else "another process"
        super().__init__(errno.EBUSY, f"{folder} is in use by {who}")


class FolderLock:
    """Exclusive lock on ``folder`` (created if missing) through ``folder/name``, which then holds the PID of
    the holder; ``name=None`` locks the folder itself (opened read-only: no file is added, no PID kept).

    ``acquire(wait=False)`` raises :class:`FolderInUseError` (naming the holder's PID) when another process
    holds it; ``wait=True`` blocks until it is free. ``OSError`` from creating the folder or the lock file
    (read-only file system, permission denied; ``ELOOP`` when the lock file is a symbolic link, which is never
    followed) propagates. Usable as a context manager (no waiting).
    """

    def __init__(self, folder, name: str | None = ".lock"):
        self.folder = Path(folder)
        self.path = self.folder / name if name else None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self, wait: bool = False) -> FolderLock:
        """Take the lock (raises when another process holds it, naming that process)."""
        if self._fd is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.path is None:
            fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            # O_NOFOLLOW: a lock file that is a symbolic link is refused (ELOOP), never followed: its target,
            # or the file a dangling link names, would be truncated or created
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise FolderInUseError(self.folder, self.path and holder_pid(self.path)) from None
            if self.path is not None:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the lock file stays: unlinking it would race with a process about to lock it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            if self.path is not None:
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder_pid(lock_path) -> int | None:
    """The PID written in a lock file, or None (empty, unreadable, or not a number)."""
    try:
        text = Path(lock_path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def remove_stale(folder, patterns) -> list[Path]:
    """Delete the files in ``folder`` matching any glob pattern of ``patterns`` (not recursive); returns
    them. Call only while holding the folder's :class:`FolderLock`: then no live writer owns them."""
    removed = []
    folder = Path(folder)
    for pattern in patterns:
        for path in sorted(folder.glob(pattern)):
            try:
                if path.is_file():
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:
                pass
    return removed
