"""minivae: a small reverse-mode autodiff engine on NumPy/CuPy with Numba kernels, and VAEs built on it.

The top level mirrors ``torch``: ``minivae.tensor``, ``zeros``, ``randn``, ``manual_seed``, ``cat``, ``exp``, ...,
``no_grad``, ``float32``; ``minivae.functional`` mirrors ``torch.nn.functional``.
"""
import numpy as np

from minivae import backend, kernels
from minivae import autograd
from minivae.autograd import (Function, GradcheckError, Tensor, detect_anomaly, enable_grad, gradcheck, gradgradcheck,
                              is_grad_enabled, no_grad, set_grad_enabled)
from minivae import ops as _ops  # noqa: F401  (installs Tensor operators)
from minivae import functional
from minivae.functional import (abs, add, amax, amin, argmax, argmin, cat, chunk, clamp, clip, clone, concatenate,  # noqa: A004
                                cos, div, eq, erf, exp, expm1, flatten, gather, ge, gt, le, log, log1p, log_softmax,
                                logsumexp, lt, matmul, max, maximum, mean, min, minimum, mul, ne, neg, norm, permute,
                                pow, prod, reciprocal, relu, reshape, rsqrt, sigmoid, sin, softmax, split, sqrt,
                                squeeze, stack, std, sub, sum, t, tanh, transpose, unflatten, unsqueeze, var, where)
from minivae.autograd.tensor import as_tensor
from minivae.ops.creation import (arange, empty, eye, from_numpy, full, full_like, linspace, manual_seed, ones,
                                  ones_like, rand, rand_like, randint, randint_like, randn, randn_like, tensor, zeros,
                                  zeros_like)

from minivae.compiler import compile  # noqa: A004  (torch.compile's name)

__version__ = "0.1.0"

# dtypes under PyTorch's names (NumPy dtypes: minivae tensors hold NumPy / CuPy arrays)
float16, float32, float64, int8, int16, int32, int64, uint8 = (
    np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8)
half, double, long = np.float16, np.float64, np.int64
bool = np.bool_  # noqa: A001 - torch.bool
float = np.float32  # noqa: A001 - torch.float
int = np.int32  # noqa: A001 - torch.int


def __getattr__(name):  # lazy sub-packages: nn, optim, models, data
    import importlib

    if name in ("nn", "optim", "models", "data", "viz"):
        return importlib.import_module(f"minivae.{name}")
    raise AttributeError(f"module 'minivae' has no attribute {name!r}")


__all__ = ["backend", "kernels", "autograd", "functional", "compile", "Function", "GradcheckError", "Tensor",
           "detect_anomaly",
           "enable_grad", "gradcheck", "gradgradcheck", "is_grad_enabled", "no_grad", "set_grad_enabled", "tensor",
           "from_numpy", "as_tensor",
           "zeros", "ones", "empty", "full", "arange", "linspace", "eye", "rand", "randn", "randint", "zeros_like",
           "ones_like", "full_like", "rand_like", "randn_like", "randint_like", "manual_seed",
           "abs", "add", "amax", "amin", "argmax", "argmin", "cat", "chunk", "clamp", "clip", "clone", "concatenate",
           "cos", "div", "eq", "erf", "exp", "expm1", "flatten", "gather", "ge", "gt", "le", "log", "log1p",
           "log_softmax", "logsumexp", "lt", "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "ne", "neg",
           "norm", "permute", "pow", "prod", "reciprocal", "relu", "reshape", "rsqrt", "sigmoid", "sin", "softmax",
           "split", "sqrt", "squeeze", "stack", "std", "sub", "sum", "t", "tanh", "transpose", "unflatten",
           "unsqueeze", "var", "where", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
           "half", "double", "long", "bool", "float", "int"]
