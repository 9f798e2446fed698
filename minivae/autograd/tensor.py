"""``Tensor``: an array (NumPy on the CPU, CuPy on the GPU) plus what reverse mode needs.

Arithmetic operators and methods such as ``x.relu()`` are installed by :mod:`minivae.ops` (the layer
below), as Chainer does, so this module stays about the graph.
"""
from __future__ import annotations

import numbers

import numpy as np

from minivae import backend
from minivae.autograd import capture


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


class VersionCounter:
    """How many times a tensor's data was changed in place (PyTorch's version counter); shared by a tensor and
    the views of its data, so that a change through either is seen by a backward that saved the other."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


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
    _base = None  # the tensor whose memory this one views (set by view ops, as PyTorch's ``._base``)

    @classmethod
    def _make(cls, data, requires_grad: bool = False) -> Tensor:
        """A Tensor around an array an op produced (no checks, no copy; NumPy scalars become 0-d arrays)."""
        t = object.__new__(cls)
        if isinstance(data, np.generic):
            data = np.asarray(data)
        t.data = data
        t.requires_grad = requires_grad
        t._version_counter = VersionCounter()
        return t

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        if self.data.dtype.kind not in "biuf":
            raise TypeError(f"Tensor needs numeric data (bool, int or float), got dtype {self.data.dtype} "
                            f"from {type(data).__name__}")
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self._version_counter = VersionCounter()

    # ------------------------------------------------------------------ array-like attributes
    @property
    def shape(self) -> tuple:
        """The shape, a tuple of ints (``size()`` returns the same)."""
        return tuple(self.data.shape)

    @property
    def dtype(self):
        """The NumPy dtype of the data (``float32`` by default)."""
        return self.data.dtype

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    def size(self, dim: int | None = None):
        """The shape as a tuple, or the size of dimension ``dim`` (``torch.Tensor.size``; NumPy's ``.size``, the
        number of elements, is :meth:`numel`)."""
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        """The number of elements."""
        return int(self.data.size)

    def dim(self) -> int:
        """The number of dimensions (``ndim``)."""
        return self.data.ndim

    @property
    def device(self) -> str:
        """``"cpu"`` (a NumPy array) or ``"gpu"`` (a CuPy array)."""
        return backend.device_of(self.data)

    @property
    def _version(self) -> int:
        """How many in-place operations changed this tensor's data (or a view's) so far (PyTorch's ``_version``)."""
        return self._version_counter.value

    @property
    def is_leaf(self) -> bool:
        """True for a tensor made by the user (no ``grad_fn``), False for an op's result."""
        return self._ctx is None

    @property
    def grad_fn(self):
        """The Function that created this tensor, or None for a leaf."""
        return self._ctx

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    __hash__ = object.__hash__  # tensors hash by identity although ``==`` is elementwise, as in PyTorch

    def __bool__(self) -> bool:
        """The truth of a one-element tensor. Raises RuntimeError for more elements, as PyTorch does."""
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous (shape {self.shape}):"
                               " use .any() or .all()")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iub" or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self.requires_grad else ""
        dev = ", device='gpu'" if self.device == backend.GPU else ""
        host = backend.to_device(self.data, backend.CPU)
        body = np.array2string(host, precision=4, separator=", ", threshold=1000, edgeitems=3, prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{dev}{extra})"

    # ------------------------------------------------------------------ conversion
    def numpy(self, force: bool = False) -> np.ndarray:
        """The data as a NumPy array: the tensor's own memory on the CPU (copied from the GPU when needed).

        Raises RuntimeError for a tensor that requires grad (as PyTorch does: changing the array would change
        the graph's values behind its back) unless ``force=True``, which returns a copy; use
        ``t.detach().numpy()`` to share the memory knowingly.
        """
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        out = backend.to_device(self.data, backend.CPU)
        return out.copy() if force and out is self.data else out

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
        """The value of a one-element tensor as a Python number. Raises ValueError for more elements."""
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        if capture.active() is not None:
            capture.active().host_read()
        return backend.to_device(self.data, backend.CPU).reshape(()).item()

    def tolist(self):
        """The values as nested Python lists (a Python number for a 0-d tensor)."""
        return backend.to_device(self.data, backend.CPU).tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data and version counter, cut from the graph (as PyTorch's)."""
        t = Tensor._make(self.data)
        t._version_counter = self._version_counter
        return t

    def to(self, device: str) -> Tensor:
        """This tensor on ``device`` ("cpu" or "gpu"); ``self`` if it is already there.

        The copy is a new leaf keeping ``requires_grad``. Raises GPUUnavailableError when the GPU is missing.
        """
        if self.device == backend.check_device_name(device):
            return self
        return Tensor(backend.to_device(self.data, device), requires_grad=self.requires_grad)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return self. Raises TypeError for a non-floating tensor."""
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = flag
        return self

    # ------------------------------------------------------------------ gradients
    def zero_grad(self) -> None:
        """Drop ``.grad`` (set it to None)."""
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
        recorder = capture.active()
        if recorder is not None and keep_graph:
            recorder.create_graph()
        given, accumulated = grad.data, self.grad is not None
        if not keep_graph:
            grad = Tensor._make(grad.data.copy())
        self.grad = grad if self.grad is None else (self.grad + grad if keep_graph else
                                                    Tensor._make(self.grad.data + grad.data))
        if recorder is not None:
            recorder.store_grad(self, given, self.grad.data, accumulated)

    def backward(self, gradient=None, retain_graph: bool | None = None, create_graph: bool = False,
                 inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad (``torch.Tensor.backward``).

        Args:
            gradient: gradient of some scalar w.r.t. this tensor (array or Tensor of its shape); may be
                omitted only for a tensor with one element (then it is 1).
            retain_graph: keep the saved tensors so that backward can run through the graph again
                (default: ``create_graph``).
            create_graph: record the backward pass itself, so that ``.grad`` can be differentiated again
                (Hessian-vector products, gradient penalties); costs memory and time.
            inputs: a Tensor or sequence of Tensors: accumulate into their ``.grad`` only (leaves or not),
                instead of into every leaf.
        Raises:
            RuntimeError: the tensor does not require grad; a non-scalar tensor without ``gradient``;
                a second backward through a freed graph; ``create_graph=True`` under ``no_grad``.
            ValueError: ``gradient`` has the wrong shape.
        """
        from minivae.autograd import engine

        engine.backward(self, None if gradient is None else (gradient,), retain_graph=retain_graph,
                        create_graph=create_graph, inputs=inputs)


def as_tensor(x, dtype=None) -> Tensor:
    """``x`` if it is a Tensor, else a constant Tensor (no grad) wrapping it."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, numbers.Number) and dtype is None:
        return Tensor(np.asarray(x))
    return Tensor(x, dtype=dtype)
