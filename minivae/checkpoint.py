"""Checkpoints: model parameters, optimizer state and run metadata in one ``.npz`` file, written atomically.

A checkpoint is written to a temporary file in the same folder, flushed and fsync'ed, then moved over the
old one with ``os.replace`` (atomic on POSIX and Windows): a crash mid-write leaves the previous checkpoint
intact, never a half-written file.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not match the model/config it is loaded into."""


def atomic_write(path, write) -> Path:
    """Call ``write(file_object)`` on a temporary file beside ``path``, fsync it, then ``os.replace`` it.

    The temporary file is removed if ``write`` raises. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would make the run unreadable to the group
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - not all platforms allow fsync on a directory
        pass
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def save_checkpoint(path, model, optimizer=None, meta: dict | None = None) -> Path:
    """Write ``model.state_dict()``, ``optimizer.state_dict()`` and the JSON-serialisable ``meta`` to ``path``.

    Layout inside the npz: ``model/<param name>``, ``optim/<i>/<state name>``, and ``meta`` (a JSON string
    holding ``meta`` plus the optimizer's hyper-parameters and step count).
    """
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    info = {"meta": meta or {}, "optimizer": None}
    if optimizer is not None:
        st = optimizer.state_dict()
        for i, per_param in enumerate(st["state"]):
            for k, v in per_param.items():
                arrays[f"optim/{i}/{k}"] = v
        info["optimizer"] = {"type": type(optimizer).__name__, "hyper": st["hyper"], "step_count": st["step_count"],
                             "num_params": len(st["state"])}
    arrays["meta"] = np.array(json.dumps(info))
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path) -> dict:
    """Read a checkpoint: ``{"model": {name: array}, "optimizer": state_dict or None, "meta": dict}``.

    Raises:
        CheckpointError: the file is missing, truncated, not an npz, lacks the metadata, or its arrays do not
            match its metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: {err}") from None
    if "meta" not in data:
        raise CheckpointError(f"checkpoint {path} has no metadata: not written by minivae")
    try:
        return _unpack(data)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise CheckpointError(f"checkpoint {path} is inconsistent (its arrays do not match its metadata): "
                              f"{type(err).__name__}: {err}") from None


def _unpack(data: dict) -> dict:
    info = json.loads(str(data["meta"]))
    model = {k[len("model/"):]: v for k, v in data.items() if k.startswith("model/")}
    optim = None
    if info.get("optimizer"):
        o = info["optimizer"]
        state = [{} for _ in range(int(o["num_params"]))]
        for k, v in data.items():
            if k.startswith("optim/"):
                _, i, name = k.split("/", 2)
                if not 0 <= int(i) < len(state):
                    raise IndexError(f"optimizer array {k!r} but the metadata counts {len(state)} parameters")
                state[int(i)][name] = v
        hyper = o["hyper"]
        if "betas" in hyper:
            hyper["betas"] = tuple(hyper["betas"])
        optim = {"type": o["type"], "hyper": hyper, "step_count": o["step_count"], "state": state}
    return {"model": model, "optimizer": optim, "meta": info["meta"]}
