"""``Optimizer`` base: parameter list, per-parameter state, ``zero_grad``, ``step``, ``state_dict``."""
from __future__ import annotations

import numpy as np

from minivae import backend
from minivae.autograd import capture
from minivae.autograd.tensor import Tensor


class Optimizer:
    """Holds ``params`` (a list of Parameters) and a state dict per parameter (moment arrays, ...).

    State arrays follow their parameter's device: if a model is moved with ``.to(device)`` after the
    optimizer was built, the state moves on the next ``step``.
    """

    def __init__(self, params, defaults: dict):
        """Raises ValueError for an empty list or a parameter given twice (it would be updated twice per
        step), TypeError for an entry that is not a Tensor (e.g. a NumPy array), as PyTorch does."""
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors, got one Tensor; "
                            f"wrap it in a list")
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        seen = {}
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, not a Tensor; "
                                f"pass model.parameters() or Tensors (e.g. Parameter(array))")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: parameter {i} is the same Tensor as parameter "
                                 f"{seen[id(p)]}; each parameter may appear once (it would be updated twice)")
            seen[id(p)] = i
        self.defaults = dict(defaults)
        self.state: list[dict] = [{} for _ in self.params]
        self.step_count = 0

    def zero_grad(self) -> None:
        """Set ``.grad`` of every parameter to None."""
        for p in self.params:
            p.grad = None
        if capture.active() is not None:
            capture.active().zero_grad(self.params)

    def _state_arrays(self, i: int, p) -> dict:
        """Parameter ``i``'s state, moved to its device when needed."""
        st = self.state[i]
        for k, v in st.items():
            if hasattr(v, "shape") and backend.device_of(v) != p.device:
                st[k] = backend.to_device(v, p.device)
        return st

    def step(self) -> None:
        """Update every parameter that has a ``.grad`` (the rule is the subclass's ``_step`` or ``_update``).

        While :func:`minivae.compile` records a step, the update is reported as one node of the plan (its array
        operations are not recorded one by one: a replay runs this optimizer's own ``_step`` again, or a fused
        kernel that gives the same bits).
        """
        recorder = capture.active()
        if recorder is None:
            return self._step()
        recorder.optimizer_step(self)
        with capture.recording(None):
            return self._step()

    def _step(self) -> None:
        """The update itself: :meth:`_update` for every parameter with a gradient."""
        self.step_count += 1
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            self._update(i, p, p.grad.data, self._state_arrays(i, p))

    def _update(self, i, p, grad, state) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self) -> dict:
        """``{"hyper": {...}, "step_count": int, "state": [{name: NumPy array}, ...]}`` (host copies)."""
        return {
            "hyper": dict(self.defaults),
            "step_count": self.step_count,
            "state": [{k: _host_copy(v) for k, v in st.items()} for st in self.state],
        }

    def check_hyper(self, hyper: dict) -> None:
        """Raise ValueError unless ``hyper`` names exactly this optimizer's hyper-parameters with values its
        constructor accepts (the same checks, e.g. Adam's ``lr > 0``, ``0 <= beta < 1``)."""
        if not isinstance(hyper, dict) or set(hyper) != set(self.defaults):
            raise ValueError(f"state dict of another optimizer: hyper-parameters "
                             f"{sorted(hyper) if isinstance(hyper, dict) else hyper!r}, "
                             f"{type(self).__name__} has {sorted(self.defaults)}")
        try:
            type(self)(self.params, **hyper)
        except TypeError as err:
            raise ValueError(f"{type(self).__name__}: invalid hyper-parameters {hyper}: {err}") from None

    def load_state_dict(self, state: dict) -> None:
        """Restore hyper-parameters, step count and per-parameter state.

        Everything is checked and converted first, then assigned: when it raises, the optimizer is unchanged.
        Raises ValueError if a key is missing, the hyper-parameters are another optimizer's or fail the
        constructor's checks, the step count is not an integer >= 0, the number of parameters or a state
        array's shape differs, an entry is not a number, or the per-parameter states hold different names.
        """
        if not isinstance(state, dict):
            raise ValueError(f"not an optimizer state dict: got {type(state).__name__}")
        missing = [k for k in ("hyper", "step_count", "state") if k not in state]
        if missing:
            raise ValueError(f"not an optimizer state dict: missing keys {missing}")
        self.check_hyper(state["hyper"])
        count = state["step_count"]
        if not (isinstance(count, (int, np.integer)) and not isinstance(count, bool) and count >= 0):
            raise ValueError(f"optimizer step_count must be an integer >= 0, got {count!r}")
        if not isinstance(state["state"], (list, tuple)) or len(state["state"]) != len(self.params):
            n = len(state["state"]) if isinstance(state["state"], (list, tuple)) else state["state"]
            raise ValueError(f"optimizer state has {n} parameters, this optimizer has {len(self.params)}")
        names = {tuple(sorted(st)) for st in state["state"] if isinstance(st, dict) and st}
        if len(names) > 1:
            raise ValueError(f"optimizer states of the parameters hold different entries: "
                             f"{' vs '.join(str(list(n)) for n in sorted(names))}")
        new_state = []
        for i, (st, p) in enumerate(zip(state["state"], self.params)):
            if not isinstance(st, dict):
                raise ValueError(f"optimizer state of parameter {i} is a {type(st).__name__}, not a dict")
            entry = {}
            for k, v in st.items():
                arr = v if hasattr(v, "__cuda_array_interface__") else np.asarray(v)
                if arr.dtype.kind not in "fiu":
                    raise ValueError(f"optimizer state {k!r} of parameter {i} is not a number array")
                if arr.ndim == 0:  # per-parameter counters
                    if arr.dtype.kind == "f" and not float(arr).is_integer() or int(arr) < 0:
                        raise ValueError(f"optimizer state {k!r} of parameter {i} must be an integer >= 0, "
                                         f"got {arr}")
                    entry[k] = int(arr)
                elif arr.shape != p.shape:
                    raise ValueError(f"optimizer state {k!r} of parameter {i} has shape {arr.shape}, "
                                     f"the parameter has {p.shape}")
                else:  # a copy in the parameter's dtype, on its device
                    arr = np.array(arr, dtype=p.dtype) if isinstance(arr, np.ndarray) else arr.astype(p.dtype)
                    entry[k] = backend.to_device(arr, p.device)
            new_state.append(entry)
        hyper = dict(state["hyper"])
        if isinstance(hyper.get("betas"), list):
            hyper["betas"] = tuple(hyper["betas"])
        self.defaults.update(hyper)
        self.step_count = int(count)
        self.state = new_state


def _host_copy(value):
    """A NumPy copy of a state entry: arrays from any device, Python ints (step counters) as 0-d arrays."""
    return backend.to_device(value, backend.CPU).copy() if hasattr(value, "shape") else np.asarray(value)
