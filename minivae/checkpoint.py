"""Checkpoints: model parameters, optimizer state and run metadata in one ``.npz`` file, written atomically,
read lazily and within bounds.

Writing: a checkpoint (or any file minivae writes into a run folder: metrics, figures) goes to a temporary
file in the same folder (created with ``O_EXCL``, so never through a link), flushed and fsync'ed, then moved
over the old one with ``os.replace`` (atomic on POSIX and Windows; a symbolic link at the destination is
replaced, never followed): a crash mid-write leaves the previous file intact, never a half-written one.

Reading: the ``.npz`` is opened as a zip archive and only the members that are needed are read, one at a
time, each after its ``.npy`` header was checked (a numeric dtype, the shape the model expects, the bytes
really present). With a ``model`` (and ``optimizer``), every number of the metadata is checked against them
before anything is allocated, and the archive's total array bytes may not exceed a few times what a
checkpoint of that model holds; a crafted file cannot make minivae allocate without bound.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not match the model/config it is loaded into."""


#: most bytes of the JSON metadata (a run's history of many epochs takes a few hundred KiB)
MAX_META_BYTES = 64 << 20
#: the archive's arrays may hold at most this many times the bytes of a checkpoint of the model, plus SLACK
SIZE_FACTOR = 4
SIZE_SLACK = 16 << 20
#: deflate cannot compress better than about 1032:1; a member claiming more is corrupt
MAX_DEFLATE_RATIO = 1100


