"""The differential harness: one op, run by minivae and by PyTorch 2.13 (CPU) on the same inputs, in six modes.

An op is written once, as ``fn(L, *args, **kwargs)``, where ``L`` is minivae's or PyTorch's namespace
(``L.T``: the top-level module, ``L.F``: the functional module, ``L.float32``/``L.float64``/``L.int64``:
dtypes), so the same line (``x.sum(dim=1, keepdim=True)``, ``L.F.log_softmax(x, dim=-1)``) runs on both
libraries: that is the point of following PyTorch's API. A row may give a separate ``torch_fn`` where
minivae's name has no PyTorch twin (``kl_normal``).

Modes (each the same computation on both sides; PyTorch's side through ``torch.func``):

=====================  =====================================================  ===========================
mode                   minivae                                                PyTorch
=====================  =====================================================  ===========================
``forward``            values, shapes, dtypes of every output                 the same
``vjp``                ``autograd.grad(outs, xs, u)``                         ``torch.func.vjp``
``double_backward``    ``grad(<grad(outs, xs, u, create_graph), w>, xs)``     ``torch.func.grad`` of vjp
``jvp``                ``forward_ad`` dual tensors                            ``torch.func.jvp``
``fwd_over_rev``       the tangent of ``grad(outs, dual xs, u)``, with and   ``jvp`` of ``vjp``
                       without ``create_graph``
``rev_over_fwd``       ``grad(tangent of outs, xs, w)``                       ``vjp`` of ``jvp``
=====================  =====================================================  ===========================

``u`` (cotangents of the outputs), ``w`` (cotangents of the gradients or of the output tangents) and the
tangents ``t`` are random, from the example's seed. Tolerances: float64 ``1e-10``, float32 ``1e-5``,
relative, plus the same amount times the largest magnitude of PyTorch's array (at least 1) absolute, so that
an element that cancels (``sigmoid(x) - t`` in float32) is judged on the scale of its terms; shapes must
match exactly, dtypes too; NaN must match NaN.
"""
from __future__ import annotations

import types
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.func as tfunc
import torch.nn.functional as TF

import minivae as mv
import minivae.functional as MF
from minivae.autograd import forward_ad as mfw

MODES = ("forward", "vjp", "double_backward", "jvp", "fwd_over_rev", "rev_over_fwd")
DERIVATIVES = MODES[1:]
FIRST_ORDER = ("forward", "vjp", "jvp")
DTYPES = ("float64", "float32")
RTOL = {"float64": 1e-10, "float32": 1e-5}
LAYOUTS = ("C", "T", "strided", "reversed")

torch.set_num_threads(1)  # deterministic reductions on the PyTorch side, and no oversubscription


class _TorchF:
    """``torch.nn.functional`` with ``torch``'s elementwise functions as a fallback (``F.exp`` is minivae's
    name; PyTorch keeps it in ``torch``)."""

    def __getattr__(self, name):
        return getattr(TF, name) if hasattr(TF, name) else getattr(torch, name)


def _lib(name, top, functional, tensor):
    ns = types.SimpleNamespace(name=name, T=top, F=functional, tensor=tensor)
    for dt in ("float32", "float64", "int64", "bool"):
        setattr(ns, dt, getattr(top, dt, dt))  # minivae without dtype objects gets the NumPy name
    return ns


def _mv_tensor(a, requires_grad=False):
    return mv.Tensor(a, requires_grad=requires_grad)


def _torch_tensor(a, requires_grad=False):
    t = torch.from_numpy(np.array(a))  # a contiguous copy: PyTorch gets the values, minivae the layout
    return t.requires_grad_(requires_grad) if requires_grad else t


MV = _lib("minivae", mv, MF, _mv_tensor)
TORCH = _lib("torch", torch, _TorchF(), _torch_tensor)


@dataclass
class Case:
    """One example: ``args`` (NumPy float arrays become tensors of the dtype under test, other arrays
    tensors of their own dtype, anything else passes as is), ``kwargs``, and which args are differentiated."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    diff: tuple = (0,)

    def __repr__(self):
        def show(a):
            if isinstance(a, np.ndarray):
                body = np.array2string(a, precision=3, threshold=12) if a.dtype.kind != "f" else ""
                return f"array{a.shape}:{a.dtype}{(' ' + body) if body else ''}"
            return repr(a)
        return f"Case(args=[{', '.join(show(a) for a in self.args)}], kwargs={self.kwargs}, diff={self.diff})"


def with_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``a`` in another memory layout: C-contiguous, transposed (Fortran order),
    every other element of a bigger buffer, or reversed strides. 0-d and empty arrays stay as they are."""
    if a.ndim == 0 or a.size == 0 or layout == "C":
        return a
    if layout == "T":
        return np.asfortranarray(a) if a.ndim >= 2 else with_layout(a, "strided")
    if layout == "strided":
        buf = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        buf[..., ::2] = a
        return buf[..., ::2]
    rev = np.ascontiguousarray(a[..., ::-1])
    return rev[..., ::-1]


