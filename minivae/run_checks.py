"""Checks of a run's state that keep a run from being poisoned: a checkpoint's metadata before it is resumed
or a model is rebuilt from it, finite weights and optimizer state, and the divergence guard that stops a run
whose epoch ended with NaN/inf (that epoch is never saved over the last good checkpoint).

Every check raises one line: :class:`~minivae.checkpoint.CheckpointError` for a checkpoint, naming the file and
the value; :class:`DivergedError` for an epoch, naming the epoch, what was not finite and the last good
checkpoint.
"""
from __future__ import annotations

import json
import math

import numpy as np

from minivae import backend
from minivae.checkpoint import CheckpointError, read_info


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the epoch and step (parameters are
    left as they were before that step, and the last good checkpoint is kept)."""


class DivergedError(NonFiniteLossError):
    """An epoch ended with non-finite weights, optimizer state or test ELBO: it is not saved; the message
    names the epoch, what was not finite and the last good checkpoint."""


#: the per-parameter state an Adam checkpoint holds (every parameter has had a step by the end of an epoch)
ADAM_STATE = ("m", "step", "v")


def check_model_config(model_config: dict, src) -> None:
    """The sizes in ``model_config`` against the number of parameter values the file declares: every size a
    positive integer, and the product of the two largest (``image_size`` counted twice: a first layer holds
    ``image_size**2`` weights per unit) at most that number, since some layer holds that many weights. So a
    crafted size cannot make building the model allocate without bound."""
    from minivae.checkpoint import model_values_in

    limit = model_values_in(src)
    found = []
    for key, value in model_config.items():
        if key in ("sigma", "likelihood", "base", "init"):
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, float) or (isinstance(v, int) and not isinstance(v, bool) and v < 1):
                raise CheckpointError(f"checkpoint {src} is inconsistent: metadata model_config.{key} = {value!r} "
                                      f"is not a positive integer")
            if isinstance(v, int) and not isinstance(v, bool):
                found += [(v, key)] * (2 if key == "image_size" else 1)
    found.sort(reverse=True)
    if len(found) >= 2 and found[0][0] * found[1][0] > limit:
        raise CheckpointError(f"checkpoint {src} is inconsistent: metadata model_config.{found[0][1]} = "
                              f"{found[0][0]} and {found[1][1]} = {found[1][0]} need more than the {limit} parameter "
                              f"values the file holds")


def check_finite_weights(arrays: dict, src) -> None:
    """CheckpointError naming the arrays with NaN/inf values (a diverged run), in one line."""
    bad = [f"{k} ({int(np.size(v) - np.isfinite(v).sum())} values)" for k, v in arrays.items()
           if not np.all(np.isfinite(v))]
    if bad:
        raise CheckpointError(f"checkpoint {src} holds non-finite weights (NaN/inf in {', '.join(bad[:3])}"
                              f"{', ...' if len(bad) > 3 else ''}): it comes from a diverged run; use a checkpoint "
                              f"saved before it diverged")


def check_resume_meta(meta: dict, src) -> None:
    """CheckpointError (one line) unless the run metadata a resume needs is there and sane: epoch an integer
    >= 1, step an integer >= 0, a history of one record per epoch, the loader and noise RNG states."""
    def count(v, low):
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    problem = None
    if not count(meta.get("epoch"), 1):
        problem = f"epoch = {meta.get('epoch')!r} (need an integer >= 1)"
    elif not count(meta.get("step"), 0):
        problem = f"step = {meta.get('step')!r} (need an integer >= 0)"
    elif not (isinstance(meta.get("history"), list) and len(meta["history"]) == meta["epoch"]
              and all(isinstance(h, dict) for h in meta["history"])):
        problem = f"history does not hold one record per epoch ({meta['epoch']} epochs)"
    elif not isinstance(meta.get("loader"), dict) or not isinstance(meta.get("eps_rng"), dict):
        problem = "no data loader / noise RNG state"
    if problem:
        raise CheckpointError(f"checkpoint {src} cannot be resumed: its metadata has {problem}")


def check_resume_state(ckpt: dict, optimizer, src) -> None:
    """CheckpointError unless the checkpoint's optimizer is this run's: the same hyper-parameters (a saved
    ``lr`` must be the run's ``--lr``), a full Adam state per parameter, finite weights and moments."""
    o = ckpt["optimizer"]
    if o is None:
        raise CheckpointError(f"checkpoint {src} holds no optimizer state: cannot resume from it")
    def as_json(v):
        return json.loads(json.dumps(v))
    diffs = [f"{k}: checkpoint {o['hyper'].get(k)!r}, this run {v!r}" for k, v in optimizer.defaults.items()
             if as_json(o["hyper"].get(k)) != as_json(v)]
    if diffs:
        raise CheckpointError(f"checkpoint {src} was written with other optimizer settings; refusing to resume ("
                              + "; ".join(diffs) + ")")
    for i, st in enumerate(o["state"]):
        if tuple(sorted(st)) != ADAM_STATE:
            raise CheckpointError(f"checkpoint {src} cannot be resumed: the Adam state of parameter {i} holds "
                                  f"{sorted(st)}, expected {list(ADAM_STATE)}")
    check_finite_weights(ckpt["model"], src)
    bad = [f"{k} of parameter {i}" for i, st in enumerate(o["state"]) for k, v in st.items()
           if not np.all(np.isfinite(v))]
    if bad:
        raise CheckpointError(f"checkpoint {src} holds a non-finite optimizer state ({', '.join(bad[:3])}): it "
                              f"comes from a diverged run; use a checkpoint saved before it diverged")


def check_epoch_finite(epoch, record, model, optimizer, ckpt_path) -> None:
    """DivergedError unless the epoch's weights, optimizer state, training loss and test ELBO are finite."""
    bad = [f"weights {n}" for n, p in model.named_parameters()
           if not bool(backend.get_array_module(p.data).isfinite(p.data).all())]
    bad += [f"Adam {k} of parameter {i}" for i, st in enumerate(optimizer.state) for k, v in st.items()
            if hasattr(v, "shape") and not bool(backend.get_array_module(v).isfinite(v).all())]
    bad += [k for k in ("train_loss", "test_elbo", "test_recon", "test_kl") if not math.isfinite(record[k])]
    if not bad:
        return
    try:
        kept = read_info(ckpt_path)["meta"].get("epoch")
        last = f"the last good checkpoint is {ckpt_path} (epoch {kept})"
    except CheckpointError:
        last = "no checkpoint had been written yet"
    what = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    raise DivergedError(f"training diverged at epoch {epoch}: {what} not finite; epoch {epoch} was not saved, "
                        f"{last}; try a smaller --lr")
