"""The training loop: data, model, Adam, a tqdm progress bar per epoch, test ELBO, checkpoints, figures.

``fit(TrainConfig(...))`` is what ``minivae train`` runs. Each epoch ends with an evaluation on the test
set, ``metrics.json`` and ``checkpoint.npz`` rewritten atomically in the output folder; a run can be
continued from that checkpoint (``resume=``) and then ends with exactly the parameters an uninterrupted
run would have had (on the CPU, same seed).

Every model of :data:`minivae.models.MODELS` trains here: conditional ones (``cvae*``) get one-hot labels
from the loader; ``beta`` (Higgins et al. 2017) or the capacity schedule ``capacity_max``/``capacity_steps``/
``gamma`` (Burgess et al. 2018) shape the loss; ``likelihood`` picks Bernoulli (binarised data, logits) or a
fixed-variance Gaussian (grey levels, ``binarize="none"``, ``sigma`` in ``model_options``).
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from minivae import backend, kernels
from minivae.checkpoint import (
    CheckpointError,
    atomic_write_text,
    load_checkpoint,
    read_info,
    save_checkpoint,
    strict_json,
)
from minivae.models import build_model, capacity_at, is_conditional
from minivae.nn import init
from minivae.optim import Adam
from minivae.run_checks import (  # DivergedError, NonFiniteLossError: re-exported, as before
    DivergedError,  # noqa: F401
    NonFiniteLossError,
    check_epoch_finite,
    check_finite_weights,
    check_model_config,
    check_resume_meta,
    check_resume_state,
)
from minivae.runs import CHECKPOINT, METRICS, clear_run, open_run_folder
from minivae.signals import GracefulStop
from minivae.steps import ELBOStep, evaluate, sample_eps, train_step  # noqa: F401  (re-exported)


class FigureError(OSError):
    """The figures of a finished run could not be written (the checkpoint and metrics are saved)."""

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


@dataclass
class TrainConfig:
    """Everything that defines a run (saved in its checkpoint). Defaults: the TensorFlow tutorial's."""

    dataset: str = "fashion-mnist"
    model: str = "conv"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    latent_dim: int = 2
    seed: int = 0
    train_limit: int | None = None
    test_limit: int | None = None
    out: str = "runs/demo"
    data_dir: str | None = None
    kernels: str | None = None
    device: str = "cpu"
    beta: float = 1.0
    binarize: str = "fixed"  # "fixed" (threshold 0.5, as the TF tutorial) or "stochastic"
    eval_batch_size: int = 500
    figures: bool = True
    progress: bool = True
    model_options: dict = field(default_factory=dict)
    likelihood: str = "bernoulli"  # "bernoulli" (logits, binarised data) or "gaussian" (fixed sigma, grey levels)
    capacity_max: float | None = None  # Burgess et al. 2018: target KL C_max, nats (None: plain beta loss)
    capacity_steps: int = 100000  # steps over which C rises linearly from 0 to C_max
    gamma: float = 1000.0  # weight of |KL - C| (Burgess et al. 2018 use 1000 on dSprites)
    eager: bool = False  # run the textbook op-by-op step instead of the compiled one (same bits)

    #: keys that must match when resuming from a checkpoint
    STRUCTURAL = ("dataset", "model", "batch_size", "lr", "latent_dim", "seed", "train_limit", "test_limit", "beta",
                  "binarize", "model_options", "likelihood", "capacity_max", "capacity_steps", "gamma")


def load_data(config: TrainConfig):
    """Binarised float32 train/test images ``(N, 1, 28, 28)`` and int labels, from the configured dataset."""
    from minivae.data import binarize, binarize_stochastic, load_dataset, to_float

    (xtr, ytr), (xte, yte) = (load_dataset(config.dataset, split, data_dir=config.data_dir)
                              for split in ("train", "test"))
    if config.train_limit:
        xtr, ytr = xtr[:config.train_limit], ytr[:config.train_limit]
    if config.test_limit:
        xte, yte = xte[:config.test_limit], yte[:config.test_limit]
    xtr, xte = to_float(xtr), to_float(xte)
    if config.binarize == "fixed":
        xtr, xte = binarize(xtr), binarize(xte)
    elif config.binarize == "stochastic":
        rng = np.random.default_rng(config.seed)
        xtr, xte = binarize_stochastic(xtr, rng), binarize_stochastic(xte, rng)
    elif config.binarize != "none":
        raise ValueError(f"binarize must be 'fixed', 'stochastic' or 'none', got {config.binarize!r}")
    return xtr, ytr, xte, yte


