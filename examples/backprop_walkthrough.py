"""Backprop by hand, next to minivae's: a tiny encoder-shaped graph, one op at a time.

The graph (float64 throughout, so that hand and engine agree to rounding)::

    x (1,1,5,5) --conv2d 3x3, 1->2 channels--> c (1,2,3,3) --relu--> a --reshape--> h (1,18)
    h --linear--> mu (1,2)        h --linear--> logvar (1,2)
    (mu, logvar, eps fixed) --reparameterize_kl--> z (1,2), kl (1,)
    loss = sum((z - target)^2) + sum(kl)      (a squared error in place of a decoder; nats for the KL)

The script prints the forward pass step by step, then walks backward from the loss: for each op it
computes the vector-Jacobian product (VJP) with plain NumPy and prints the largest difference from the
gradient minivae computed (read from ``retain_grad()`` on the intermediates and ``.grad`` on the
leaves). It prints the engine's own backward trace, and finally checks the whole graph against central
finite differences with :func:`minivae.gradcheck`.

Run: ``python examples/backprop_walkthrough.py`` (a few seconds). Exit status 0 when everything agrees.
"""
from __future__ import annotations

import pathlib
import sys

import numpy as np

try:
    import minivae as mv
except ModuleNotFoundError:  # run from a checkout without installing: use the repository's package
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import minivae as mv
import minivae.functional as F
from minivae.autograd.trace import trace

TOL = 1e-10  # hand VJPs and the engine's in float64 differ by rounding only


def make_inputs(seed: int = 0) -> dict[str, np.ndarray]:
    """The leaves of the graph as float64 arrays (input, weights, fixed noise and target)."""
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((1, 1, 5, 5)),
        "W": 0.5 * rng.standard_normal((2, 1, 3, 3)), "b": 0.1 * rng.standard_normal(2),
        "W_mu": 0.3 * rng.standard_normal((2, 18)), "b_mu": 0.1 * rng.standard_normal(2),
        "W_lv": 0.3 * rng.standard_normal((2, 18)), "b_lv": 0.1 * rng.standard_normal(2),
        "eps": rng.standard_normal((1, 2)), "target": rng.standard_normal((1, 2)),
    }


def forward(x, W, b, W_mu, b_mu, W_lv, b_lv, eps, target):
    """The graph on Tensors; returns (loss, intermediates by name)."""
    c = F.conv2d(x, W, b)
    a = F.relu(c)
    h = F.reshape(a, (1, 18))
    mu = F.linear(h, W_mu, b_mu)
    logvar = F.linear(h, W_lv, b_lv)
    z, kl = F.reparameterize_kl(mu, logvar, eps)
    d = z - target
    loss = F.sum(d * d) + F.sum(kl)
    return loss, {"c": c, "a": a, "h": h, "mu": mu, "logvar": logvar, "z": z, "kl": kl}


def _show(name, array, note=""):
    arr = np.asarray(array)
    text = np.array2string(arr.ravel()[:6], precision=4, suppress_small=True)
    more = " ..." if arr.size > 6 else ""
    print(f"  {name:8s} shape {str(arr.shape):14s} {text}{more}  {note}")


def _compare(label, hand, engine, results):
    diff = float(np.max(np.abs(np.asarray(hand) - np.asarray(engine)))) if np.size(hand) else 0.0
    ok = diff <= TOL
    results.append(ok)
    print(f"    {label:34s} max |hand - minivae| = {diff:.2e}  {'ok' if ok else 'MISMATCH'}")


