"""VAE ops: the analytic Gaussian KL and the fused reparameterize + KL (Kingma & Welling 2014)."""
from __future__ import annotations

from minivae import kernels
from minivae.autograd.function import Function
from minivae.autograd.tensor import Tensor
from minivae.backend import device_of, get_array_module
from minivae.ops.elementwise import exp
from minivae.ops.reduction import sum as _sum
from minivae.ops.shape import reshape
from minivae.ops.tangents import total
from minivae.ops.validate import check_floating, check_ndim, check_same_shape


def _check_latent(op, **arrays):
    for name, a in arrays.items():
        check_ndim(op, name, a, 2, "(N, latent_dim)")
    check_same_shape(op, **arrays)
    check_floating(op, **arrays)


def _col(v: Tensor) -> Tensor:
    """A per-example ``(N,)`` tensor as a column ``(N, 1)`` (to broadcast over latent dimensions)."""
    return reshape(v, (v.shape[0], 1))


def _kl_tangent(mu, logvar, d_mu, d_logvar):
    """``d kl = sum_j (mu_j d_mu_j + (exp(logvar_j) - 1) d_logvar_j / 2)``, per example."""
    terms = total(None if d_mu is None else mu * d_mu,
                  None if d_logvar is None else (exp(logvar) - 1.0) * d_logvar * 0.5)
    return _sum(terms, axis=1)


class KLNormal(Function):
    """Per-example ``KL(N(mu, exp(logvar)) || N(0, I)) = 0.5 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)``
    (Kingma & Welling 2014, appendix B). VJP: ``g_mu = g mu``, ``g_logvar = g (exp(logvar) - 1) / 2``;
    JVP: ``d kl = sum_j mu_j d_mu_j + (exp(logvar_j) - 1) d_logvar_j / 2``."""

    def forward(self, mu, logvar):
        _check_latent("kl_normal", mu=mu, logvar=logvar)
        self.save_for_backward(mu, logvar)
        return 0.5 * (mu * mu + get_array_module(mu).exp(logvar) - 1.0 - logvar).sum(axis=1)

    def backward(self, g):
        mu, logvar = self.saved_tensors
        g = _col(g)
        return g * mu, g * (exp(logvar) - 1.0) * 0.5

    def jvp(self, d_mu, d_logvar):
        mu, logvar = self.saved_tensors
        return _kl_tangent(mu, logvar, d_mu, d_logvar)


class ReparameterizeKL(Function):
    """Fused ``z = mu + exp(logvar/2) * eps`` (the reparameterization trick, Kingma & Welling 2014,
    eq. 10) and the per-example KL to N(0, I) (appendix B), computed by one kernel pass each way.

    VJP: ``(g_mu, g_logvar)`` from the fused backward kernel (:class:`ReparameterizeKLBackward`, an op with a
    VJP of its own), ``g_eps = g_z exp(logvar/2)`` (eps is usually a constant, but it is differentiable).
    JVP: ``dz = d_mu + exp(logvar/2) (eps d_logvar / 2 + d_eps)``, ``d kl`` as :class:`KLNormal`'s.
    """

    def forward(self, mu, logvar, eps):
        _check_latent("reparameterize_kl", mu=mu, logvar=logvar, eps=eps)
        self.save_for_backward(mu, logvar, eps)
        return kernels.get("reparameterize_kl_forward", device_of(mu))(mu, logvar, eps)

    def backward(self, g_z, g_kl):
        mu, logvar, eps = self.saved_tensors
        g_mu, g_logvar = ReparameterizeKLBackward.apply(g_z, g_kl, mu, logvar, eps)
        g_eps = g_z * exp(logvar * 0.5) if self.needs_input_grad[2] else None
        return g_mu, g_logvar, g_eps

    def jvp(self, d_mu, d_logvar, d_eps):
        mu, logvar, eps = self.saved_tensors
        std = exp(logvar * 0.5)
        dz = total(d_mu, None if d_logvar is None else std * eps * d_logvar * 0.5,
                   None if d_eps is None else std * d_eps)
        d_kl = _kl_tangent(mu, logvar, d_mu, d_logvar) if (d_mu is not None or d_logvar is not None) else None
        return dz, d_kl


