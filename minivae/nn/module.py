"""``Module``: a container of Parameters and sub-Modules, with PyTorch's interface.

Parameters and sub-modules are found by walking the attributes in assignment order, so
``named_parameters()`` yields ``"encoder.0.weight"``-style names as PyTorch does.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from minivae import backend
from minivae.autograd import capture
from minivae.nn.parameter import Parameter


class StateDictError(KeyError):
    """``load_state_dict`` got missing or unexpected keys, or arrays of the wrong shape."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0] if self.args else ""


def _as_array(value):
    """A NumPy array of ``value``, or ``value`` itself when it is a device (CuPy) array."""
    return value if hasattr(value, "__cuda_array_interface__") else np.asarray(value)


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` returns (PyTorch's ``_IncompatibleKeys``): the parameter names
    absent from the state dict and the state dict's names that are no parameter."""

    missing_keys: list
    unexpected_keys: list


class _HookHandle:
    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class Module:
    """Base class of layers and models. Subclasses set Parameters/Modules as attributes and define
    ``forward``; call the module itself (``model(x)``) to run ``forward`` and the forward hooks."""

    def __init__(self):
        self.training = True
        self._forward_hooks: list = []

    # ------------------------------------------------------------------ structure
    def named_children(self):
        """``(name, module)`` for each direct sub-module."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        """The direct sub-modules, in registration order."""
        return (m for _, m in self.named_children())

    def named_modules(self, prefix: str = ""):
        """``(dotted name, module)`` for this module (name ``""``) and every sub-module."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        """This module and every sub-module, depth first."""
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix: str = ""):
        """Yield ``(dotted_name, Parameter)`` pairs in definition order, each parameter once."""
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{mod_name}.{name}" if mod_name else name), value

    def parameters(self):
        """Every Parameter of this module and its sub-modules, each once, in registration order."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """The number of scalar parameters (elements over all parameters)."""
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ modes, gradients, devices
    def train(self, mode: bool = True):
        """Training mode (``training = mode``) for this module and its sub-modules; returns self."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        """Evaluation mode (``training = False``) for this module and its sub-modules; returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set ``.grad`` of every parameter to None."""
        params = list(self.parameters())
        for p in params:
            p.grad = None
        if capture.active() is not None:  # minivae.compile is recording a step
            capture.active().zero_grad(params)

    def to(self, device: str):
        """Move every parameter's data to ``device`` in place (the Parameter objects stay the same, so an
        optimizer built before keeps working; its state follows on the next step). Returns self.

        Raises GPUUnavailableError when "gpu" is asked for without CuPy or a device.
        """
        backend.check_device_name(device)
        for p in self.parameters():
            p.data = backend.to_device(p.data, device)
            if p.grad is not None:
                p.grad.data = backend.to_device(p.grad.data, device)
        return self

    @property
    def device(self) -> str:
        """The first parameter's device ("cpu" for a module without parameters)."""
        for _, p in self.named_parameters():  # the first one only: this runs every training step
            return p.device
        return backend.CPU

    # ------------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        """The module's computation (subclasses implement it); called by ``module(*inputs)``."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        """``self.forward(*args, **kwargs)`` (with the module's forward hooks, where registered)."""
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_hook(self, hook) -> _HookHandle:
        """Call ``hook(module, inputs, output)`` after every forward; a non-None return replaces the output.
        Returns a handle with ``.remove()``, as in PyTorch."""
        self._forward_hooks.append(hook)
        return _HookHandle(self._forward_hooks, hook)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameter name -> a NumPy copy of its data (host arrays, whatever the device)."""
        return OrderedDict((name, backend.to_device(p.data, backend.CPU).copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from ``state`` into the parameters (on their current device and dtype).

        Everything is checked and converted first, then assigned: when it raises, no parameter has changed.
        Returns ``IncompatibleKeys(missing_keys, unexpected_keys)`` (lists of names), as PyTorch does; with
        ``strict`` both are empty (otherwise it raises).

        Raises:
            StateDictError: with ``strict``, listing missing and unexpected keys; always, for a shape
                mismatch (naming the parameter and both shapes) or an entry that is not a number array.
        """
        if not isinstance(state, dict):
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__}: expected a dict of "
                                 f"arrays, got {type(state).__name__}")
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        problems = []
        if strict and (missing or unexpected):
            if missing:
                problems.append(f"missing keys: {', '.join(missing)}")
            if unexpected:
                problems.append(f"unexpected keys: {', '.join(map(str, unexpected))}")
        for name, p in params.items():
            if name not in state:
                continue
            try:
                kind = _as_array(state[name]).dtype.kind
            except (TypeError, ValueError):
                kind = "O"
            if kind not in "fiub":
                problems.append(f"{name} is not a number array")
            elif tuple(np.shape(state[name])) != p.shape:
                problems.append(f"shape mismatch for {name}: checkpoint has {tuple(np.shape(state[name]))}, "
                                f"model has {p.shape}")
        if problems:
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__}: " + "; ".join(problems))
        new = {}
        for name, p in params.items():  # convert everything before assigning anything
            if name in state:
                xp = backend.get_array_module(p.data)
                new[name] = xp.asarray(backend.to_device(_as_array(state[name]), p.device), dtype=p.dtype).copy()
        for name, data in new.items():
            params[name].data = data
        return IncompatibleKeys([] if strict else missing, [] if strict else unexpected)

    def extra_repr(self) -> str:
        """Extra text ``repr`` shows after the class name (subclasses override it)."""
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            lines += ["  " + line for line in f"({name}): {child!r}".splitlines()]
        return "\n".join(lines + [")"])
