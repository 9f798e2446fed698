"""One Adam step of one parameter on the CPU as a single jitted loop (not a ``KERNELS`` entry: the optimizer
calls it, as it calls :func:`minivae.kernels.gpu.fused_adam_step` on the GPU).

NumPy spends about ten array operations per parameter on an Adam step (``m *= b1``, ``m += (1 - b1) * g``,
...), each a few microseconds of dispatch and a pass over memory: about 0.2-0.3 ms of a conv VAE training step
(14 parameters) on the 2-core development machine, 2-3% of the step at batch 32. One loop does it in one
pass and one call; :func:`adam_step_flat` does every parameter of flat buffers in one call (the compiled step's
fused Adam).

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


@njit(cache=True, nogil=True, error_model="numpy")
def _adam_flat_loop(p, g, m, v, segments, coef, b1, one_minus_b1, b2, one_minus_b2, eps):
    for s in range(segments.shape[0]):
        lo, hi = segments[s, 0], segments[s, 1]
        _adam_loop(p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], b1, one_minus_b1, b2, one_minus_b2, coef[s, 0],
                   coef[s, 1], eps)


def adam_step_flat(param, grad, exp_avg, exp_avg_sq, segments, lr: float, beta1: float, beta2: float, eps: float,
                   steps) -> None:
    """:func:`adam_step` of several parameters in one jitted call, on flat buffers holding them side by side (the
    compiled step's "Adam over all parameters in one kernel call"), with the bits of :func:`adam_step` called per
    parameter: each segment runs the same loop with its scalars computed as there (``1 - beta2**t`` and
    ``lr / (1 - beta1**t)`` in Python floats, then converted to the buffers' dtype).

    Args: param, exp_avg (m), exp_avg_sq (v): 1-D NumPy buffers, updated in place; grad: 1-D, read; all
        C-contiguous, one length and one dtype, float32 or float64. segments: int64 ``(P, 2)``, the ``[lo, hi)``
        element range of each parameter to update (``0 <= lo <= hi <= len``; ranges outside them are left
        untouched). steps: int ``(P,)``, each parameter's own step count ``t`` (from 1, already incremented).
    Raises: ValueError for buffers :func:`fits` rejects or that are not 1-D, for segments of another shape or
        outside the buffers, and for steps of another length or below 1.
    """
    if not (fits(param, grad, exp_avg, exp_avg_sq) and param.ndim == 1):
        raise ValueError("adam_step_flat takes 1-D writeable C-contiguous NumPy float32/float64 buffers of one length "
                         "and dtype")
    segments = np.ascontiguousarray(segments, dtype=np.int64)
    if segments.ndim != 2 or segments.shape[1] != 2 or (segments.size and not (
            segments.min() >= 0 and segments.max() <= param.size and (segments[:, 0] <= segments[:, 1]).all())):
        raise ValueError(f"adam_step_flat: segments must be int64 (P, 2) ranges [lo, hi) with 0 <= lo <= hi <= "
                         f"{param.size}; got shape {segments.shape}")
    steps = [int(t) for t in np.asarray(steps).reshape(-1)]
    if len(steps) != segments.shape[0] or any(t < 1 for t in steps):
        raise ValueError(f"adam_step_flat: steps must hold one step count >= 1 per segment ({segments.shape[0]}); "
                         f"got {steps}")
    f = param.dtype.type
    coef = np.array([(f(1 - beta2 ** t), f(lr / (1 - beta1 ** t))) for t in steps], dtype=param.dtype)
    _adam_flat_loop(param, grad, exp_avg, exp_avg_sq, segments, coef.reshape(len(steps), 2), f(beta1),
                    f(1 - beta1), f(beta2), f(1 - beta2), f(eps))