def num_classes_of(config: TrainConfig, *labels) -> int:
    """Classes of the configured data set (its registry entry), else ``max(label) + 1`` over ``labels``."""
    try:
        from minivae.data import get_info

        return int(get_info(config.dataset).num_classes)
    except Exception:  # a custom data set passed to fit(data=...)
        return int(max(int(np.max(lab)) for lab in labels if lab is not None and len(lab)) + 1)


def model_kwargs(config: TrainConfig, in_channels: int, num_classes: int | None = None) -> dict:
    """Constructor arguments for ``build_model(config.model, ...)``: latent size, channels, likelihood, the
    ``model_options`` and (conditional models) ``num_classes`` unless given in the options."""
    kw = {"latent_dim": config.latent_dim, "in_channels": in_channels, **config.model_options}
    kw.setdefault("likelihood", config.likelihood)
    if is_conditional(config.model) and num_classes is not None:
        kw.setdefault("num_classes", num_classes)
    return kw


def model_from_checkpoint(path, device: str = "cpu"):
    """Rebuild the model saved in a checkpoint file or run folder; returns ``(model, TrainConfig, meta)``.

    Only the model's arrays are read (each checked against the model's shapes before it is allocated); the
    model's sizes in the metadata may not exceed the number of parameter values the file holds.

    Raises CheckpointError (one line) when the file is missing/corrupt, does not describe a model, or holds
    non-finite weights (a diverged run).
    """
    path = Path(path)
    src = path / CHECKPOINT if path.is_dir() else path
    meta = read_info(src)["meta"]
    if not isinstance(meta.get("config"), dict) or not isinstance(meta.get("model_config"), dict):
        raise CheckpointError(f"checkpoint {src} holds no model description (config / model_config): not a "
                              f"checkpoint of `minivae train`")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    try:
        config = TrainConfig(**{k: v for k, v in meta["config"].items() if k in known})
    except TypeError as err:
        raise CheckpointError(f"checkpoint {src}: bad config in its metadata: {err}") from None
    check_model_config(meta["model_config"], src)
    try:
        model = build_model(config.model, **meta["model_config"])
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"cannot rebuild model {config.model!r} from {src}: {err}") from None
    arrays = load_checkpoint(src, model=model)["model"]
    check_finite_weights(arrays, src)
    try:
        model.load_state_dict(arrays)
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"cannot rebuild model {config.model!r} from {src}: {err}") from None
    return model.to(device), config, meta


# --------------------------------------------------------------------------- the loop


def _config_from_checkpoint(meta: dict, config: TrainConfig, path) -> TrainConfig:
    saved = meta.get("config")
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path} holds no training config: cannot resume from it")
    default = TrainConfig()  # checkpoints from before a key existed hold its default
    # compare as stored: the checkpoint went through JSON, which turns tuples into lists
    as_json = lambda v: json.loads(json.dumps(v))  # noqa: E731  (a one-line formula)
    diffs = [f"{k}: checkpoint {saved.get(k, getattr(default, k))!r}, requested {getattr(config, k)!r}"
             for k in TrainConfig.STRUCTURAL
             if as_json(saved.get(k, getattr(default, k))) != as_json(getattr(config, k))]
    if diffs:
        raise CheckpointError(f"checkpoint {path} was written by another model or config; refusing to resume ("
                              + "; ".join(diffs) + ")")
    return config


def fit(config: TrainConfig, resume: str | Path | None = None, data=None, log=print,
        overwrite: bool = False) -> dict:
    """Train a VAE as configured; returns the metrics dict (also written to ``out/metrics.json``).

    Before the first epoch (preflight): the settings are validated, the device must exist, ``config.out``
    is locked against other processes (:func:`minivae.runs.open_run_folder`, which also deletes temporary
    files of killed runs), must be writable and have room for two checkpoints. SIGINT and SIGTERM end the
    current step (or checkpoint write) and then raise :class:`minivae.signals.Interrupted`.

    Args:
        config: the run's :class:`TrainConfig`.
        resume: an output folder (or checkpoint file) of an earlier run with the same config, to continue.
        data: optional ``(x_train, y_train, x_test, y_test)`` arrays instead of loading ``config.dataset``.
        overwrite: replace a run already saved in ``config.out`` (otherwise that is refused).
    Raises:
        ValueError: a bad setting (names the field and its flag).
        RunFolderError, PreflightError: ``out`` holds a run, is locked by another process (named), is not
            writable or too full; the device does not exist.
        NonFiniteLossError: NaN/Inf loss (names epoch and step; the last good checkpoint is kept).
        CheckpointError: ``resume`` is corrupt or from another model/config; a checkpoint could not be
            written (names the last good one).
        DatasetNotFoundError: the data set is missing (says where it looked).
        Interrupted: SIGINT/SIGTERM (a KeyboardInterrupt; the last good checkpoint is kept).
    """
    from minivae import preflight
    from minivae.config_checks import check_config

    check_config(config)
    if resume is not None and not str(resume):
        raise ValueError("--resume: empty path; give the run folder (or checkpoint file) to continue")
    preflight.check_device(config.device)
    out = Path(config.out)
    lock = open_run_folder(out, resume, overwrite)
    previous = kernels.current(config.device)
    try:
        preflight.check_writable(out)
        if config.kernels:
            kernels.use(config.kernels, device=config.device)
        with GracefulStop() as stop:
            return _fit(config, out, resume, data, log, stop, overwrite)
    finally:
        kernels.use(previous, device=config.device)
        lock.release()


