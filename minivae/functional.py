"""The functional API (``import minivae.functional as F``), named as ``torch.nn.functional`` and ``torch``:
every differentiable op of minivae as a function of Tensors (``F.conv2d``, ``F.softmax``, ``F.sum``, ...).

Each name in ``__all__`` is a public op: it has a PyTorch oracle case in ``tests/oracle`` (a test fails for a
name without one).
"""
from minivae.ops.activation import gelu, leaky_relu, relu, sigmoid, softplus, tanh
from minivae.ops.classification import binary_cross_entropy, cross_entropy, kl_div, l1_loss, nll_loss
from minivae.ops.compare import clamp, eq, ge, gt, le, lt, maximum, minimum, ne
from minivae.ops.conv import conv2d, conv_transpose2d
from minivae.ops.elementwise import add, cast, clone, div, exp, log, mul, neg, pow, sub
from minivae.ops.extrema import amax, amin, argmax, argmin, gather, max, min
from minivae.ops.indexing import getitem, index_put
from minivae.ops.joining import cat, chunk, concatenate, repeat, split, stack
from minivae.ops.linear import linear
from minivae.ops.loss import binary_cross_entropy_with_logits, gaussian_nll, mse_loss
from minivae.ops.matmul import matmul
from minivae.ops.reduction import mean, norm, prod, std, sum, var
from minivae.ops.shape import (
                               broadcast_to,
                               expand,
                               flatten,
                               permute,
                               reshape,
                               squeeze,
                               t,
                               transpose,
                               unflatten,
                               unsqueeze,
                               view,
)
from minivae.ops.softmax import log_softmax, logsumexp, softmax
from minivae.ops.unary import abs, cos, erf, expm1, log1p, reciprocal, rsqrt, sin, sqrt
from minivae.ops.vae import kl_normal, reparameterize_kl
from minivae.ops.where import where

clip = clamp

__all__ = [
    # activations
    "relu", "leaky_relu", "gelu", "sigmoid", "softplus", "tanh",
    # convolutions, dense, VAE
    "conv2d", "conv_transpose2d", "linear", "matmul", "kl_normal", "reparameterize_kl",
    # arithmetic and elementwise maths
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "cast", "clone", "abs", "sqrt", "rsqrt", "reciprocal",
    "log1p", "expm1", "sin", "cos", "erf",
    # comparisons and selection
    "eq", "ne", "lt", "le", "gt", "ge", "maximum", "minimum", "clamp", "clip", "where",
    # reductions
    "sum", "mean", "var", "std", "prod", "norm", "max", "min", "amax", "amin", "argmax", "argmin", "logsumexp",
    "softmax", "log_softmax",
    # shape, joining, indexing
    "reshape", "view", "permute", "transpose", "t", "squeeze", "unsqueeze", "flatten", "unflatten", "expand",
    "broadcast_to", "cat", "concatenate", "stack", "split", "chunk", "repeat", "getitem", "index_put", "gather",
    # losses
    "binary_cross_entropy_with_logits", "binary_cross_entropy", "cross_entropy", "nll_loss", "kl_div", "mse_loss",
    "l1_loss", "gaussian_nll",
]
