"""Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Algorithm 1)."""
from __future__ import annotations

import numpy as np

from minivae.backend import CPU, GPU, get_array_module
from minivae.kernels import _cpu_adam
from minivae.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Algorithm 1 of Kingma & Ba (2015), as ``torch.optim.Adam`` (names, defaults and arithmetic of PyTorch 2.13):

    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.
    ``t`` counts the steps of each parameter (those it had a gradient in). ``weight_decay`` adds
    ``weight_decay * p`` to the gradient (L2), or, with ``decoupled_weight_decay=True`` (= :class:`AdamW`), scales
    ``p`` by ``1 - lr * weight_decay`` before the step (Loshchilov & Hutter 2019). ``amsgrad=True`` divides by the
    running maximum of ``v`` (Reddi et al. 2018; state ``max_exp_avg_sq``); ``maximize=True`` ascends.

    ``fused`` (as ``torch.optim.Adam``'s): with parameters on the GPU, one numba-cuda kernel updates every
    parameter per step (:mod:`minivae.optim._flat_adam`): the parameters' ``data`` and the moment arrays
    become views into three flat device buffers (rebuilt if one of them is replaced, e.g. by
    ``Module.to`` or ``load_state_dict``). The fused kernel does plain Adam (L2 weight decay) only.

    * ``None`` (default): the per-parameter path. (The fused kernel has so far run only under the CUDA
      simulator; it should become the GPU default once it is measured and checked on a real GPU.)
    * ``False``: never (the per-parameter path, the only one on the CPU, where each parameter's update is one
      jitted loop, :mod:`minivae.kernels._cpu_adam`, with the bits of the NumPy operations).
    * ``True``: always; ValueError if the parameters are not all on the GPU with one dtype, or with amsgrad,
      maximize or decoupled weight decay. Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) NumPy parameters
      are accepted: that is how the kernel is tested without a GPU.

    Results equal the per-parameter path up to rounding (the GPU may fuse multiply-adds).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, maximize: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False):
        name = type(self).__name__
        # written as `not (ok)` so that NaN, which fails every comparison, is rejected too
        ok_betas = isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0 <= b < 1 for b in betas)
        if not (lr > 0 and ok_betas and eps > 0 and weight_decay >= 0):
            raise ValueError(f"{name}: invalid hyper-parameters lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay} (need lr > 0, 0 <= beta < 1, eps > 0, weight_decay >= 0)")
        if fused not in (None, True, False):
            raise ValueError(f"{name}: fused must be None, True or False, got {fused!r}")
        if fused and (amsgrad or maximize or decoupled_weight_decay):
            raise ValueError(f"{name}(fused=True) does plain Adam only: use fused=None with amsgrad, maximize or "
                             "decoupled weight decay (AdamW)")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=bool(amsgrad), maximize=bool(maximize),
                                      decoupled_weight_decay=bool(decoupled_weight_decay)))
        self.fused = fused
        self._flat = None  # FlatAdam buffers of the fused path, built on its first step

    def _step(self) -> None:
        """One Adam update of every parameter with a gradient (Kingma & Ba 2015, Algorithm 1)."""
        if not self._fused_now():
            self._flat = None  # the per-parameter path takes over; the views stay valid arrays
            return super()._step()
        from minivae.optim._flat_adam import FlatAdam

        self.step_count += 1
        if self._flat is None or not self._flat.matches(self.params, self.state):
            self._flat = FlatAdam(self.params, self.state, get_array_module(self.params[0].data))
        lr, betas, eps, wd = (self.defaults[k] for k in ("lr", "betas", "eps", "weight_decay"))
        self._flat.step(self.params, self.state, lr, betas, eps, wd)

    def _fused_now(self) -> bool:
        """Whether this step takes the fused path (see the class docstring); ValueError for fused=True
        where it cannot."""
        d = self.defaults
        if self.fused is False or d.get("amsgrad") or d.get("maximize") or d.get("decoupled_weight_decay"):
            return False
        on_gpu = all(p.device == GPU for p in self.params)
        if not on_gpu and self.fused and _simulated():
            on_gpu = all(p.device == CPU for p in self.params)  # NumPy arrays: the simulator's "device"
        one_dtype = len({p.dtype for p in self.params}) == 1 and self.params[0].dtype.kind == "f"
        if on_gpu and one_dtype and self.fused:
            return True
        if self.fused:
            raise ValueError("Adam(fused=True) needs every parameter on the GPU with one floating dtype, got "
                             f"devices {sorted({p.device for p in self.params})} and dtypes "
                             f"{sorted({str(p.dtype) for p in self.params})}; use fused=None or False")
        return False

    def _update(self, i, p, grad, state):
        xp = get_array_module(p.data)
        d = self.defaults
        lr, (b1, b2), eps, wd = d["lr"], d["betas"], d["eps"], d["weight_decay"]
        if d.get("maximize"):
            grad = -grad
        if wd and d.get("decoupled_weight_decay"):
            p.data *= 1 - lr * wd
        elif wd:
            grad = grad + wd * p.data
        if not state:
            state["m"], state["v"], state["step"] = xp.zeros_like(p.data), xp.zeros_like(p.data), 0
        state["step"] += 1  # per parameter, as PyTorch: a parameter first updated late starts at t = 1
        m, v, t = state["m"], state["v"], state["step"]
        amsgrad = d.get("amsgrad")
        if not amsgrad and xp is np and _cpu_adam.fits(p.data, grad, m, v):  # one jitted loop, the same bits
            _cpu_adam.adam_step(p.data, grad, m, v, lr, b1, b2, eps, t)
            return
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        if amsgrad:
            v_max = state.setdefault("max_exp_avg_sq", xp.zeros_like(p.data))
            xp.maximum(v_max, v, out=v_max)
            v = v_max
        denom = xp.sqrt(v / (1 - b2 ** t)) + eps
        p.data -= (lr / (1 - b1 ** t)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``:
    ``p <- p (1 - lr weight_decay)``, then the Adam step without L2 term. Default ``weight_decay=1e-2`` (PyTorch's).
    Raises as :class:`Adam`."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False, fused: bool | None = None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, fused=fused, decoupled_weight_decay=True)


def _simulated() -> bool:
    from minivae.kernels._cuda_compat import simulated

    return simulated()