def _fit(config, out, resume, data, log, stop, overwrite=False):
    from minivae.preflight import check_space

    xtr, ytr, xte, yte = data if data is not None else load_data(config)
    from minivae.data import DataLoader, one_hot

    conditional = is_conditional(config.model)
    if conditional and ytr is None:
        raise ValueError(f"model {config.model!r} is conditional: it needs training labels")
    k = num_classes_of(config, ytr, yte) if conditional else None
    init.manual_seed(config.seed)
    model = build_model(config.model, **model_kwargs(config, xtr.shape[1], k)).to(config.device)
    optimizer = Adam(model.parameters(), lr=config.lr)
    check_space(out, sum(p.data.size for p in model.parameters()), xtr.dtype.itemsize)
    # the labels ride along (same permutation; the loader's RNG use does not depend on how many arrays)
    arrays = (xtr,) if ytr is None else (xtr, ytr)
    loader = DataLoader(*arrays, batch_size=config.batch_size, shuffle=True, seed=config.seed)
    onehot = (lambda lab: one_hot(np.asarray(lab), model.num_classes)) if conditional else (lambda lab: None)
    yte_onehot = onehot(yte) if conditional else None
    eps_rng = np.random.default_rng(config.seed + 1)
    history, start_epoch, step = [], 1, 0
    ckpt_path = out / CHECKPOINT
    if resume is not None:
        resume = Path(resume)
        src = resume / CHECKPOINT if resume.is_dir() else resume
        meta = read_info(src)["meta"]
        _config_from_checkpoint(meta, config, src)
        check_resume_meta(meta, src)
        if meta["epoch"] >= config.epochs:
            raise ValueError(f"the run in {src} already has {meta['epoch']} epochs: pass --epochs N with "
                             f"N > {meta['epoch']} to continue it")
        ckpt = load_checkpoint(src, model=model, optimizer=optimizer)
        check_resume_state(ckpt, optimizer, src)
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            loader.load_state_dict(meta["loader"])
            eps_rng.bit_generator.state = meta["eps_rng"]
            history, start_epoch, step = meta["history"], meta["epoch"] + 1, meta["step"]
        except (ValueError, TypeError, KeyError, IndexError) as err:
            raise CheckpointError(f"checkpoint {src} does not match its own metadata, cannot resume: "
                                  f"{err}") from None
        log(f"resumed from {src} after epoch {meta['epoch']} (step {step})")

    if overwrite:  # everything the run needs has loaded: now the old run may go
        clear_run(out)
    if config.progress and config.device == "cpu" and kernels.current("cpu") == "numba":
        from minivae.kernels import cpu as cpu_kernels

        if cpu_kernels.cache_is_cold():  # one line instead of a progress bar frozen at 0 while Numba compiles
            log("compiling the Numba CPU kernels (first run only: they are cached for the next runs) ...")
    runner = ELBOStep(model, optimizer, beta=config.beta, gamma=config.gamma, compiled=not config.eager)
    for epoch in range(start_epoch, config.epochs + 1):
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
        seen = 0
        bar = tqdm(loader, desc=f"epoch {epoch}/{config.epochs}", unit="batch", disable=not config.progress,
                   leave=True, dynamic_ncols=True)
        for i, batch in enumerate(bar, start=1):
            xb = batch[0]
            yb = onehot(batch[1]) if conditional else None
            capacity = None if config.capacity_max is None else \
                capacity_at(step, config.capacity_max, config.capacity_steps)
            try:
                with stop.deferred():  # a signal ends the step first
                    stats = train_step(model, optimizer, backend.to_device(xb, config.device), eps_rng,
                                       y=None if yb is None else backend.to_device(yb, config.device),
                                       beta=config.beta, capacity=capacity, gamma=config.gamma, step=runner)
            except NonFiniteLossError as err:
                kept = f"the last good checkpoint is kept at {ckpt_path}" if ckpt_path.exists() else \
                    "no checkpoint had been written yet"
                raise NonFiniteLossError(f"training stopped: {err} at epoch {epoch}, step {i} "
                                         f"(global step {step + 1}); {kept}") from None
            step += 1
            seen += len(xb)
            for k in sums:
                sums[k] += stats[k] * len(xb)
            bar.set_postfix(loss=f"{stats['loss']:.2f}", kl=f"{stats['kl']:.2f}",
                            ex_s=f"{seen / (time.perf_counter() - t0):.0f}")
        bar.close()
        train_seconds = time.perf_counter() - t0
        ev = evaluate(model, xte, config.eval_batch_size, seed=config.seed, labels_onehot=yte_onehot)
        record = {"epoch": epoch, "train_loss": sums["loss"] / seen, "train_recon": sums["recon"] / seen,
                  "train_kl": sums["kl"] / seen, "test_elbo": ev["elbo"], "test_recon": ev["recon"],
                  "test_kl": ev["kl"], "seconds": train_seconds, "examples_per_second": seen / train_seconds}
        if capacity is not None:
            record["capacity"] = capacity
        log(f"epoch {epoch}: train loss {record['train_loss']:.2f} nats, test ELBO {ev['elbo']:.2f} nats "
            f"(recon {ev['recon']:.2f}, KL {ev['kl']:.2f}), {train_seconds:.1f} s")
        check_epoch_finite(epoch, record, model, optimizer, ckpt_path)  # a diverged epoch is never saved
        history.append(record)
        meta = {"config": dataclasses.asdict(config), "epoch": epoch, "step": step, "history": history,
                "model_config": model.config(), "loader": _encode_rng(loader.state_dict()),
                "eps_rng": eps_rng.bit_generator.state, "kernels": kernels.current(config.device)}
        with stop.deferred():  # a signal lets the write finish: the checkpoint is old or new, never torn
            _save_epoch(out, ckpt_path, model, optimizer, meta, config, history)

    metrics = _write_metrics(out, config, history)
    if config.figures and history:
        from minivae import plots

        try:
            ev = evaluate(model, xte, config.eval_batch_size, seed=config.seed, labels_onehot=yte_onehot)
            metrics["figures"] = plots.training_figures(model, xte, yte, ev["mu"], history, out, seed=config.seed,
                                                        dataset=config.dataset, beta=config.beta,
                                                        capacity=config.capacity_max is not None)
            _write_metrics(out, config, history, figures=metrics["figures"])
        except OSError as err:
            where = f" ({err.filename})" if getattr(err, "filename", None) else ""
            raise FigureError(f"could not write the figures to {out}: {err.strerror or err}{where}; the run is "
                              f"complete (checkpoint {ckpt_path}, epoch {history[-1]['epoch']}, and metrics are "
                              f"saved); draw them later with `minivae plot {out}`") from None
    return metrics


