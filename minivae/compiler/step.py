""":class:`CompiledStep`: what ``minivae.compile(fn)`` returns; it decides, call by call, to run eagerly, to
record, or to replay a plan.

For each guard key (the inputs' shapes, dtypes and devices, the values of non-Tensor arguments, the kernel
selection and grad mode):

1. the first call runs eagerly, recorded (only to compare with the next);
2. the second call runs eagerly, recorded again; when both recordings ran the same ops, the second becomes the
   plan (the passes of :mod:`minivae.compiler.passes` rewrite it); when they differ, :class:`CaptureError` names the
   first op that differs (the step's Python control flow depends on the data: it cannot be one plan);
3. later calls replay the plan.

A few plans are kept (``max_plans``, least recently used out first): a last batch of another size captures its own
plan once and keeps it. A new key after the first plan warns once (:class:`RecaptureWarning`), not per step.
"""
from __future__ import annotations

import functools
import warnings
from collections import OrderedDict

from minivae import kernels
from minivae.autograd import capture, grad_mode
from minivae.autograd.tensor import Tensor
from minivae.backend import device_of, is_gpu_array
from minivae.compiler import check, passes
from minivae.compiler.plan import Plan
from minivae.compiler.record import CaptureError, Recorder


class RecaptureWarning(UserWarning):
    """A compiled step met new input shapes (or dtypes, device, kernels, grad mode) and captures a new plan."""


def _is_array(a) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype") and (is_gpu_array(a) or type(a).__module__ == "numpy")


class CompiledStep:
    """A step function compiled by :func:`minivae.compile` (see the module docstring).

    Attributes:
        plan: the plan of the latest call (None before the second call): ``plan.summary()``,
            ``plan.plot_memory()``.
        plans: every kept plan, by guard key.
        captures: how many plans were captured so far.
    """

    def __init__(self, fn, check: bool = False, passes=None, max_plans: int = 8):
        if not callable(fn):
            raise TypeError(f"compile: expected a function, got {type(fn).__name__}")
        functools.update_wrapper(self, fn)
        self.fn, self.check, self.max_plans = fn, bool(check), int(max_plans)
        self.options = _options(passes)
        self.plans: OrderedDict = OrderedDict()
        self.plan: Plan | None = None
        self.captures = 0
        self._first: dict = {}  # key -> signature of the first (eager, recorded) call

    # ------------------------------------------------------------------ the call
    def __call__(self, *args):
        arrays, key = self._guard(args)
        plan = self.plans.get(key)
        if plan is not None:
            self.plans.move_to_end(key)
            self.plan = plan
            if self.check:
                return self._checked(plan, args, arrays)
            return _rebuild(plan.structure, plan.replay(arrays))
        if key not in self._first:
            if self.plans and not any(k[1:] == key[1:] for k in self._first):
                warnings.warn(f"minivae.compile: {self.__name__} called with {_describe(key)}: capturing a new plan "
                              f"({len(self.plans)} other plan(s) kept)", RecaptureWarning, stacklevel=2)
            rec, result = self._record(args, arrays)
            first = Plan(rec, *_flatten(result, rec), label=self.__name__)
            self._first[key] = (first.signature(), _constants(rec))
            return result
        rec, result = self._record(args, arrays)
        outputs, structure = _flatten(result, rec)
        plan = Plan(rec, outputs, structure, label=self.__name__)
        signature, constants = self._first.pop(key)
        _compare(self.__name__, signature, plan.signature())
        _compare_constants(self.__name__, plan, constants, _constants(rec))
        passes.run(plan, self.options)
        self.plans[key] = self.plan = plan
        self.captures += 1
        while len(self.plans) > self.max_plans:
            self.plans.popitem(last=False)
        return result

    def _guard(self, args):
        """The step's input arrays (from its Tensor and array arguments, in order) and the plan's guard key."""
        arrays, parts = [], []
        for a in args:
            data = a.data if isinstance(a, Tensor) else a
            if _is_array(data):
                arrays.append(data)
                parts.append((tuple(data.shape), str(data.dtype), device_of(data)))
            else:
                try:
                    hash(a)
                except TypeError:
                    raise TypeError(f"compile: {self.__name__}: argument of type {type(a).__name__} is neither a "
                                    "Tensor, an array nor a hashable value; pass Tensors (other values are guards "
                                    "of the plan)") from None
                parts.append(("value", a))
        return arrays, (tuple(parts), kernels.selection(), grad_mode.is_grad_enabled())

    def _record(self, args, arrays, snapshots: bool = False):
        rec = Recorder(arrays, snapshots=snapshots)
        with capture.recording(rec):
            result = self.fn(*args)
        if not rec.nodes:
            raise CaptureError(f"compile: {self.__name__} ran no Tensor operation: there is nothing to compile "
                               "(a compiled step takes Tensors and runs forward, backward and optimizer.step())")
        return rec, result

    def _checked(self, plan, args, arrays):
        before = check.State(plan)
        rec, result = self._record(args, arrays, snapshots=True)
        after = check.State(plan)
        before.restore()
        try:
            problem = check.compare_replay(plan, arrays, rec.values)
        except Exception:
            after.restore()
            raise
        if problem is None:
            problem = "; ".join(check.State(plan).differences(after)) or None
            problem = problem and f"after the replay, these differ from eager: {problem}"
        after.restore()
        if problem is not None:
            raise check.CheckError(f"compile(check=True): {self.__name__}: {problem}")
        return result

    def __repr__(self) -> str:
        return f"<compiled {self.__name__}: {len(self.plans)} plan(s), passes {self.options}>"