# --------------------------------------------------------------------------- inputs and outputs
def _host(t):
    if isinstance(t, torch.Tensor) and t._is_zerotensor():  # torch.func's symbolic zero
        return np.zeros(tuple(t.shape), _dtype_name(t))
    if isinstance(t, (torch.Tensor, mv.Tensor)):
        return t.detach().numpy()
    return np.asarray(t)


def _dtype_name(t) -> str:
    if isinstance(t, torch.Tensor):
        return str(t.dtype).replace("torch.", "")
    return str(np.dtype(t.dtype))


def _is_float(t) -> bool:
    return _dtype_name(t) in ("float32", "float64", "float16")


def flatten(out) -> list:
    """An op's result as a list of tensors (tuples, lists and named tuples are flattened; Python scalars
    are kept as 0-d arrays)."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flatten(o)]
    return [out]


def _make_inputs(L, case: Case, dtype: str, layouts, grad: bool):
    args, diff = [], []
    for i, a in enumerate(case.args):
        if isinstance(a, np.generic):  # a NumPy scalar from arithmetic on 0-d arrays is a 0-d tensor
            a = np.asarray(a)
        if isinstance(a, np.ndarray):
            if a.dtype.kind == "f":
                a = with_layout(a.astype(dtype), layouts[i % len(layouts)])
            t = L.tensor(a, requires_grad=grad and i in case.diff)
            if i in case.diff:
                diff.append(t)
            args.append(t)
        elif isinstance(a, list) and a and all(isinstance(x, np.ndarray) for x in a):  # a list of tensors (cat)
            ts = [L.tensor(with_layout(x.astype(dtype), layouts[k % len(layouts)]),
                           requires_grad=grad and i in case.diff) for k, x in enumerate(x_ for x_ in a)]
            if i in case.diff:
                diff.extend(ts)
            args.append(ts)
        else:
            args.append(a)
    return args, diff


def _closure(fn, L, case, args):
    """``h(*xs)``: the op with the differentiated tensors replaced by ``xs``; returns its float outputs."""
    def h(*xs):
        it = iter(xs)
        new = []
        for i, a in enumerate(args):
            if i in case.diff:
                new.append([next(it) for _ in a] if isinstance(a, list) else next(it))
            else:
                new.append(a)
        return tuple(o for o in flatten(fn(L, *new, **case.kwargs)) if _is_float(o))
    return h


# --------------------------------------------------------------------------- the modes, minivae's side
def _mv_zeros(x):
    return mv.Tensor(np.zeros(x.shape, dtype=x.dtype))


def _mv_grad(outs, xs, seeds, create_graph=False):
    pairs = [(o, s) for o, s in zip(outs, seeds) if getattr(o, "requires_grad", False)]
    if not pairs:
        return [_mv_zeros(x) for x in xs]
    gs = mv.autograd.grad([o for o, _ in pairs], list(xs), grad_outputs=[s for _, s in pairs],
                          create_graph=create_graph, allow_unused=True)
    return [_mv_zeros(x) if g is None else g for g, x in zip(gs, xs)]


def _mv_dot(gs, ws):
    total = None
    for g, w in zip(gs, ws):
        term = (g * w).sum()
        total = term if total is None else total + term
    return total


def run_minivae(mode, fn, case, dtype, layouts, rand):
    grad = mode != "forward" and mode != "jvp"
    args, xs = _make_inputs(MV, case, dtype, layouts, grad)
    h = _closure(fn, MV, case, args)
    if mode == "forward":
        return flatten(fn(MV, *args, **case.kwargs))
    T = mv.Tensor
    if mode == "vjp":
        outs = h(*xs)
        return _mv_grad(outs, xs, [T(u) for u in rand["u"]])
    if mode == "double_backward":
        outs = h(*xs)
        gs = _mv_grad(outs, xs, [T(u) for u in rand["u"]], create_graph=True)
        s = _mv_dot(gs, [T(w) for w in rand["w_in"]])
        return _mv_grad([s], xs, [mv.Tensor(np.ones((), s.dtype))]) if s is not None else [_mv_zeros(x) for x in xs]
    with mfw.dual_level():
        duals = [mfw.make_dual(x, T(t)) for x, t in zip(xs, rand["t"])]
        if mode == "jvp":
            outs = h(*duals)
            return [_tangent(o) for o in outs]
        if mode == "fwd_over_rev":  # with and without create_graph: tangents flow through either backward
            results = []
            for create_graph in (False, True):
                outs = h(*duals)
                gs = _mv_grad(outs, duals, [T(u) for u in rand["u"]], create_graph=create_graph)
                results += [_tangent(g) for g in gs]
            return results
        outs = h(*duals)  # rev_over_fwd
        tangents = [_tangent(o) for o in outs]
    return _mv_grad(tangents, xs, [T(w) for w in rand["w_out"]])


def _tangent(t):
    tan = mfw.unpack_dual(t).tangent
    return _mv_zeros(t) if tan is None else tan


# --------------------------------------------------------------------------- the modes, PyTorch's side
def run_torch(mode, fn, case, dtype, rand):
    args, xs = _make_inputs(TORCH, case, dtype, ("C",), False)
    h = _closure(fn, TORCH, case, args)
    if mode == "forward":
        return flatten(fn(TORCH, *args, **case.kwargs))
    T = torch.from_numpy
    us = tuple(T(u) for u in rand["u"])
    ts = tuple(T(t) for t in rand["t"])

    def vjp(*x):
        return tfunc.vjp(h, *x)[1](us)

    def jvp(*x):
        return tfunc.jvp(h, x, ts)[1]

    if mode == "vjp":
        return vjp(*xs)
    if mode == "double_backward":
        ws = tuple(T(w) for w in rand["w_in"])

        def dot(*x):
            return sum((g * w).sum() for g, w in zip(vjp(*x), ws))
        return tfunc.grad(dot, argnums=tuple(range(len(xs))))(*xs)
    if mode == "jvp":
        return jvp(*xs)
    if mode == "fwd_over_rev":  # the same numbers twice: minivae's backward without, then with create_graph
        return 2 * tuple(tfunc.jvp(vjp, tuple(xs), ts)[1])
    ws = tuple(T(w) for w in rand["w_out"])
    return tfunc.vjp(jvp, *xs)[1](ws)


# --------------------------------------------------------------------------- one check
def random_directions(fn, case, dtype, seed):
    """The torch forward (to learn the float outputs' shapes) and, from ``seed``: ``u`` (one per float
    output), ``t`` and ``w_in`` (one per differentiated input), ``w_out`` (one per float output)."""
    args, xs = _make_inputs(TORCH, case, dtype, ("C",), False)
    outs = [o for o in flatten(fn(TORCH, *args, **case.kwargs)) if _is_float(o)]
    rng = np.random.default_rng(seed)

    def draw(like):  # in the dtype of the tensor it is a direction of (an output may differ: casts)
        return rng.standard_normal(tuple(like.shape)).astype(_dtype_name(like))
    return {"u": [draw(o) for o in outs], "w_out": [draw(o) for o in outs],
            "t": [draw(x) for x in xs], "w_in": [draw(x) for x in xs]}


def assert_same(mode, got, want, dtype, rtol=None, rand=None):
    """minivae's results ``got`` against PyTorch's ``want`` (lists of tensors): count, shape, dtype, values
    within the dtype's tolerance. A derivative's dtype must be that of what it is the derivative of (the input
    for gradients, the output for tangents): torch.func itself sometimes promotes a tangent to float64 (the
    tangent of ``2.5 + x`` for a 0-d float32 ``x``), so PyTorch's derivative dtypes are not the reference."""
    rtol = RTOL[dtype] if rtol is None else rtol
    got, want = list(got), list(want)
    assert len(got) == len(want), f"{mode}: minivae gave {len(got)} results, PyTorch {len(want)}"
    like = None if mode == "forward" else rand["u"] if mode == "jvp" else rand["t"] * (2 if mode == "fwd_over_rev"
                                                                                      else 1)
    for k, (g, w) in enumerate(zip(got, want)):
        wa = _host(w)
        ga = _host(g)
        assert ga.shape == wa.shape, f"{mode} result {k}: shape {ga.shape}, PyTorch {wa.shape}"
        gd = _dtype_name(g) if hasattr(g, "dtype") else str(ga.dtype)
        wd = (_dtype_name(w) if hasattr(w, "dtype") else str(wa.dtype)) if like is None else str(like[k].dtype)
        assert gd == wd, f"{mode} result {k}: dtype {gd}, {'PyTorch' if like is None else 'expected'} {wd}"
        if wa.dtype.kind in "biu":
            np.testing.assert_array_equal(ga, wa, err_msg=f"{mode} result {k}")
            continue
        scale = float(np.nanmax(np.abs(wa[np.isfinite(wa)]))) if np.isfinite(wa).any() else 0.0
        np.testing.assert_allclose(ga, wa, rtol=rtol, atol=rtol * max(scale, 1.0), equal_nan=True,
                                   err_msg=f"{mode} result {k} ({dtype})")


def check(row, mode, dtype, case, layouts, seed):
    """Run ``row`` in ``mode`` on both libraries and compare."""
    rand = {} if mode == "forward" else random_directions(row.torch_fn, case, dtype, seed)
    want = run_torch(mode, row.torch_fn, case, dtype, rand)
    got = run_minivae(mode, row.fn, case, dtype, layouts, rand)
    assert_same(mode, got, want, dtype, rtol=row.rtol.get(dtype), rand=rand)
