"""Stochastic gradient descent with momentum (as ``torch.optim.SGD``), and RMSprop (as ``torch.optim.RMSprop``).

Names, defaults and the order of the arithmetic follow PyTorch 2.13's single-tensor implementations, so that a
float64 trajectory agrees with ``torch.optim`` to rounding (checked over 50 steps in tests/oracle)."""
from __future__ import annotations

from minivae.backend import get_array_module
from minivae.optim.optimizer import Optimizer


class SGD(Optimizer):
    """``g <- g + weight_decay p``; ``b <- momentum b + (1 - dampening) g`` (b = g at the first step);
    ``p <- p - lr b`` (Nesterov: ``p <- p - lr (g + momentum b)``), as PyTorch's SGD (Sutskever et al. 2013).
    ``maximize=True`` ascends (the gradient's sign is flipped first). Defaults are PyTorch's (``lr=1e-3``).

    Raises ValueError for lr <= 0, momentum < 0, dampening outside [0, 1], weight_decay < 0 (NaN too), or
    Nesterov without momentum or with dampening.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False):
        if not (lr > 0 and momentum >= 0 and 0 <= dampening <= 1 and weight_decay >= 0):  # NaN fails too
            raise ValueError(f"SGD: invalid hyper-parameters lr={lr}, momentum={momentum}, dampening={dampening}, "
                             f"weight_decay={weight_decay} (need lr > 0, momentum >= 0, 0 <= dampening <= 1, "
                             "weight_decay >= 0)")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=bool(maximize)))

    def _update(self, i, p, grad, state):
        d = self.defaults
        if d.get("maximize"):
            grad = -grad
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
    """RMSprop (Hinton, Lecture 6e), as ``torch.optim.RMSprop``:
    ``g <- g + weight_decay p``; ``v <- alpha v + (1 - alpha) g^2``; centered: ``a <- a + (1 - alpha)(g - a)``
    and the denominator ``sqrt(v - a^2) + eps``, else ``sqrt(v) + eps``; with momentum:
    ``b <- momentum b + g / denom``, ``p <- p - lr b``, else ``p <- p - lr g / denom``. ``maximize=True``
    ascends. State (PyTorch's names): ``square_avg``, ``grad_avg`` (centered), ``momentum_buffer``, ``step``.

    Raises ValueError for lr <= 0, alpha outside [0, 1), eps <= 0 (0/0 for a zero gradient), weight_decay < 0
    or momentum < 0 (NaN too).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, *, maximize: bool = False):
        if not (lr > 0 and 0 <= alpha < 1 and eps > 0 and weight_decay >= 0 and momentum >= 0):  # NaN fails too
            raise ValueError(f"RMSprop: invalid hyper-parameters lr={lr}, alpha={alpha}, eps={eps}, "
                             f"weight_decay={weight_decay}, momentum={momentum} (need lr > 0, 0 <= alpha < 1, "
                             "eps > 0, weight_decay >= 0, momentum >= 0)")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=bool(centered), maximize=bool(maximize)))

    def _update(self, i, p, grad, state):
        xp = get_array_module(p.data)
        d = self.defaults
        lr, alpha, eps = d["lr"], d["alpha"], d["eps"]
        if d.get("maximize"):
            grad = -grad
        if d.get("weight_decay"):
            grad = grad + d["weight_decay"] * p.data
        if "square_avg" not in state:
            state["square_avg"] = xp.zeros_like(p.data)
            state["step"] = 0
        state["step"] = state.get("step", 0) + 1
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * grad * grad
        if d.get("centered"):
            a = state.setdefault("grad_avg", xp.zeros_like(p.data))
            a += (1 - alpha) * (grad - a)  # PyTorch's lerp
            denom = xp.sqrt(v - a * a) + eps
        else:
            denom = xp.sqrt(v) + eps
        if d.get("momentum"):
            buf = state.setdefault("momentum_buffer", xp.zeros_like(p.data))
            buf *= d["momentum"]
            buf += grad / denom
            p.data -= lr * buf
        else:
            p.data -= lr * grad / denom
