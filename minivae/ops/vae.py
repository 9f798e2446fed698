"""VAE ops: the analytic Gaussian KL and the fused reparameterize + KL (Kingma & Welling 2014)."""
from __future__ import annotations

from minivae import kernels
from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.backend import device_of, get_array_module
from minivae.ops.validate import check_floating, check_ndim, check_same_shape


def _check_latent(op, **arrays):
    for name, a in arrays.items():
        check_ndim(op, name, a, 2, "(N, latent_dim)")
    check_same_shape(op, **arrays)
    check_floating(op, **arrays)


class KLNormal(Function):
    """Per-example ``KL(N(mu, exp(logvar)) || N(0, I)) = 0.5 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)``
    (Kingma & Welling 2014, appendix B). VJP: ``g_mu = g mu``, ``g_logvar = g (exp(logvar) - 1) / 2``."""

    def forward(self, mu, logvar):
        _check_latent("kl_normal", mu=mu, logvar=logvar)
        xp = get_array_module(mu)
        var = xp.exp(logvar)
        self.save_for_backward(mu, var)
        return 0.5 * (mu * mu + var - 1.0 - logvar).sum(axis=1)

    def backward(self, g):
        mu, var = self.saved
        g = g[:, None]
        return g * mu, 0.5 * g * (var - 1.0)


class ReparameterizeKL(Function):
    """Fused ``z = mu + exp(logvar/2) * eps`` (the reparameterization trick, Kingma & Welling 2014,
    eq. 10) and the per-example KL to N(0, I) (appendix B), computed by one kernel pass each way.

    VJP: ``g_mu = g_z + g_kl mu``; ``g_logvar = g_z eps exp(logvar/2)/2 + g_kl (exp(logvar) - 1)/2``;
    ``g_eps = g_z exp(logvar/2)`` (eps is usually a constant, but it is differentiable).
    """

    def forward(self, mu, logvar, eps):
        _check_latent("reparameterize_kl", mu=mu, logvar=logvar, eps=eps)
        self.device = device_of(mu)
        self.save_for_backward(mu, logvar, eps)
        return kernels.get("reparameterize_kl_forward", self.device)(mu, logvar, eps)

    def backward(self, g_z, g_kl):
        mu, logvar, eps = self.saved
        g_mu, g_logvar = kernels.get("reparameterize_kl_backward", self.device)(g_z, g_kl, mu, logvar, eps)
        g_eps = g_z * get_array_module(logvar).exp(0.5 * logvar) if self.needs_input_grad[2] else None
        return g_mu, g_logvar, g_eps


def kl_normal(mu, logvar) -> Tensor:
    """Analytic KL divergence from N(mu, diag(exp(logvar))) to N(0, I), per example, in nats.

    Args: mu, logvar ``(N, latent_dim)``, floating. Returns ``(N,)``.
    Raises: ValueError (shapes), TypeError (dtypes).
    """
    return KLNormal.apply(mu, logvar)


def reparameterize_kl(mu, logvar, eps) -> tuple[Tensor, Tensor]:
    """Fused reparameterization and KL: returns ``(z, kl)``.

    Args: mu, logvar, eps ``(N, latent_dim)`` of one floating dtype; eps ~ N(0, I) is given by the caller so
        that the op is deterministic (and checkable by finite differences with the noise held fixed).
    Returns: z ``(N, latent_dim)``; kl ``(N,)`` in nats (Kingma & Welling 2014, eq. 10 and appendix B).
    """
    return ReparameterizeKL.apply(mu, logvar, eps)
