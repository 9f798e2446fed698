"""Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Algorithm 1)."""
from __future__ import annotations

from minivae.backend import get_array_module
from minivae.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Algorithm 1 of Kingma & Ba (2015), as ``torch.optim.Adam``:

    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.
    ``t`` counts the steps of each parameter (those it had a gradient in). ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2, not AdamW).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        # written as `not (ok)` so that NaN, which fails every comparison, is rejected too
        ok_betas = isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0 <= b < 1 for b in betas)
        if not (lr > 0 and ok_betas and eps > 0 and weight_decay >= 0):
            raise ValueError(f"Adam: invalid hyper-parameters lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay} (need lr > 0, 0 <= beta < 1, eps > 0, weight_decay >= 0)")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _update(self, i, p, grad, state):
        xp = get_array_module(p.data)
        lr, (b1, b2), eps, wd = (self.defaults[k] for k in ("lr", "betas", "eps", "weight_decay"))
        if wd:
            grad = grad + wd * p.data
        if not state:
            state["m"], state["v"], state["step"] = xp.zeros_like(p.data), xp.zeros_like(p.data), 0
        state["step"] += 1  # per parameter, as PyTorch: a parameter first updated late starts at t = 1
        m, v = state["m"], state["v"]
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        t = state["step"]
        denom = xp.sqrt(v / (1 - b2 ** t)) + eps
        p.data -= (lr / (1 - b1 ** t)) * m / denom