class ReparameterizeKLBackward(Function):
    """The fused backward kernel as an op: ``g_mu = g_z + g_kl mu``,
    ``g_logvar = g_z eps s / 2 + g_kl (exp(logvar) - 1) / 2`` with ``s = exp(logvar / 2)`` (g_kl per example).

    VJP for cotangents ``(a, b)`` of ``(g_mu, g_logvar)``: ``g_(g_z) = a + b eps s / 2``,
    ``g_(g_kl) = sum_j a mu + b (exp(logvar) - 1) / 2``, ``g_mu' = a g_kl``,
    ``g_logvar' = b (g_z eps s / 4 + g_kl exp(logvar) / 2)``, ``g_eps = b g_z s / 2``.
    JVP: the same partial derivatives applied to the tangents.
    """

    def forward(self, g_z, g_kl, mu, logvar, eps):
        self.save_for_backward(g_z, g_kl, mu, logvar, eps)
        return kernels.get("reparameterize_kl_backward", device_of(mu))(g_z, g_kl, mu, logvar, eps)

    def _partials(self):
        g_z, g_kl, mu, logvar, eps = self.saved_tensors
        s, e = exp(logvar * 0.5), exp(logvar)
        return g_z, _col(g_kl), mu, eps, s, e

    def backward(self, a, b):
        g_z, g_kl, mu, eps, s, e = self._partials()
        need = self.needs_input_grad
        return (a + b * eps * s * 0.5 if need[0] else None,
                _sum(a * mu + b * (e - 1.0) * 0.5, axis=1) if need[1] else None,
                a * g_kl if need[2] else None,
                b * (g_z * eps * s * 0.25 + g_kl * e * 0.5) if need[3] else None,
                b * g_z * s * 0.5 if need[4] else None)

    def jvp(self, d_gz, d_gkl, d_mu, d_logvar, d_eps):
        g_z, g_kl, mu, eps, s, e = self._partials()
        d_gkl = None if d_gkl is None else _col(d_gkl)
        t_mu = total(d_gz, None if d_gkl is None else d_gkl * mu, None if d_mu is None else g_kl * d_mu)
        t_logvar = total(None if d_gz is None else d_gz * eps * s * 0.5,
                         None if d_eps is None else g_z * d_eps * s * 0.5,
                         None if d_logvar is None else (g_z * eps * s * 0.25 + g_kl * e * 0.5) * d_logvar,
                         None if d_gkl is None else d_gkl * (e - 1.0) * 0.5)
        return t_mu, t_logvar


def kl_normal(mu, logvar) -> Tensor:
    """Analytic KL divergence from N(mu, diag(exp(logvar))) to N(0, I), per example, in nats.

    Args: mu, logvar ``(N, latent_dim)``, floating. Returns ``(N,)``.
    Raises: ValueError (shapes), TypeError (dtypes).
    """
    return KLNormal.apply(mu, logvar)


def reparameterize_kl(mu, logvar, eps) -> tuple[Tensor, Tensor]:
    """Fused reparameterization and KL: returns ``(z, kl)``.

    Args:
        mu, logvar, eps: ``(N, latent_dim)`` of one floating dtype; eps ~ N(0, I) is given by the caller so
            that the op is deterministic (and checkable by finite differences with the noise held fixed).
    Returns:
        z ``(N, latent_dim)``; kl ``(N,)`` in nats (Kingma & Welling 2014, eq. 10 and appendix B).
    Raises:
        ValueError: shapes differ or are not 2-D. TypeError: non-floating or mixed dtypes.
    """
    return ReparameterizeKL.apply(mu, logvar, eps)