def main(seed: int = 0) -> int:
    """Run the walkthrough, printing each step. Returns 0 when every check agrees, 1 otherwise."""
    arrays = make_inputs(seed)
    leaves = {k: mv.Tensor(v, requires_grad=k not in ("eps", "target")) for k, v in arrays.items()}
    x, W, b = arrays["x"], arrays["W"], arrays["b"]
    W_mu, b_mu, W_lv, b_lv = arrays["W_mu"], arrays["b_mu"], arrays["W_lv"], arrays["b_lv"]
    eps, target = arrays["eps"], arrays["target"]

    print("== forward ==")
    loss, mid = forward(**leaves)
    for t in mid.values():
        t.retain_grad()
    _show("x", x, "input image")
    _show("c", mid["c"].data, "c = conv2d(x, W, b): c[o,i,j] = b[o] + sum_pq W[o,0,p,q] x[0,0,i+p,j+q]")
    _show("a", mid["a"].data, "a = relu(c)")
    _show("h", mid["h"].data, "h = a.reshape(1, 18)")
    _show("mu", mid["mu"].data, "mu = h W_mu^T + b_mu")
    _show("logvar", mid["logvar"].data, "logvar = h W_lv^T + b_lv")
    _show("z", mid["z"].data, "z = mu + exp(logvar/2) * eps   (eps fixed)")
    _show("kl", mid["kl"].data, "kl = 0.5 sum_j (mu^2 + exp(logvar) - 1 - logvar)   nats")
    print(f"  loss     = sum((z - target)^2) + sum(kl) = {loss.item():.6f}")

    print("\n== backward by minivae (trace of the VJPs it runs, in order) ==")
    with trace() as t:
        loss.backward()
    print(t.table())

    print("\n== backward by hand, one VJP per op, from the loss down ==")
    results: list[bool] = []
    c, a, h = mid["c"].data, mid["a"].data, mid["h"].data
    mu, logvar, z = mid["mu"].data, mid["logvar"].data, mid["z"].data
    # loss = sum((z - t)^2) + sum(kl)
    g_z = 2.0 * (z - target)
    g_kl = np.ones(1)
    print("  loss = sum((z - t)^2) + sum(kl):  g_z = 2 (z - t),  g_kl = 1")
    _compare("g_z", g_z, mid["z"].grad.data, results)
    _compare("g_kl", g_kl, mid["kl"].grad.data, results)
    # reparameterize_kl
    std = np.exp(0.5 * logvar)
    g_mu = g_z + g_kl[:, None] * mu
    g_lv = g_z * eps * std * 0.5 + g_kl[:, None] * 0.5 * (np.exp(logvar) - 1.0)
    print("  reparameterize_kl:  g_mu = g_z + g_kl mu;  g_logvar = g_z eps exp(logvar/2)/2 + g_kl (exp(logvar)-1)/2")
    _compare("g_mu", g_mu, mid["mu"].grad.data, results)
    _compare("g_logvar", g_lv, mid["logvar"].grad.data, results)
    # the two linears: h is used twice, so its gradient is the sum of both VJPs
    g_h = g_mu @ W_mu + g_lv @ W_lv
    print("  linear (x2):  g_h = g_mu W_mu + g_logvar W_lv  (h feeds both: gradients add);  "
          "g_W = g^T h;  g_b = sum_n g")
    _compare("g_h", g_h, mid["h"].grad.data, results)
    _compare("g_W_mu", g_mu.T @ h, leaves["W_mu"].grad.data, results)
    _compare("g_b_mu", g_mu.sum(0), leaves["b_mu"].grad.data, results)
    _compare("g_W_lv", g_lv.T @ h, leaves["W_lv"].grad.data, results)
    _compare("g_b_lv", g_lv.sum(0), leaves["b_lv"].grad.data, results)
    # reshape and relu
    g_a = g_h.reshape(a.shape)
    g_c = g_a * (c > 0)
    print("  reshape:  g_a = g_h.reshape(1,2,3,3);   relu:  g_c = g_a * [c > 0]")
    _compare("g_a", g_a, mid["a"].grad.data, results)
    _compare("g_c", g_c, mid["c"].grad.data, results)
    # conv2d, with explicit loops over the output positions
    g_x, g_W, g_b = np.zeros_like(x), np.zeros_like(W), g_c.sum(axis=(0, 2, 3))
    for o in range(W.shape[0]):
        for i in range(c.shape[2]):
            for j in range(c.shape[3]):
                g_W[o, 0] += g_c[0, o, i, j] * x[0, 0, i:i + 3, j:j + 3]
                g_x[0, 0, i:i + 3, j:j + 3] += g_c[0, o, i, j] * W[o, 0]
    print("  conv2d:  g_W[o,0,p,q] = sum_ij g_c[o,i,j] x[i+p,j+q];  g_x[i+p,j+q] += g_c[o,i,j] W[o,0,p,q];  "
          "g_b[o] = sum_ij g_c[o,i,j]")
    _compare("g_W", g_W, leaves["W"].grad.data, results)
    _compare("g_b", g_b, leaves["b"].grad.data, results)
    _compare("g_x", g_x, leaves["x"].grad.data, results)

    print("\n== finite differences: minivae.gradcheck on the whole graph (float64, central differences) ==")
    names = [k for k in arrays]
    checked = [mv.Tensor(v, requires_grad=k not in ("eps", "target")) for k, v in arrays.items()]
    try:
        mv.gradcheck(lambda *ts: forward(*ts)[0], checked, names=names)
        print("  gradcheck passed for x, W, b, W_mu, b_mu, W_lv, b_lv (eps and target held fixed)")
        results.append(True)
    except mv.GradcheckError as err:
        print(f"  gradcheck FAILED: {err}")
        results.append(False)

    ok = all(results)
    print(f"\n{sum(results)}/{len(results)} checks agree: "
          + ("hand VJPs, minivae's backward and finite differences agree." if ok else "MISMATCH found."))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
