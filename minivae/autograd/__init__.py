"""Automatic differentiation: :class:`Tensor`, :class:`Function`, the reverse-mode engine (``backward``,
``grad`` with ``create_graph``), ``functional`` (vjp, jvp, jacobian, hessian, hvp, vhp), ``forward_ad``
(dual tensors), ``detect_anomaly``, ``no_grad`` and the finite-difference checks ``gradcheck`` /
``gradgradcheck``."""
from minivae.autograd.anomaly import AnomalyError, detect_anomaly
from minivae.autograd.engine import backward, grad
from minivae.autograd.function import Function
from minivae.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from minivae.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from minivae.autograd.tensor import Tensor, as_tensor
from minivae.autograd.trace import trace
from minivae.autograd import forward_ad, functional  # noqa: E402

__all__ = ["AnomalyError", "detect_anomaly", "backward", "grad", "Function", "enable_grad", "is_grad_enabled",
           "no_grad", "set_grad_enabled", "GradcheckError", "gradcheck", "gradgradcheck", "Tensor", "as_tensor",
           "trace",
           "forward_ad", "functional"]
