"""Reverse-mode autodiff: :class:`Tensor`, :class:`Function`, ``no_grad`` and :func:`gradcheck`."""
from minivae.autograd.function import Function, backward
from minivae.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from minivae.autograd.gradcheck import GradcheckError, gradcheck
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.autograd.trace import trace

__all__ = ["Function", "backward", "enable_grad", "is_grad_enabled", "no_grad", "GradcheckError", "gradcheck",
           "Tensor", "as_tensor", "trace"]
