"""The oracle's table, part 2: reductions (``dim=``/``keepdim=``), shape ops, joining and splitting, indexing."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from oracle_harness import Case
from oracle_inputs import reduction, shapes, tensors_along, values
from oracle_rows import FORWARD, Row

# --------------------------------------------------------------------------- reductions
_VAR_EXTRA = st.sampled_from([{}, {"correction": 0}, {"unbiased": False}])


@st.composite
def _var_case(draw):
    """``var``/``std`` with every reduced dim of size >= 2 (one element has no sample variance)."""
    case = draw(reduction(min_side=2, extra=_VAR_EXTRA))
    if case.args[0].ndim == 0:
        case = Case((values(draw, (3,)),), case.kwargs)
        case.kwargs.pop("dim", None), case.kwargs.pop("keepdim", None)
    return case


REDUCTIONS = [
    Row("Tensor.sum", lambda L, x, **k: x.sum(**k), reduction(), covers=("Tensor.sum",)),
    Row("F.sum", lambda L, x, **k: L.F.sum(x, **k), reduction(), covers=("F.sum",)),
    Row("Tensor.mean", lambda L, x, **k: x.mean(**k), reduction(), covers=("Tensor.mean",)),
    Row("F.mean", lambda L, x, **k: L.F.mean(x, **k), reduction(), covers=("F.mean",)),
    Row("Tensor.var", lambda L, x, **k: x.var(**k), _var_case(), covers=("Tensor.var",)),
    Row("Tensor.std", lambda L, x, **k: x.std(**k), _var_case(), covers=("Tensor.std",)),
    Row("Tensor.max", lambda L, x: x.max(), reduction(min_side=1, allow_tuple=False, allow_none=True,
                                                      keepdim=False).filter(lambda c: not c.kwargs),
        covers=("Tensor.max",)),
    Row("Tensor.max.dim", lambda L, x, **k: x.max(**k),
        reduction(min_side=1, allow_tuple=False, dim_required=True), covers=("Tensor.max",)),
    Row("Tensor.min", lambda L, x: x.min(), reduction(min_side=1, allow_tuple=False,
                                                      keepdim=False).filter(lambda c: not c.kwargs),
        covers=("Tensor.min",)),
    Row("Tensor.min.dim", lambda L, x, **k: x.min(**k),
        reduction(min_side=1, allow_tuple=False, dim_required=True), covers=("Tensor.min",)),
    Row("Tensor.amax", lambda L, x, **k: x.amax(**k), reduction(min_side=1), covers=("Tensor.amax",)),
    Row("Tensor.amin", lambda L, x, **k: x.amin(**k), reduction(min_side=1), covers=("Tensor.amin",)),
    Row("Tensor.argmax", lambda L, x, **k: x.argmax(**k), reduction(min_side=1, allow_tuple=False),
        covers=("Tensor.argmax",), modes=FORWARD),
    Row("Tensor.argmin", lambda L, x, **k: x.argmin(**k), reduction(min_side=1, allow_tuple=False),
        covers=("Tensor.argmin",), modes=FORWARD),
    Row("Tensor.logsumexp", lambda L, x, **k: x.logsumexp(**k), reduction(min_side=1, dim_required=True),
        covers=("Tensor.logsumexp",)),
    Row("Tensor.prod", lambda L, x, **k: x.prod(**k), reduction("near1", allow_tuple=False), covers=("Tensor.prod",)),
    Row("Tensor.norm", lambda L, x, **k: x.norm(**k),
        reduction("away0", min_side=1, extra=st.sampled_from([{}, {"p": 1}, {"p": 2}, {"p": 3}])),
        covers=("Tensor.norm",)),
]


# --------------------------------------------------------------------------- shapes
@st.composite
def _reshape_case(draw):
    shape = draw(shapes(0, 3, 0, 4))
    size = int(np.prod(shape))
    targets = [(-1,), shape + (1,), (1,) + shape, (size,)]
    if shape and shape[0] > 0:
        targets.append((shape[0], -1))
    if size % 2 == 0 and size > 0:
        targets.append((2, size // 2))
    target = draw(st.sampled_from(targets))
    return Case((values(draw, shape), target), {})


@st.composite
def _perm_case(draw, min_dims=1):  # PyTorch's x.permute() takes no empty permutation
    shape = draw(shapes(min_dims, 4, 0, 3))
    perm = draw(st.permutations(range(len(shape))))
    perm = tuple(p - len(shape) if draw(st.booleans()) else p for p in perm)
    return Case((values(draw, shape), perm), {})


@st.composite
def _two_dims(draw, min_dims=1):
    shape = draw(shapes(min_dims, 4, 0, 3))
    n = max(len(shape), 1)
    return Case((values(draw, shape), draw(st.integers(-n, n - 1)), draw(st.integers(-n, n - 1))), {})


@st.composite
def _unsqueeze_case(draw):
    shape = draw(shapes(0, 3, 0, 3))
    return Case((values(draw, shape), draw(st.integers(-len(shape) - 1, len(shape)))), {})


@st.composite
def _squeeze_case(draw):
    shape = draw(shapes(0, 4, 0, 2))
    n = max(len(shape), 1)
    kind = draw(st.sampled_from(["all", "int", "tuple"]))
    dims = () if kind == "all" else (draw(st.integers(-n, n - 1)),) if kind == "int" else \
        (tuple(draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))),)
    return Case((values(draw, shape),) + dims, {})


@st.composite
def _flatten_case(draw):
    shape = draw(shapes(0, 4, 0, 3))
    n = max(len(shape), 1)
    start = draw(st.integers(0, n - 1))
    end = draw(st.integers(start, n - 1))
    kw = {}
    if draw(st.booleans()):
        kw["start_dim"] = start - n if draw(st.booleans()) else start
    if draw(st.booleans()):
        kw["end_dim"] = end - n if draw(st.booleans()) else end
    if kw.get("start_dim", 0) % n > kw.get("end_dim", -1) % n:
        kw.pop("end_dim")
    return Case((values(draw, shape),), kw)


@st.composite
def _unflatten_case(draw):
    shape = draw(shapes(1, 3, 1, 4))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    s = shape[dim]
    d = draw(st.sampled_from([k for k in range(1, s + 1) if s % k == 0]))
    sizes = draw(st.sampled_from([(d, s // d), (d, -1), (-1, 1), (1, s)]))
    return Case((values(draw, shape), dim, sizes), {})


@st.composite
def _expand_case(draw):
    shape = draw(shapes(0, 3, 1, 3))
    sizes = [draw(st.sampled_from([-1, 3])) if n == 1 else draw(st.sampled_from([-1, n])) for n in shape]
    lead = draw(st.lists(st.integers(0, 2), min_size=0 if shape else 1, max_size=2))  # x.expand() needs a size
    return Case((values(draw, shape), tuple(lead + sizes)), {})


@st.composite
def _expand_as_case(draw):
    case = draw(_expand_case())
    x, sizes = case.args
    target = tuple(x.shape[i - len(sizes) + x.ndim] if n == -1 else n for i, n in enumerate(sizes))
    return Case((x, np.zeros(target)), {}, (0,))


@st.composite
def _repeat_case(draw):
    shape = draw(shapes(0, 3, 0, 3))
    reps = draw(st.lists(st.integers(0, 2), min_size=len(shape), max_size=len(shape) + 1))
    return Case((values(draw, shape), tuple(reps) or (1,)), {})


@st.composite
def _split_case(draw, chunks=False):
    shape = draw(shapes(1, 3, 0, 5))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[dim]
    if chunks:
        arg = draw(st.integers(1, 4))
    elif draw(st.booleans()) or n == 0:
        arg = draw(st.integers(1, 4))
    else:
        cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
        arg = [b - a for a, b in zip([0] + cuts, cuts + [n])]
    return Case((values(draw, shape), arg), {"dim": dim})


SHAPES = [
    Row("Tensor.view", lambda L, x, s: x.view(*s), _reshape_case(), covers=("Tensor.view",), layouts=("C",)),
    Row("Tensor.reshape", lambda L, x, s: x.reshape(*s), _reshape_case(), covers=("Tensor.reshape",)),
    Row("Tensor.reshape.tuple", lambda L, x, s: x.reshape(s), _reshape_case(), covers=("Tensor.reshape",)),
    Row("F.reshape", lambda L, x, s: L.F.reshape(x, s), _reshape_case(), covers=("F.reshape",)),
    Row("Tensor.permute", lambda L, x, p: x.permute(*p), _perm_case(), covers=("Tensor.permute",)),
    Row("Tensor.transpose", lambda L, x, a, b: x.transpose(a, b), _two_dims(), covers=("Tensor.transpose",)),
    Row("F.transpose", lambda L, x, a, b: L.F.transpose(x, a, b), _two_dims(), covers=("F.transpose",)),
    Row("Tensor.t", lambda L, x: x.t(), _perm_case(0).filter(lambda c: c.args[0].ndim <= 2)
        .map(lambda c: Case(c.args[:1], {})), covers=("Tensor.t",)),
    Row("Tensor.T", lambda L, x: x.T, _perm_case(0).filter(lambda c: c.args[0].ndim <= 2)
        .map(lambda c: Case(c.args[:1], {})), covers=("Tensor.T",)),
    Row("Tensor.mT", lambda L, x: x.mT, _perm_case().filter(lambda c: c.args[0].ndim >= 2)
        .map(lambda c: Case(c.args[:1], {})), covers=("Tensor.mT",)),
    Row("Tensor.unsqueeze", lambda L, x, d: x.unsqueeze(d), _unsqueeze_case(), covers=("Tensor.unsqueeze",)),
    Row("Tensor.squeeze", lambda L, x, *d: x.squeeze(*d), _squeeze_case(), covers=("Tensor.squeeze",)),
    Row("Tensor.flatten", lambda L, x, **k: x.flatten(**k), _flatten_case(), covers=("Tensor.flatten",)),
    Row("Tensor.unflatten", lambda L, x, d, s: x.unflatten(d, s), _unflatten_case(), covers=("Tensor.unflatten",)),
    Row("Tensor.expand", lambda L, x, s: x.expand(*s), _expand_case(), covers=("Tensor.expand",)),
    Row("Tensor.expand_as", lambda L, x, o: x.expand_as(o), _expand_as_case(), covers=("Tensor.expand_as",)),
    Row("F.broadcast_to", lambda L, x, o: L.F.broadcast_to(x, o.shape), _expand_as_case(),
        covers=("F.broadcast_to",)),
    Row("Tensor.repeat", lambda L, x, r: x.repeat(*r), _repeat_case(), covers=("Tensor.repeat",)),
    Row("mv.cat", lambda L, xs, dim: L.T.cat(xs, dim=dim), tensors_along(), covers=("mv.cat",)),
    Row("F.cat", lambda L, xs, dim: L.F.cat(xs, dim=dim), tensors_along(), covers=("F.cat",)),
    Row("F.concatenate", lambda L, xs, dim: L.F.concatenate(xs, axis=dim), tensors_along(),
        covers=("F.concatenate",)),
    Row("mv.stack", lambda L, xs, dim: L.T.stack(xs, dim=dim), tensors_along(same_shape=True, min_dims=0),
        covers=("mv.stack",)),
    Row("Tensor.split", lambda L, x, s, dim: x.split(s, dim=dim), _split_case(), covers=("Tensor.split",)),
    Row("F.split", lambda L, x, s, dim: L.F.split(x, s, dim=dim), _split_case(), covers=("F.split",)),
    Row("Tensor.chunk", lambda L, x, c, dim: x.chunk(c, dim=dim), _split_case(chunks=True),
        covers=("Tensor.chunk",)),
]


# --------------------------------------------------------------------------- indexing
@st.composite
def _basic_index(draw):
    """Slices (steps, negative bounds), ints, None and Ellipsis on a 1- to 3-d tensor."""
    shape = draw(shapes(1, 3, 1, 4))
    idx = []
    for n in shape:
        kind = draw(st.sampled_from(["slice", "int", "all"]))
        if kind == "int":
            idx.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            idx.append(slice(draw(st.none() | st.integers(-n - 1, n)), draw(st.none() | st.integers(-n - 1, n)),
                             draw(st.none() | st.integers(1, 3))))
        else:
            idx.append(slice(None))
    if draw(st.booleans()):
        idx.insert(draw(st.integers(0, len(idx))), None)
    if draw(st.booleans()) and len(idx) > 1:
        idx = [Ellipsis] + idx[draw(st.integers(1, len(idx))):]
    return Case((values(draw, shape), tuple(idx)), {})


@st.composite
def _int_array_index(draw):
    """An int64 index tensor (repeats and negative entries: the gradient accumulates) on one dim, maybe
    after a slice."""
    shape = draw(shapes(1, 3, 1, 4))
    n = shape[0]
    index = np.array(draw(st.lists(st.integers(-n, n - 1), min_size=0, max_size=5)), dtype=np.int64)
    index = index.reshape(draw(st.sampled_from([(-1,), (1, -1)]))) if index.size else index
    return Case((values(draw, shape), index), {})


@st.composite
def _bool_index(draw):
    shape = draw(shapes(1, 3, 0, 4))
    k = draw(st.integers(1, len(shape)))
    mask = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1))).random(shape[:k]) < 0.5
    return Case((values(draw, shape), mask), {})


def _setitem(L, x, index, v):
    y = x * 1.0
    y[index] = v
    return y


@st.composite
def _setitem_case(draw):
    case = draw(st.one_of(_basic_index(), _int_array_index(), _bool_index()))
    x, index = case.args
    v = draw(st.sampled_from([1.5, -2.0])) if draw(st.booleans()) else values(draw, np.zeros(x.shape)[index].shape)
    return Case((x, index, v), {})


INDEXING = [
    Row("Tensor.__getitem__.basic", lambda L, x, i: x[i], _basic_index(), covers=("Tensor.__getitem__",)),
    Row("Tensor.__getitem__.int_tensor", lambda L, x, i: x[i], _int_array_index(), covers=("Tensor.__getitem__",)),
    Row("Tensor.__getitem__.bool_tensor", lambda L, x, i: x[i], _bool_index(), covers=("Tensor.__getitem__",)),
    Row("F.getitem", lambda L, x, i: L.F.getitem(x, i), _int_array_index(), covers=("F.getitem",),
        torch_fn=lambda L, x, i: x[i]),
    Row("Tensor.__setitem__", _setitem, _setitem_case(), covers=("Tensor.__setitem__",), modes=FORWARD),
]


def rows():
    return REDUCTIONS + SHAPES + INDEXING
