"""A second GPU implementation ("cupy"): CuPy's own library paths, to compare the numba-cuda kernels with.

* dense: reference.py's ``x @ W.T`` (+ bias), which on CuPy arrays is CuPy's matmul (cuBLAS GEMM).
* convolutions: the im2col formulation of :mod:`minivae.kernels.reference` run on CuPy arrays, i.e. a
  strided window view contracted by ``tensordot`` (one cuBLAS GEMM) and col2im as one strided add per
  kernel tap; the functions are reference.py's own, re-exported.
* ReLU: reference.py's (CuPy's own elementwise ``maximum`` and ``where``).
* reparameterize + KL and BCE with logits: fused CuPy ``ElementwiseKernel``/``ReductionKernel`` (one
  launch per output instead of one per NumPy-style operation).

Same signatures, shapes, dtypes (output dtype = input dtype) and conventions as reference.py. On NumPy
arrays every function falls back to reference.py, so the module imports and runs without a GPU.
"""
from __future__ import annotations

import functools

from minivae.backend import get_array_module, is_gpu_array
from minivae.kernels import KERNELS
from minivae.kernels import reference as _ref
from minivae.kernels.reference import (  # noqa: F401  (re-exported: the cuBLAS path on CuPy arrays)
    conv2d_backward_bias,
    conv2d_backward_weight,
    conv2d_forward,
    conv_transpose2d_backward,
    conv_transpose2d_forward,
    dense_backward,
    dense_forward,
    relu_backward,
    relu_forward,
)

__all__ = list(KERNELS)


@functools.lru_cache(maxsize=None)
def _cupy_kernels():
    import cupy as cp

    return dict(
        reparam=cp.ElementwiseKernel(
            "T mu, T logvar, T eps", "T z", "z = mu + exp(logvar * (T)0.5) * eps", "minivae_reparam"),
        kl=cp.ReductionKernel(
            "T mu, T logvar", "T kl", "mu * mu + exp(logvar) - (T)1 - logvar", "a + b", "kl = a * (T)0.5",
            "0", "minivae_kl_rows"),
        reparam_kl_backward=cp.ElementwiseKernel(
            "T gz, T gkl, T mu, T logvar, T eps", "T gmu, T glogvar",
            """T std = exp(logvar * (T)0.5);
               gmu = gz + gkl * mu;
               glogvar = (T)0.5 * gz * eps * std + (T)0.5 * gkl * (std * std - (T)1);""",
            "minivae_reparam_kl_backward"),
        bce=cp.ElementwiseKernel(
            "T x, T t", "T out", "out = max(x, (T)0) - x * t + log1p(exp(-abs(x)))", "minivae_bce"),
        bce_backward=cp.ElementwiseKernel(
            "T gy, T x, T t", "T out", "out = gy * ((T)0.5 * ((T)1 + tanh((T)0.5 * x)) - t)",
            "minivae_bce_backward"),
    )


def _on_gpu(*arrays) -> bool:
    return any(is_gpu_array(a) for a in arrays)


def reparameterize_kl_forward(mu, logvar, eps):
    """Fused ``z = mu + exp(logvar/2) * eps`` and per-row ``kl = 0.5 * sum_j (mu^2 + exp(logvar) - 1 - logvar)``.

    Args: mu, logvar, eps ``(N, D)``. Returns: z ``(N, D)``, kl ``(N,)`` in nats, in the input dtype.
    """
    if not _on_gpu(mu, logvar, eps):
        return _ref.reparameterize_kl_forward(mu, logvar, eps)
    k = _cupy_kernels()
    return k["reparam"](mu, logvar, eps), k["kl"](mu, logvar, axis=1)


def reparameterize_kl_backward(grad_z, grad_kl, mu, logvar, eps):
    """Returns ``(g_mu, g_logvar)``, each ``(N, D)`` (formulas as in reference.py)."""
    if not _on_gpu(grad_z, grad_kl, mu, logvar, eps):
        return _ref.reparameterize_kl_backward(grad_z, grad_kl, mu, logvar, eps)
    return _cupy_kernels()["reparam_kl_backward"](grad_z, grad_kl[:, None], mu, logvar, eps)


def bce_with_logits_forward(logits, target):
    """Elementwise ``max(x, 0) - x*t + log1p(exp(-|x|))`` (nats), one fused kernel."""
    if not _on_gpu(logits, target):
        return _ref.bce_with_logits_forward(logits, target)
    xp = get_array_module(logits)
    return _cupy_kernels()["bce"](logits, xp.asarray(target, dtype=logits.dtype))


def bce_with_logits_backward(grad_output, logits, target):
    """``gy * (sigmoid(x) - t)`` with sigmoid as ``(1 + tanh(x/2)) / 2``, one fused kernel."""
    if not _on_gpu(grad_output, logits, target):
        return _ref.bce_with_logits_backward(grad_output, logits, target)
    return _cupy_kernels()["bce_backward"](grad_output, logits, target)