def _save_epoch(out, ckpt_path, model, optimizer, meta, config, history) -> None:
    """Checkpoint and metrics of the epoch just finished; a failed checkpoint write (disk full, folder gone)
    raises CheckpointError naming the last good checkpoint (``os.replace`` never ran, so it is intact); a
    failed metrics write names the metrics file (the checkpoint of the epoch is saved by then)."""
    try:
        save_checkpoint(ckpt_path, model, optimizer, meta)
    except OSError as err:
        try:
            kept = read_info(ckpt_path)["meta"].get("epoch")
            last = f"the last good checkpoint is {ckpt_path} (epoch {kept})"
        except CheckpointError:
            last = "no checkpoint had been written yet"
        raise CheckpointError(f"could not write the checkpoint of epoch {meta['epoch']} to {ckpt_path}: "
                              f"{err.strerror or err}; {last}") from None
    try:
        _write_metrics(out, config, history)
    except OSError as err:
        raise CheckpointError(f"could not write the metrics of epoch {meta['epoch']} to {out / METRICS}: "
                              f"{err.strerror or err}; the checkpoint of epoch {meta['epoch']} is saved at "
                              f"{ckpt_path} (`minivae train --resume {out}` rewrites the metrics)") from None


def _write_metrics(out: Path, config: TrainConfig, history: list, figures=None) -> dict:
    """Write ``out/metrics.json`` atomically as strict JSON: a NaN/inf value is written ``null`` and its key
    listed under ``"non_finite"`` with the reason. Returns the metrics dict (as written)."""
    metrics = {"test_elbo": history[-1]["test_elbo"] if history else None, "units": "nats",
               "likelihood": config.likelihood,
               "config": dataclasses.asdict(config), "epochs": history}
    if figures:
        metrics["figures"] = figures
    clean, bad = strict_json(metrics)
    if bad:
        clean["non_finite"] = {"keys": bad, "reason": "NaN or infinite values are written as null (strict JSON)"}
    atomic_write_text(out / METRICS, json.dumps(clean, indent=2, allow_nan=False))
    return metrics


def _encode_rng(state):
    """JSON-safe copy of a DataLoader state (numpy ints -> int)."""
    return json.loads(json.dumps(state, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
