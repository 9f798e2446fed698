"""``Optimizer`` base: parameter list, per-parameter state, ``zero_grad``, ``step``, ``state_dict``."""
from __future__ import annotations

import numpy as np

from minivae import backend
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
        for p in self.params:
            p.grad = None

    def _state_arrays(self, i: int, p) -> dict:
        """Parameter ``i``'s state, moved to its device when needed."""
        st = self.state[i]
        for k, v in st.items():
            if hasattr(v, "shape") and backend.device_of(v) != p.device:
                st[k] = backend.to_device(v, p.device)
        return st

    def step(self) -> None:
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

    def load_state_dict(self, state: dict) -> None:
        """Restore hyper-parameters, step count and per-parameter state.

        Raises ValueError if a key is missing, or the number of parameters or a state array's shape differs.
        """
        missing = [k for k in ("hyper", "step_count", "state") if k not in state]
        if missing:
            raise ValueError(f"not an optimizer state dict: missing keys {missing}")
        if set(state["hyper"]) != set(self.defaults):
            raise ValueError(f"state dict of another optimizer: hyper-parameters {sorted(state['hyper'])}, "
                             f"{type(self).__name__} has {sorted(self.defaults)}")
        if len(state["state"]) != len(self.params):
            raise ValueError(f"optimizer state has {len(state['state'])} parameters, this optimizer has "
                             f"{len(self.params)}")
        for i, (st, p) in enumerate(zip(state["state"], self.params)):
            for k, v in st.items():
                if np.ndim(v) and np.shape(v) != p.shape:  # 0-d entries are per-parameter counters
                    raise ValueError(f"optimizer state {k!r} of parameter {i} has shape {np.shape(v)}, "
                                     f"the parameter has {p.shape}")
        self.defaults.update(state["hyper"])
        self.step_count = int(state["step_count"])
        self.state = [{k: int(v) if np.ndim(v) == 0 else backend.to_device(np.array(v, dtype=p.dtype), p.device)
                       for k, v in st.items()} for st, p in zip(state["state"], self.params)]


def _host_copy(value):
    """A NumPy copy of a state entry: arrays from any device, Python ints (step counters) as 0-d arrays."""
    return backend.to_device(value, backend.CPU).copy() if hasattr(value, "shape") else np.asarray(value)
