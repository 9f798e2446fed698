"""Shape ops with PyTorch's names and semantics: reshape / view, permute, transpose(dim0, dim1), t, mT,
squeeze, unsqueeze, flatten, unflatten.

All are linear, so each JVP is the op itself applied to the tangent, and each VJP is the adjoint shape op
(reshape back, the inverse permutation). Where NumPy returns a view of the input, so does minivae, and the
output shares the input's version counter (an in-place change through either is seen by backward).
Joining and splitting live in :mod:`minivae.ops.joining`, indexing in :mod:`minivae.ops.indexing`.
"""
from __future__ import annotations

from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.ops.broadcast import BroadcastTo, broadcast_to  # noqa: F401  (re-exported: a shape op too)
from minivae.ops.validate import normalize_dim, normalize_dims


def _shape_arg(shape) -> tuple:
    """``f(2, 3)`` or ``f((2, 3))`` as a tuple of ints."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(n) for n in shape)


class Reshape(Function):
    """``y = x.reshape(shape)``; VJP ``gx = gy.reshape(x.shape)``; JVP ``dy = dx.reshape(shape)``."""

    is_view = True

    def __init__(self, shape: tuple):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise RuntimeError(f"shape {list(self.shape)} is invalid for input of size {x.size} "
                               f"(shape {tuple(x.shape)})") from None

    def backward(self, gy):
        return Reshape.apply(gy, shape=self.in_shape)

    def jvp(self, dx):
        return Reshape.apply(dx, shape=self.shape)


def reshape(x, *shape) -> Tensor:
    """``x`` with a new ``shape`` (one entry may be -1), as ``torch.reshape``: a view when possible, else a copy.

    Raises RuntimeError when the number of elements differs."""
    return Reshape.apply(x, shape=_shape_arg(shape))


def view(x, *shape) -> Tensor:
    """``x`` with a new ``shape`` sharing its memory, as ``Tensor.view``.

    Raises RuntimeError when the number of elements differs, or when the memory layout does not allow a view
    (a transposed tensor, say): use :func:`reshape`, which copies then."""
    x = as_tensor(x)
    shape = _shape_arg(shape)
    try:
        x.data.reshape(shape, copy=False) if hasattr(x.data, "__array_namespace__") else x.data.reshape(shape)
    except ValueError as e:
        if "copy" not in str(e):
            raise RuntimeError(f"view: shape {list(shape)} is invalid for input of size {x.numel()} "
                               f"(shape {x.shape})") from None
        raise RuntimeError(f"view: shape {list(shape)} is not compatible with the input's memory layout (shape "
                           f"{x.shape}, strides {x.data.strides}): use .reshape(...) instead") from None
    return Reshape.apply(x, shape=shape)


class Permute(Function):
    """``y = x.permute(perm)``; VJP ``gx = gy.permute(inverse(perm))``; JVP ``dy = dx.permute(perm)``."""

    is_view = True

    def __init__(self, perm: tuple):
        self.perm = perm

    def forward(self, x):
        return x.transpose(self.perm)

    def backward(self, gy):
        inverse = [0] * len(self.perm)
        for i, p in enumerate(self.perm):
            inverse[p] = i
        return Permute.apply(gy, perm=tuple(inverse))

    def jvp(self, dx):
        return Permute.apply(dx, perm=self.perm)


def permute(x, *dims) -> Tensor:
    """``x`` with its dimensions reordered: output dim ``i`` is input dim ``dims[i]`` (``torch.permute``).

    Raises ValueError when ``dims`` is not a permutation of the dims, IndexError for a dim out of range."""
    x = as_tensor(x)
    dims = _shape_arg(dims)
    perm = tuple(normalize_dim(d, x.ndim, "permute") for d in dims)
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {x.ndim} dimensions")
    return Permute.apply(x, perm=perm)


def transpose(x, dim0: int, dim1: int) -> Tensor:
    """``x`` with dims ``dim0`` and ``dim1`` swapped (``torch.transpose``; not NumPy's axes permutation: use
    :func:`permute` for that). Raises IndexError for a dim out of range."""
    x = as_tensor(x)
    perm = list(range(x.ndim))
    if x.ndim == 0:
        normalize_dim(dim0, 0, "transpose"), normalize_dim(dim1, 0, "transpose")
        return Permute.apply(x, perm=())
    a, b = normalize_dim(dim0, x.ndim, "transpose"), normalize_dim(dim1, x.ndim, "transpose")
    perm[a], perm[b] = perm[b], perm[a]
    return Permute.apply(x, perm=tuple(perm))


def t(x) -> Tensor:
    """The transpose of a matrix (a tensor of at most 2 dims is returned transposed), as ``torch.t``.

    Raises RuntimeError for more than 2 dims."""
    x = as_tensor(x)
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but got {x.ndim}: use transpose(dim0, dim1)")
    return transpose(x, 0, 1) if x.ndim == 2 else Permute.apply(x, perm=tuple(range(x.ndim)))


def reverse_dims(x) -> Tensor:
    """``x.T``: every dimension reversed (PyTorch's ``Tensor.T``)."""
    x = as_tensor(x)
    return Permute.apply(x, perm=tuple(range(x.ndim))[::-1])


def swap_last(x) -> Tensor:
    """``x.mT``: the last two dims swapped (the matrix transpose of a batch of matrices).

    Raises RuntimeError for fewer than 2 dims."""
    x = as_tensor(x)
    if x.ndim < 2:
        raise RuntimeError(f"mT: needs a tensor with at least 2 dimensions, got shape {x.shape}")
    return transpose(x, -2, -1)


def unsqueeze(x, dim: int) -> Tensor:
    """``x`` with a new dim of size 1 inserted at ``dim`` (in ``[-ndim-1, ndim]``), as ``torch.unsqueeze``."""
    x = as_tensor(x)
    d = normalize_dim(dim, x.ndim + 1, "unsqueeze")
    return Reshape.apply(x, shape=x.shape[:d] + (1,) + x.shape[d:])


def squeeze(x, dim=None) -> Tensor:
    """``x`` without its size-1 dims (all of them, or those among ``dim``: an int or tuple; a named dim whose size
    is not 1 is left as is), as ``torch.squeeze``."""
    x = as_tensor(x)
    dims = range(x.ndim) if dim is None else normalize_dims(dim, x.ndim, "squeeze")
    drop = {d for d in dims if x.shape[d] == 1}
    return Reshape.apply(x, shape=tuple(n for i, n in enumerate(x.shape) if i not in drop))


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """``x`` with dims ``start_dim..end_dim`` merged into one, as ``torch.flatten`` (a 0-d tensor becomes 1-d)."""
    x = as_tensor(x)
    if x.ndim == 0:
        return Reshape.apply(x, shape=(1,))
    a, b = normalize_dim(start_dim, x.ndim, "flatten"), normalize_dim(end_dim, x.ndim, "flatten")
    if a > b:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = 1
    for n in x.shape[a:b + 1]:
        merged *= n
    return Reshape.apply(x, shape=x.shape[:a] + (merged,) + x.shape[b + 1:])


def unflatten(x, dim: int, sizes) -> Tensor:
    """``x`` with dim ``dim`` split into ``sizes`` (one may be -1), as ``torch.unflatten``.

    Raises RuntimeError when the sizes do not multiply to the dim's length."""
    x = as_tensor(x)
    d = normalize_dim(dim, x.ndim, "unflatten")
    sizes = tuple(int(n) for n in sizes)
    if sizes.count(-1) == 1:
        known = 1
        for n in sizes:
            known *= n if n != -1 else 1
        sizes = tuple((x.shape[d] // known if known else 0) if n == -1 else n for n in sizes)
    total = 1
    for n in sizes:
        total *= n
    if total != x.shape[d]:
        raise RuntimeError(f"unflatten: sizes {list(sizes)} don't multiply up to the size of dim {dim} "
                           f"({x.shape[d]}) in the input")
    return Reshape.apply(x, shape=x.shape[:d] + sizes + x.shape[d + 1:])


def expand(x, *sizes) -> Tensor:
    """``x`` broadcast to ``sizes`` (-1 keeps a dim's size; new dims go in front), as ``Tensor.expand``; the result
    owns its memory (PyTorch returns a stride-0 view). Raises RuntimeError for a size that can't be expanded."""
    x = as_tensor(x)
    sizes = _shape_arg(sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to the "
                           f"number of dimensions in the tensor ({x.ndim})")
    shape = tuple(x.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    for i in range(x.ndim):
        if x.shape[i] != 1 and x.shape[i] != shape[lead + i]:
            raise RuntimeError(f"expand: the expanded size {shape[lead + i]} must match the existing size "
                               f"{x.shape[i]} at dim {lead + i} (shape {x.shape} -> {list(sizes)})")
    return broadcast_to(x, shape)


__all__ = ["reshape", "view", "permute", "transpose", "t", "reverse_dims", "swap_last", "unsqueeze", "squeeze",
           "flatten", "unflatten", "expand", "broadcast_to", "Reshape", "Permute"]
