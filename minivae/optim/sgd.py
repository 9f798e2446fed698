"""Stochastic gradient descent with momentum (as ``torch.optim.SGD``), and RMSprop."""
from __future__ import annotations

from minivae.backend import get_array_module
from minivae.optim.optimizer import Optimizer


class SGD(Optimizer):
    """``b <- momentum b + (1 - dampening) g`` (b = g at the first step); ``p <- p - lr b``
    (Nesterov: ``p <- p - lr (g + momentum b)``), as PyTorch's SGD (Sutskever et al. 2013)."""

    def __init__(self, params, lr: float = 1e-2, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if not (lr > 0 and momentum >= 0 and 0 <= dampening <= 1 and weight_decay >= 0):  # NaN fails too
            raise ValueError(f"SGD: invalid hyper-parameters lr={lr}, momentum={momentum}, dampening={dampening}, "
                             f"weight_decay={weight_decay} (need lr > 0, momentum >= 0, 0 <= dampening <= 1, "
                             "weight_decay >= 0)")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))

    def _update(self, i, p, grad, state):
        d = self.defaults
        if d["weight_decay"]:
            grad = grad + d["weight_decay"] * p.data
        if d["momentum"]:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.copy()
            else:
                buf = state["momentum_buffer"]
                buf *= d["momentum"]
                buf += (1 - d["dampening"]) * grad
            buf = state["momentum_buffer"]
            grad = grad + d["momentum"] * buf if d["nesterov"] else buf
        p.data -= d["lr"] * grad


class RMSprop(Optimizer):
    """``v <- alpha v + (1 - alpha) g^2``; ``p <- p - lr g / (sqrt(v) + eps)`` (Hinton, Lecture 6e; PyTorch)."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8):
        if not (lr > 0 and 0 <= alpha < 1 and eps > 0):  # NaN fails too; eps = 0 would give 0/0 for a zero grad
            raise ValueError(f"RMSprop: invalid hyper-parameters lr={lr}, alpha={alpha}, eps={eps} "
                             "(need lr > 0, 0 <= alpha < 1, eps > 0)")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))

    def _update(self, i, p, grad, state):
        xp = get_array_module(p.data)
        if not state:
            state["square_avg"] = xp.zeros_like(p.data)
        v = state["square_avg"]
        v *= self.defaults["alpha"]
        v += (1 - self.defaults["alpha"]) * grad * grad
        p.data -= self.defaults["lr"] * grad / (xp.sqrt(v) + self.defaults["eps"])