def _options(given) -> dict:
    options = dict(passes.DEFAULTS)
    for name, on in (given or {}).items():
        if name not in options:
            raise ValueError(f"compile: unknown pass {name!r}; passes: {', '.join(options)}")
        options[name] = bool(on)
    return options


def _describe(key) -> str:
    shapes = ", ".join(("x".join(map(str, p[0])) or "()") + f" {p[1]}" if p[0] != "value" else repr(p[1])
                       for p in key[0])
    return f"new inputs ({shapes})"


def _compare(name, first, second) -> None:
    """Raise CaptureError naming the first node where two recordings of one step differ."""
    for k, (a, b) in enumerate(zip(first, second)):
        if a != b:
            raise CaptureError(f"compile: {name} ran different operations in two calls with the same input shapes: "
                               f"operation {k} was {a[0]} {list(a[1])} then {b[0]} {list(b[1])}. The step's Python "
                               "control flow depends on the data (an if on .item()?): such a step can't be one "
                               "plan; run it eagerly")
    if len(first) != len(second):
        k = min(len(first), len(second))
        extra = (first if len(first) > k else second)[k][0]
        raise CaptureError(f"compile: {name} ran {len(first)} operations in one call and {len(second)} in the next "
                           f"(first extra operation {k}: {extra}); the step's control flow depends on the data")


def _constants(rec) -> dict:
    """Copies of the arrays a recorded step read without making them in an op: constants and tensors that do not
    require grad (parameters do, and change between calls by design)."""
    out = {}
    for s, (kind, v) in enumerate(rec.sources):
        if kind == "constant" or (kind == "tensor" and not v.requires_grad):
            out[s] = rec.arrays[s].copy()
    return out


def _compare_constants(name, plan, first, second) -> None:
    """Raise CaptureError when an array the plan would hold constant changed between the two recordings: Python
    code made it from this step's data (outside any op), or the step reads per-step data from outside its
    arguments; a replay would reuse the old values."""
    for s in sorted(set(first) & set(second)):
        a, b = first[s], second[s]
        if a.shape == b.shape and a.dtype == b.dtype and check._same(a, b):
            continue
        reader = next((k for k, n in enumerate(plan.nodes) if s in n.ins), None)
        what = f"operation {reader} ({plan.nodes[reader].name})" if reader is not None else "the step's result"
        raise CaptureError(
            f"compile: {name}: {what} reads an array of shape {tuple(a.shape)} that no recorded op made, and its "
            "values changed between two calls: a replay would reuse the old ones. Pass per-step data as an "
            "argument of the step, and compute masks and constants with minivae ops, not on .data")


def _flatten(result, rec):
    """The slots of the Tensors ``result`` holds and a structure to rebuild it from replayed arrays."""
    slots = []

    def walk(x):
        if isinstance(x, Tensor):
            slots.append(rec.slot_of(x.data, x))
            return ("tensor", len(slots) - 1)
        if x is None:
            return ("none",)
        if isinstance(x, (tuple, list)):
            return (type(x), [walk(v) for v in x])
        if isinstance(x, dict):
            return (dict, list(x), [walk(v) for v in x.values()])
        raise CaptureError(f"compile: the step returned a {type(x).__name__}; a compiled step returns Tensors "
                           "(or tuples, lists and dicts of them): a Python number would be the first call's "
                           "forever. Return the Tensor and call .item() on the result")
    return slots, walk(result)


def _rebuild(structure, arrays):
    kind = structure[0]
    if kind == "tensor":
        return Tensor._make(arrays[structure[1]])
    if kind == "none":
        return None
    if kind is dict:
        return {k: _rebuild(s, arrays) for k, s in zip(structure[1], structure[2])}
    return kind(_rebuild(s, arrays) for s in structure[1])
