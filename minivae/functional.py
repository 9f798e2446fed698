"""The functional API (``import minivae.functional as F``), named as ``torch.nn.functional``."""
from minivae.ops.activation import relu, sigmoid, softplus, tanh
from minivae.ops.conv import conv2d, conv_transpose2d
from minivae.ops.elementwise import add, cast, div, exp, log, mul, neg, pow, sub
from minivae.ops.linear import linear
from minivae.ops.loss import binary_cross_entropy_with_logits, gaussian_nll, mse_loss
from minivae.ops.matmul import matmul
from minivae.ops.reduction import mean, sum
from minivae.ops.shape import broadcast_to, cat, concatenate, getitem, reshape, split, transpose
from minivae.ops.vae import kl_normal, reparameterize_kl

__all__ = [
    "relu", "sigmoid", "softplus", "tanh", "conv2d", "conv_transpose2d", "add", "cast", "div", "exp", "log",
    "mul", "neg", "pow", "sub", "linear", "binary_cross_entropy_with_logits", "gaussian_nll", "mse_loss",
    "matmul", "mean", "sum", "broadcast_to", "cat", "concatenate", "getitem", "reshape", "split", "transpose",
    "kl_normal", "reparameterize_kl",
]
