"""Validation of a run's settings, one clear message per bad value naming its command-line flag.

Two entry points share the rules:

* argparse ``type=`` functions (:func:`positive_int`, :func:`non_negative_float`, :func:`positive_float`,
  :func:`existing_dir`) so ``minivae train --beta -2`` is refused by argparse itself ("argument --beta:
  must be >= 0, got -2"), before anything is loaded;
* :func:`check_config`, which :func:`minivae.train.fit` calls on a :class:`~minivae.train.TrainConfig`
  built in Python (raises ValueError naming the field and its flag).

Model options (``--model-option KEY=VALUE``) are checked against the model constructor's keyword
arguments: :func:`check_model_options` lists the unknown keys and the accepted ones.
"""
from __future__ import annotations

import argparse
import inspect
import math
import numbers
from pathlib import Path

#: model constructor arguments that train sets itself (not --model-option keys)
_SET_BY_TRAIN = ("latent_dim", "in_channels", "dtype", "rng")


def _number(text, kind):
    if isinstance(text, bool):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None
    return value


def positive_int(text) -> int:
    """argparse type: an integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_float(text) -> float:
    """argparse type: a finite number >= 0."""
    value = _number(text, float)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def positive_float(text) -> float:
    """argparse type: a finite number > 0."""
    value = _number(text, float)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def existing_dir(text) -> str:
    """argparse type: the path of an existing folder."""
    if not Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {text}")
    return str(text)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


#: (field, flag, rule, rule text); None is allowed where the default is None
_RULES = (
    ("epochs", "--epochs", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("batch_size", "--batch-size", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("eval_batch_size", None, lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("latent_dim", "--latent-dim", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("train_limit", "--train-limit", lambda v: v is None or (_is_int(v) and v >= 1), "an integer >= 1"),
    ("test_limit", "--test-limit", lambda v: v is None or (_is_int(v) and v >= 1), "an integer >= 1"),
    ("capacity_steps", "--capacity-steps", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("seed", "--seed", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("lr", "--lr", lambda v: _is_real(v) and math.isfinite(v) and v > 0, "a finite number > 0"),
    ("beta", "--beta", lambda v: _is_real(v) and math.isfinite(v) and v >= 0, "a finite number >= 0"),
    ("gamma", "--gamma", lambda v: _is_real(v) and math.isfinite(v) and v >= 0, "a finite number >= 0"),
    ("capacity_max", "--capacity-max", lambda v: v is None or (_is_real(v) and math.isfinite(v) and v >= 0),
     "a finite number >= 0"),
)


def check_config(config) -> None:
    """Raise ValueError (one line naming the field and its flag) for the first bad value of a TrainConfig:
    counts and limits >= 1, ``lr`` finite and > 0, ``beta``/``gamma``/``capacity_max`` finite and >= 0,
    ``out`` a non-empty path, ``data_dir`` an existing folder, ``model_options`` keys the model accepts."""
    for name, flag, ok, rule in _RULES:
        value = getattr(config, name)
        if not ok(value):
            where = f"{name} ({flag})" if flag else name
            raise ValueError(f"{where} must be {rule}, got {value!r}")
    if not isinstance(config.out, (str, Path)) or not str(config.out):
        raise ValueError(f"out (--out) must name a folder, got {config.out!r}")
    if config.data_dir is not None and not Path(config.data_dir).expanduser().is_dir():
        raise ValueError(f"--data-dir {config.data_dir}: no such folder")
    check_model_options(config.model, config.model_options)


def accepted_options(model: str) -> list[str]:
    """Keyword arguments of model ``model``'s constructor that ``--model-option`` may set."""
    from minivae.models import CVAE, MODELS

    cls = MODELS[model]
    if not inspect.isclass(cls):  # a factory such as cvae-conv's
        cls = CVAE
    params = inspect.signature(cls.__init__).parameters
    return sorted(k for k, p in params.items() if k != "self" and k not in _SET_BY_TRAIN
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def check_model_options(model: str, options: dict) -> None:
    """Raise ValueError listing the keys of ``options`` that model ``model`` does not accept, and the
    accepted ones. Unknown model names are left to :func:`minivae.models.build_model`."""
    from minivae.models import MODELS

    if model not in MODELS or not options:
        return
    accepted = accepted_options(model)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"--model-option: model {model!r} has no option {', '.join(unknown)}; "
                         f"accepted: {', '.join(accepted)}")
