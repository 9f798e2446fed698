"""``Tensor``: an array (NumPy on the CPU, CuPy on the GPU) plus what reverse mode needs.

Arithmetic operators and methods such as ``x.relu()`` are installed by :mod:`minivae.ops` (the layer
below), as Chainer does, so this module stays about the graph.
"""
from __future__ import annotations

import numbers

import numpy as np

from minivae import backend


def _as_array(data, dtype=None):
    """Array from ``data``; Python floats and lists of them become float32, as in PyTorch."""
    if isinstance(data, Tensor):
        data = data.data
    if backend.is_gpu_array(data) or isinstance(data, np.ndarray):
        return data if dtype is None else data.astype(dtype, copy=False)
    arr = np.asarray(data, dtype=dtype)
    if dtype is None and arr.dtype == np.float64 and not isinstance(data, np.generic):
        arr = arr.astype(np.float32)
    return arr


class Tensor:
    """An n-dimensional array that records the operations applied to it for reverse-mode autodiff.

    Args:
        data: a NumPy or CuPy array, a Python scalar or a nested list (Python floats become float32).
        requires_grad: whether ``backward`` should compute ``.grad`` for this tensor (floating dtypes only).
        dtype: optional dtype to convert ``data`` to.
    Raises:
        TypeError: ``requires_grad=True`` on a non-floating dtype.

    Attributes: ``data`` (the array), ``grad`` (a Tensor of the same shape, or None), ``requires_grad``,
    ``shape``, ``dtype``, ``ndim``, ``device`` ("cpu" or "gpu").
    """

    __array_priority__ = 1000  # so that ndarray + Tensor calls Tensor.__radd__

    # class-level defaults: a tensor made by an op (``_make``) sets only ``data`` and ``requires_grad``
    grad = None
    _ctx = None  # the Function that produced this tensor (None for leaves)
    _output_index = 0
    _hooks: tuple | list = ()
    _retain_grad = False
    _fw_tangent = None  # (level, tangent Tensor) inside ``forward_ad.dual_level``

    @classmethod
    def _make(cls, data, requires_grad: bool = False) -> Tensor:
        """A Tensor around an array an op produced (no checks, no copy; NumPy scalars become 0-d arrays)."""
        t = object.__new__(cls)
        if isinstance(data, np.generic):
            data = np.asarray(data)
        t.data = data
        t.requires_grad = requires_grad
        return t

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        if self.data.dtype.kind not in "biuf":
            raise TypeError(f"Tensor needs numeric data (bool, int or float), got dtype {self.data.dtype} "
                            f"from {type(data).__name__}")
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)

    # ------------------------------------------------------------------ array-like attributes
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        """The Function that created this tensor, or None for a leaf."""
        return self._ctx

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self.requires_grad else ""
        dev = ", device='gpu'" if self.device == backend.GPU else ""
        body = np.array2string(self.numpy(), precision=4, separator=", ", threshold=20, prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{dev}{extra})"

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU when needed)."""
        return backend.to_device(self.data, backend.CPU)

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)`` gives ``t.data`` (CPU tensors only, as PyTorch's; no graph is kept).

        Raises TypeError for a GPU tensor: copy it with ``.numpy()`` or ``.to("cpu")`` first.
        """
        if self.device != backend.CPU:
            raise TypeError("can't convert a GPU tensor to a NumPy array: use t.numpy() or t.to('cpu') "
                            "to copy it to the host first")
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def item(self) -> float:
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor(self.data)

    def to(self, device: str) -> Tensor:
        """This tensor on ``device`` ("cpu" or "gpu"); ``self`` if it is already there.

        The copy is a new leaf keeping ``requires_grad``. Raises GPUUnavailableError when the GPU is missing.
        """
        if self.device == backend.check_device_name(device):
            return self
        return Tensor(backend.to_device(self.data, device), requires_grad=self.requires_grad)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = flag
        return self

    # ------------------------------------------------------------------ gradients
    def zero_grad(self) -> None:
        self.grad = None

    def register_hook(self, hook) -> None:
        """Call ``hook(grad) -> Tensor or None`` with this tensor's gradient (a Tensor of its shape) during
        backward; a returned Tensor replaces the gradient, as in PyTorch. With ``create_graph=True`` the
        gradient carries a graph and what the hook computes is differentiated too.

        Raises RuntimeError on a tensor that does not require grad.
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if not isinstance(self._hooks, list):
            self._hooks = []
        self._hooks.append(hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep theirs)."""
        self._retain_grad = True

    def _apply_hooks(self, grad: Tensor, keep_graph: bool) -> Tensor:
        for hook in self._hooks:
            out = hook(grad)
            if out is not None:
                if not isinstance(out, Tensor):
                    out = Tensor(out)
                if out.shape != grad.shape or out.dtype != grad.dtype:
                    raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} returned a gradient of shape "
                                       f"{out.shape} and dtype {out.dtype}; expected {grad.shape} and {grad.dtype}")
                grad = out
        if self._retain_grad and self._ctx is not None:
            self._store_grad(grad, keep_graph)
        return grad

    def _store_grad(self, grad: Tensor, keep_graph: bool) -> None:
        """``.grad += grad``: a detached copy unless ``keep_graph`` (``create_graph=True``)."""
        if not keep_graph:
            grad = Tensor._make(grad.data.copy())
        self.grad = grad if self.grad is None else (self.grad + grad if keep_graph else
                                                    Tensor._make(self.grad.data + grad.data))

    def backward(self, grad=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        Args:
            grad: gradient of some scalar w.r.t. this tensor (array or Tensor of its shape); may be
                omitted only for a tensor with one element (then it is 1).
            retain_graph: keep the saved tensors so that backward can run through the graph again
                (default: ``create_graph``).
            create_graph: record the backward pass itself, so that ``.grad`` can be differentiated again
                (Hessian-vector products, gradient penalties); costs memory and time.
        Raises:
            RuntimeError: the tensor does not require grad; a non-scalar tensor without ``grad``;
                a second backward through a freed graph; ``create_graph=True`` under ``no_grad``.
            ValueError: ``grad`` has the wrong shape.
        """
        from minivae.autograd import engine

        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and has no grad_fn: "
                               "create the inputs with requires_grad=True")
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs; this tensor "
                                   f"has shape {self.shape}: call backward(grad) with a gradient of that shape")
        else:
            g = grad.data if isinstance(grad, Tensor) else _as_array(grad)
            if tuple(g.shape) != self.shape:
                raise ValueError(f"backward(grad): grad has shape {tuple(g.shape)}, expected {self.shape}")
        engine.backward((self,), None if grad is None else (grad,), retain_graph=retain_graph,
                        create_graph=create_graph)


def as_tensor(x, dtype=None) -> Tensor:
    """``x`` if it is a Tensor, else a constant Tensor (no grad) wrapping it."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, numbers.Number) and dtype is None:
        return Tensor(np.asarray(x))
    return Tensor(x, dtype=dtype)
