"""Derivatives of derivatives with minivae, each printed next to its closed form or finite differences.

    python examples/higher_order.py

1. tanh's first four derivatives by nested ``autograd.grad(..., create_graph=True)`` against the closed forms.
2. The Hessian of a small MLP's loss (``functional.hessian``, reverse-over-reverse and forward-over-reverse)
   against central differences of the gradient.
3. A Hessian-vector product of the conv VAE's negative log joint ``-log p(x|z) - log p(z)`` (the part of the
   negative ELBO that depends on the latent z, Kingma & Welling 2014 eq. 3) with respect to z, against
   central differences of the gradient along v.
4. One gradient-penalty step on the conv VAE's decoder: ``loss + lambda ||d loss / d z||^2`` minimised by Adam
   (a double backward), the penalty's gradient checked against central differences.
5. What each costs: seconds (``time.perf_counter``) and graph nodes.

``--graph PATH`` also draws the graph a double backward records (``minivae.viz.draw_graph``) for
``penalty = ||d/dx sum(tanh(x * w))||^2``: the forward ops and, above them, the VJP of tanh recorded as ops.

Everything runs in float64 on the CPU with the Numba kernels, in a few seconds.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minivae as mv  # noqa: E402  (after the sys.path / environment set-up above)
import minivae.functional as F  # noqa: E402  (after the sys.path / environment set-up above)
from minivae.autograd import functional as AF  # noqa: E402  (after the sys.path / environment set-up above)
from minivae.autograd import grad  # noqa: E402  (after the sys.path / environment set-up above)
from minivae.autograd.engine import _topological_order  # noqa: E402  (after the sys.path / environment set-up above)

COSTS = []


def nodes(t) -> int:
    return 0 if t.grad_fn is None else len(_topological_order([t.grad_fn]))


def timed(label, fn, warm: bool = True):
    """Run ``fn`` (once first, untimed, when ``warm``: JIT cache loads and first-call costs are not counted)."""
    if warm:
        fn()
    t0 = time.perf_counter()
    out = fn()
    COSTS.append((label, time.perf_counter() - t0))
    return out


def tanh_derivatives():
    print("1. d^k/dx^k tanh(x) at x = 0.5 by nested grad, against the closed forms")
    x = mv.Tensor(np.array([0.5]), requires_grad=True)
    t = np.tanh(0.5)
    closed = [1 - t ** 2, -2 * t * (1 - t ** 2), (1 - t ** 2) * (6 * t ** 2 - 2), (1 - t ** 2) * (16 * t - 24 * t ** 3)]
    y = F.tanh(x)
    print(f"   {'k':>2} {'nested grad':>20} {'closed form':>20} {'|diff|':>9} {'graph nodes':>12}")
    for k in range(4):
        (y,) = grad(y.sum(), x, create_graph=True)
        print(f"   {k + 1:>2} {y.item():>20.15f} {closed[k]:>20.15f} {abs(y.item() - closed[k]):>9.1e} {nodes(y):>12}")


def mlp_loss(params, x, target):
    w1, b1, w2, b2 = params
    h = F.tanh(F.linear(x, w1, b1))
    return F.mse_loss(F.linear(h, w2, b2), target, reduction="sum")


def mlp_hessian():
    print("\n2. Hessian of a 2-3-1 tanh MLP's squared-error loss w.r.t. its first-layer weight (6 x 6)")
    rng = np.random.default_rng(0)
    x, target = mv.Tensor(rng.standard_normal((5, 2))), mv.Tensor(rng.standard_normal((5, 1)))
    w1 = rng.standard_normal((3, 2))
    rest = [mv.Tensor(rng.standard_normal(s)) for s in [(3,), (1, 3), (1,)]]

    def loss_w1(w):
        return mlp_loss([w, *rest], x, target)

    h_rr = timed("MLP Hessian 6x6, reverse-over-reverse", lambda: AF.hessian(loss_w1, mv.Tensor(w1)))
    h_fr = timed("MLP Hessian 6x6, forward-over-reverse",
                 lambda: AF.hessian(loss_w1, mv.Tensor(w1), outer_jacobian_strategy="forward-mode"))
    eps, numeric = 1e-5, np.zeros((6, 6))
    for j in range(6):
        wp, wm = w1.copy(), w1.copy()
        wp.flat[j] += eps
        wm.flat[j] -= eps
        gp = AF.vjp(loss_w1, mv.Tensor(wp))[1].data.ravel()
        gm = AF.vjp(loss_w1, mv.Tensor(wm))[1].data.ravel()
        numeric[:, j] = (gp - gm) / (2 * eps)
    a, b = h_rr.data.reshape(6, 6), h_fr.data.reshape(6, 6)
    np.set_printoptions(precision=4, suppress=True, linewidth=110)
    print("   reverse-over-reverse:\n" + "\n".join("     " + str(row) for row in a))
    print(f"   max |H - central differences of the gradient| = {np.abs(a - numeric).max():.1e}; "
          f"max |reverse-over-reverse - forward-over-reverse| = {np.abs(a - b).max():.1e}; "
          f"symmetric to {np.abs(a - a.T).max():.1e}")


def conv_vae():
    from minivae.models import ConvVAE

    rng = np.random.default_rng(1)
    model = ConvVAE(latent_dim=2, dtype=np.float64, rng=rng)
    x = mv.Tensor((rng.random((4, 1, 28, 28)) < 0.3).astype(np.float64))
    return model, x


def neg_log_joint(model, x):
    def f(z):
        recon = F.binary_cross_entropy_with_logits(model.decode(z), x, reduction="sum")
        return (recon + F.sum(z * z) * 0.5) * (1.0 / x.shape[0])
    return f


def vae_hvp():
    print("\n3. Hessian-vector product of the conv VAE's negative log joint w.r.t. z (batch 4, latent 2), nats")
    model, x = conv_vae()
    f = neg_log_joint(model, x)
    rng = np.random.default_rng(2)
    z, v = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    _, hv = timed("conv VAE Hessian-vector product (forward-over-reverse)", lambda: AF.hvp(f, mv.Tensor(z), mv.Tensor(v)))
    _, vh = timed("conv VAE vector-Hessian product (reverse-over-reverse)", lambda: AF.vhp(f, mv.Tensor(z), mv.Tensor(v)))
    # a small step: the decoder has ~37,000 ReLUs per example, and a step of 1e-5 crosses a kink now and then
    eps = 1e-7
    gp = AF.vjp(f, mv.Tensor(z + eps * v))[1].data
    gm = AF.vjp(f, mv.Tensor(z - eps * v))[1].data
    numeric = (gp - gm) / (2 * eps)
    print(f"   H v (first two rows):           {hv.data[:2].ravel()}")
    print(f"   central differences of grad:    {numeric[:2].ravel()}")
    print(f"   max |Hv - numeric| = {np.abs(hv.data - numeric).max():.1e}, max |Hv - v^T H| = "
          f"{np.abs(hv.data - vh.data).max():.1e}")


def gradient_penalty():
    print("\n4. One gradient-penalty step on the conv VAE's decoder: loss + 0.1 ||d loss / d z||^2")
    from minivae.optim import Adam

    model, x = conv_vae()
    z0 = np.random.default_rng(3).standard_normal((4, 2))
    f = neg_log_joint(model, x)
    params = list(model.decoder.parameters())

    def penalised():
        z = mv.Tensor(z0, requires_grad=True)
        loss = f(z)
        (gz,) = grad(loss, z, create_graph=True)
        return loss, (gz * gz).sum() * 0.1

    loss, pen = penalised()
    total = loss + pen
    n_first, n_total = nodes(loss), nodes(total)
    model.zero_grad()
    total.backward()
    g = params[0].grad.data.copy()
    w = params[0].data
    eps, idx = 1e-6, (0, 0)
    saved = w[idx]
    w[idx] = saved + eps
    up = sum(t.item() for t in penalised())
    w[idx] = saved - eps
    down = sum(t.item() for t in penalised())
    w[idx] = saved
    print(f"   graph nodes: loss {n_first}, loss + penalty {n_total} (the recorded backward adds {n_total - n_first})")
    print(f"   d(loss + penalty)/d W[0, 0] of the decoder's first layer: double backward {g[idx]:.10f}, "
          f"central differences {(up - down) / (2 * eps):.10f}")
    opt = Adam(params, lr=1e-3)
    opt.step()
    after = sum(t.item() for t in penalised())
    print(f"   loss + penalty before the Adam step {loss.item() + pen.item():.6f} nats, after {after:.6f} nats")
    # costs, median of 7 fresh graphs each: the whole penalty step (grad with create_graph + the double
    # backward) against one plain backward of the same loss
    def penalty_step():
        model.zero_grad()
        z = mv.Tensor(z0, requires_grad=True)
        loss = f(z)
        t0 = time.perf_counter()
        (gz,) = grad(loss, z, create_graph=True)
        (loss + (gz * gz).sum() * 0.1).backward()
        return time.perf_counter() - t0

    def plain_step():
        model.zero_grad()
        loss = f(mv.Tensor(z0, requires_grad=True))
        t0 = time.perf_counter()
        loss.backward()
        return time.perf_counter() - t0

    pen_s = sorted(penalty_step() for _ in range(7))[3]
    plain_s = sorted(plain_step() for _ in range(7))[3]
    COSTS.append(("gradient-penalty step: grad(create_graph) + double backward, median of 7", pen_s))
    COSTS.append(("plain backward of the same loss, median of 7", plain_s))
    print(f"   cost: penalty step {pen_s * 1e3:.1f} ms = {pen_s / plain_s:.2f} x one plain backward ({plain_s * 1e3:.1f} ms)")


def draw_double_backward(path: str) -> str:
    from minivae.viz import draw_graph

    x = mv.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    w = mv.Tensor(np.array([2.0, 1.0]), requires_grad=True)
    (gx,) = grad(F.tanh(x * w).sum(), x, create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()
    return draw_graph(penalty, path, format=Path(path).suffix.lstrip(".") or "svg", names={x: "x", w: "w"}).path


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="derivatives of derivatives, next to closed forms")
    parser.add_argument("--graph", metavar="PATH", help="also draw the graph of a double backward (svg, png, dot)")
    args = parser.parse_args(argv)
    if args.graph:
        print(f"graph of a double backward written to {draw_double_backward(args.graph)}\n")
    timed("1. tanh derivatives 1-4", tanh_derivatives, warm=False)
    mlp_hessian()
    vae_hvp()
    gradient_penalty()
    print("\n5. What each costs (seconds, this machine, after one untimed call; the tanh row includes printing)")
    for label, seconds in COSTS:
        print(f"   {label:<70} {seconds:9.4f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
