"""Differentiable ops, each a :class:`~minivae.autograd.Function` with its forward and backward side by side.

Importing this package installs the operators on :class:`~minivae.autograd.Tensor`.
"""
from minivae.ops import tensor_methods as _tensor_methods

_tensor_methods.install()
