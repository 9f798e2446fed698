"""minivae: a small reverse-mode autodiff engine on NumPy/CuPy with Numba kernels, and VAEs built on it."""
from minivae import backend, kernels
from minivae import autograd
from minivae.autograd import (Function, GradcheckError, Tensor, detect_anomaly, enable_grad, gradcheck, gradgradcheck,
                              is_grad_enabled, no_grad)
from minivae import ops as _ops  # noqa: F401  (installs Tensor operators)
from minivae import functional

__version__ = "0.1.0"


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """``minivae.tensor(data)``: the same as ``Tensor(data, ...)``, as ``torch.tensor``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def __getattr__(name):  # lazy sub-packages: nn, optim, models, data
    import importlib

    if name in ("nn", "optim", "models", "data", "viz"):
        return importlib.import_module(f"minivae.{name}")
    raise AttributeError(f"module 'minivae' has no attribute {name!r}")


__all__ = ["backend", "kernels", "autograd", "functional", "Function", "GradcheckError", "Tensor", "detect_anomaly",
           "enable_grad", "gradcheck", "gradgradcheck", "is_grad_enabled", "no_grad", "tensor"]
