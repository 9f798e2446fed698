"""One Adam step of one parameter on the CPU as a single jitted loop (not a ``KERNELS`` entry: the optimizer
calls it, as it calls :func:`minivae.kernels.gpu.fused_adam_step` on the GPU).

NumPy spends about ten array operations per parameter on an Adam step (``m *= b1``, ``m += (1 - b1) * g``,
...), each a few microseconds of dispatch and a pass over memory: about 0.2-0.3 ms of a conv VAE training step
(14 parameters) on the 2-core development machine, 2-3% of the step at batch 32. One loop does it in one
pass and one call.

Bits: the loop repeats :meth:`minivae.optim.Adam._update`'s NumPy operations in the same order and in the
arrays' dtype (the scalars are converted to that dtype first, as NumPy 2 does with Python floats; no
fast-math, so no fused multiply-adds), so both paths give the same bits (tested).
"""
from __future__ import annotations

import numpy as np
from numba import njit

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@njit(cache=True, nogil=True, error_model="numpy")  # numpy: no zero-division branch, so the loop vectorises
def _adam_loop(p, g, m, v, b1, one_minus_b1, b2, one_minus_b2, bias2, step_size, eps):
    for k in range(p.size):
        gk = g[k]
        mk = m[k] * b1
        mk = mk + one_minus_b1 * gk
        vk = v[k] * b2
        vk = vk + one_minus_b2 * gk * gk
        m[k] = mk
        v[k] = vk
        p[k] = p[k] - step_size * mk / (np.sqrt(vk / bias2) + eps)


def fits(*arrays) -> bool:
    """Whether :func:`adam_step` takes these arrays: NumPy, C-contiguous, one shape, one dtype (float32 or
    float64), the written ones (all but the gradient, the second) writeable."""
    first = arrays[0]
    if type(first) is not np.ndarray or first.dtype not in _DTYPES:
        return False
    for k, a in enumerate(arrays):  # (a plain loop: this runs for every parameter at every step)
        if (type(a) is not np.ndarray or a.dtype != first.dtype or a.shape != first.shape
                or not a.flags.c_contiguous or (k != 1 and not a.flags.writeable)):
            return False
    return True


def adam_step(param, grad, exp_avg, exp_avg_sq, lr: float, beta1: float, beta2: float, eps: float, step: int) -> None:
    """Kingma & Ba (2015), Algorithm 1, bias-corrected as ``torch.optim.Adam``, in place:
    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``p <- p - (lr / (1 - b1^t)) m / (sqrt(v / (1 - b2^t)) + eps)``.

    Args: param, exp_avg (m), exp_avg_sq (v): NumPy arrays, updated in place; grad: read. All C-contiguous,
        one shape and one dtype, float32 or float64 (check with :func:`fits`). ``step``: ``t``, from 1.
    Raises: ValueError where :func:`fits` is false (the caller takes the NumPy path there).
    """
    if not fits(param, grad, exp_avg, exp_avg_sq):
        raise ValueError("adam_step takes writeable C-contiguous NumPy float32/float64 arrays of one shape and dtype; "
                         "use the NumPy path of minivae.optim.Adam for others")
    f = param.dtype.type
    _adam_loop(param.reshape(-1), grad.reshape(-1), exp_avg.reshape(-1), exp_avg_sq.reshape(-1), f(beta1),
               f(1 - beta1), f(beta2), f(1 - beta2), f(1 - beta2 ** step), f(lr / (1 - beta1 ** step)), f(eps))