def atomic_write(path, write) -> Path:
    """Call ``write(file_object)`` on a temporary file beside ``path``, fsync it, then ``os.replace`` it.

    The temporary file is created with ``O_EXCL`` (never through a link); a symbolic link at ``path`` is
    replaced by the file, its target left alone. The temporary file is removed if ``write`` raises.
    Returns ``path``.
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
        if os.path.lexists(tmp):
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


def strict_json(obj):
    """``obj`` with every NaN/inf float replaced by ``None``, so ``json.dumps(..., allow_nan=False)`` gives
    strict JSON; returns ``(clean, paths)`` where ``paths`` lists the dotted keys that were not finite."""
    bad: list[str] = []

    def walk(v, where):
        if isinstance(v, float) and not math.isfinite(v):
            bad.append(where or "(top)")
            return None
        if isinstance(v, dict):
            return {k: walk(x, f"{where}.{k}" if where else str(k)) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x, f"{where}[{i}]") for i, x in enumerate(v)]
        return v

    return walk(obj, ""), bad


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


# --------------------------------------------------------------------------- reading


def _open(path) -> zipfile.ZipFile:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: {err}") from None


def _members(zf: zipfile.ZipFile, path) -> dict:
    """``{array name: ZipInfo}``; CheckpointError for a member whose sizes are impossible."""
    out = {}
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            continue
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_DEFLATE_RATIO * max(info.compress_size, 1):
            raise CheckpointError(f"checkpoint {path} is corrupt: member {info.filename} claims {info.file_size} "
                                  f"bytes from {info.compress_size} compressed bytes")
        out[info.filename[:-4]] = info
    return out


def _read_array(zf, info, path, shape=None, kinds="fiu", max_bytes=None) -> np.ndarray:
    """One member's array after checking its header: dtype kind in ``kinds``, ``shape`` (if given), the
    data bytes present; reads exactly those bytes."""
    name = info.filename[:-4]
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shp, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shp, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            if dtype.hasobject or dtype.kind not in kinds:
                raise CheckpointError(f"checkpoint {path}: array {name} has dtype {dtype}, not a number array")
            if shape is not None and tuple(shp) != tuple(shape):
                raise CheckpointError(f"checkpoint {path} does not match the model: array {name} has shape "
                                      f"{tuple(shp)}, expected {tuple(shape)}")
            nbytes = int(np.prod(shp, dtype=np.int64)) * dtype.itemsize if shp else dtype.itemsize
            if max_bytes is not None and nbytes > max_bytes:
                raise CheckpointError(f"checkpoint {path}: array {name} holds {nbytes} bytes, more than the "
                                      f"{max_bytes} allowed")
            if nbytes != info.file_size - f.tell():
                raise CheckpointError(f"checkpoint {path} is corrupt or truncated: array {name} declares "
                                      f"{nbytes} bytes of data, the file holds {info.file_size - f.tell()}")
            data = f.read(nbytes)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: {err}") from None
    if len(data) != nbytes:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: array {name} is cut short")
    return np.frombuffer(data, dtype=dtype).reshape(shp, order="F" if fortran else "C").copy()


def _read_info(zf, members, path) -> dict:
    if "meta" not in members:
        raise CheckpointError(f"checkpoint {path} has no metadata: not written by minivae")
    arr = _read_array(zf, members["meta"], path, shape=(), kinds="U", max_bytes=MAX_META_BYTES)
    try:
        info = json.loads(str(arr[()]))
    except ValueError:
        info = None
    if not (isinstance(info, dict) and isinstance(info.get("meta"), dict)
            and (info.get("optimizer") is None or isinstance(info.get("optimizer"), dict))):
        raise CheckpointError(f"checkpoint {path}: not a minivae checkpoint (its metadata is not minivae's)")
    return info


def read_info(path) -> dict:
    """The JSON metadata of a checkpoint, ``{"meta": dict, "optimizer": dict or None}``, without reading
    any array. Raises CheckpointError (missing, corrupt, not minivae's)."""
    with _open(path) as zf:
        return _read_info(zf, _members(zf, path), path)


def read_meta(path) -> dict:
    """The run metadata (``meta``) saved with a checkpoint; see :func:`read_info`."""
    return read_info(path)["meta"]


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_optimizer_info(o: dict, optimizer, path) -> None:
    """Every number of the optimizer's metadata against ``optimizer`` and its constructor's checks."""
    where = f"checkpoint {path} is inconsistent: metadata"
    if not isinstance(o.get("type"), str) or o["type"] != type(optimizer).__name__:
        raise CheckpointError(f"{where} optimizer.type = {o.get('type')!r}, this run uses "
                              f"{type(optimizer).__name__}")
    n = o.get("num_params")
    if not _is_count(n) or n != len(optimizer.params):
        raise CheckpointError(f"{where} optimizer.num_params = {n!r} does not match the model's "
                              f"{len(optimizer.params)} parameters")
    if not _is_count(o.get("step_count")):
        raise CheckpointError(f"{where} optimizer.step_count = {o.get('step_count')!r} is not a count >= 0")
    hyper = o.get("hyper")
    if not isinstance(hyper, dict):
        raise CheckpointError(f"{where} optimizer.hyper = {hyper!r} is not a table of hyper-parameters")
    try:
        optimizer.check_hyper(hyper)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{where} optimizer.hyper: {err}") from None


def _budget(model, optimizer) -> int:
    n = sum(int(p.data.nbytes) for p in model.parameters())
    return SIZE_FACTOR * n * (3 if optimizer is not None else 1) + SIZE_SLACK


def load_checkpoint(path, model=None, optimizer=None) -> dict:
    """Read a checkpoint: ``{"model": {name: array}, "optimizer": state_dict or None, "meta": dict}``.

    With ``model`` (a Module) only its parameters' arrays are read, each checked to have the parameter's
    shape (the optimizer's metadata must count the model's parameters; its state is not read and
    ``"optimizer"`` is None); with ``optimizer`` too, its metadata (type, number of parameters, step count,
    hyper-parameters, through the constructor's own checks) and its state arrays (shape of their parameter, or
    scalars) are checked, and the archive's arrays may hold at most :data:`SIZE_FACTOR` times a checkpoint of this model
    (plus :data:`SIZE_SLACK`). Nothing is allocated for an array before its header was checked. Other
    archive members are not read.

    Raises:
        CheckpointError: the file is missing, truncated, not an npz, lacks the metadata, is too large for the
            model, or its arrays do not match its metadata or the model (one line naming the problem).
    """
    path = Path(path)
    with _open(path) as zf:
        members = _members(zf, path)
        info = _read_info(zf, members, path)
        o = info["optimizer"]
        if model is not None:
            total = sum(m.file_size for m in members.values())
            budget = _budget(model, optimizer)
            if total > budget:
                raise CheckpointError(f"checkpoint {path} holds {total / 2**20:.1f} MiB of arrays; a checkpoint "
                                      f"of this model holds at most {budget / 2**20:.1f} MiB: not a checkpoint "
                                      f"of this model")
            params = dict(model.named_parameters())
            names = [k[len("model/"):] for k in members if k.startswith("model/")]
            missing = [k for k in params if k not in names]
            unexpected = [k for k in names if k not in params]
            if missing or unexpected:
                parts = ([f"missing parameters {', '.join(missing)}"] if missing else []) + \
                        ([f"unexpected parameters {', '.join(unexpected)}"] if unexpected else [])
                raise CheckpointError(f"checkpoint {path} does not match the model: {'; '.join(parts)}")
            arrays = {k: _read_array(zf, members[f"model/{k}"], path, shape=p.shape, kinds="f")
                      for k, p in params.items()}
            shapes = [p.shape for p in params.values()]
        else:
            limit = SIZE_FACTOR * path.stat().st_size + SIZE_SLACK
            total = sum(m.file_size for k, m in members.items() if k.startswith(("model/", "optim/")))
            if total > limit:
                raise CheckpointError(f"checkpoint {path} claims {total / 2**20:.1f} MiB of arrays in a file of "
                                      f"{path.stat().st_size / 2**20:.1f} MiB: corrupt or crafted")
            arrays = {k[len("model/"):]: _read_array(zf, m, path, kinds="f")
                      for k, m in members.items() if k.startswith("model/")}
            shapes = None
        optim = None
        if o is not None and model is not None and optimizer is None:
            n = o.get("num_params")  # the state is not read, but the metadata must still describe this model
            if not _is_count(n) or n != len(shapes):
                raise CheckpointError(f"checkpoint {path} is inconsistent: metadata optimizer.num_params = {n!r} "
                                      f"does not match the model's {len(shapes)} parameters")
        elif o is not None:
            if optimizer is not None:
                _check_optimizer_info(o, optimizer, path)
                shapes = [p.shape for p in optimizer.params]
            n = o.get("num_params")
            if not _is_count(n) or (shapes is None and n > len(members)):
                raise CheckpointError(f"checkpoint {path} is inconsistent: metadata optimizer.num_params = {n!r} "
                                      f"but the file holds {len(members)} arrays")
            if shapes is not None and n != len(shapes):
                raise CheckpointError(f"checkpoint {path} is inconsistent: metadata optimizer.num_params = {n!r} "
                                      f"does not match the model's {len(shapes)} parameters")
            state = [{} for _ in range(n)]
            for k, m in members.items():
                if not k.startswith("optim/"):
                    continue
                parts = k.split("/", 2)
                if len(parts) != 3 or not parts[1].isdigit() or not int(parts[1]) < n:
                    raise CheckpointError(f"checkpoint {path} is inconsistent: optimizer array {k!r} but the "
                                          f"metadata counts {n} parameters")
                i = int(parts[1])
                arr = _read_array(zf, m, path, max_bytes=None if shapes is None else
                                  int(np.prod(shapes[i], dtype=np.int64)) * 8)
                if arr.ndim and shapes is not None and arr.shape != tuple(shapes[i]):
                    raise CheckpointError(f"checkpoint {path} does not match the model: optimizer state "
                                          f"{parts[2]!r} of parameter {i} has shape {arr.shape}, the parameter "
                                          f"has {tuple(shapes[i])}")
                state[i][parts[2]] = arr
            hyper = dict(o.get("hyper") or {})
            if "betas" in hyper and isinstance(hyper["betas"], list):
                hyper["betas"] = tuple(hyper["betas"])
            optim = {"type": o.get("type"), "hyper": hyper, "step_count": o.get("step_count"), "state": state}
    return {"model": arrays, "optimizer": optim, "meta": info["meta"]}


def model_values_in(path) -> int:
    """The number of parameter values the ``model/`` arrays of a checkpoint hold, from their ``.npy`` headers
    (each checked to be followed by its data); no array is read. Raises CheckpointError."""
    path = Path(path)
    total = 0
    with _open(path) as zf:
        for name, info in _members(zf, path).items():
            if not name.startswith("model/"):
                continue
            try:
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
                    if n * dtype.itemsize != info.file_size - f.tell():
                        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: array {name} declares "
                                              f"{n * dtype.itemsize} bytes of data, the file holds "
                                              f"{info.file_size - f.tell()}")
            except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
                if isinstance(err, CheckpointError):
                    raise
                raise CheckpointError(f"checkpoint {path} is corrupt or truncated: {err}") from None
            total += n
    return total
