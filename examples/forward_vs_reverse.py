"""Forward mode and reverse mode side by side, on one small function.

    python examples/forward_vs_reverse.py

f(x) = tanh(W x) * exp(x[0]), R^3 -> R^4. Forward mode pushes a tangent v through the program with the values
(``forward_ad.make_dual``; one pass gives J v, a column of the Jacobian when v is a unit vector); reverse mode
pulls a cotangent u back from the output (``autograd.grad``; one pass gives u^T J, a row). The script shows

1. the Jacobian built column by column (3 forward passes) and row by row (4 reverse passes), equal;
2. the adjoint identity <u, J v> = <J^T u, v> that ties the two modes together;
3. a Hessian-vector product by forward-over-reverse (the JVP of a gradient) against reverse-over-reverse.

For the cost law measured on bigger functions see ``benchmarks/jacobian_modes.py``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minivae as mv  # noqa: E402  (after the sys.path / environment set-up above)
import minivae.autograd.forward_ad as fwAD  # noqa: E402  (after the sys.path / environment set-up above)
import minivae.functional as F  # noqa: E402  (after the sys.path / environment set-up above)
from minivae.autograd import functional as AF  # noqa: E402  (after the sys.path / environment set-up above)
from minivae.autograd import grad  # noqa: E402  (after the sys.path / environment set-up above)

W = mv.Tensor(np.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0], [-0.7, 0.1, 0.4], [0.5, 0.5, 0.5]]))
X0 = np.array([0.2, -0.4, 0.9])


def f(x):
    return F.tanh(F.reshape(F.matmul(W, F.reshape(x, (3, 1))), (4,))) * F.exp(x[0])


def main() -> int:
    np.set_printoptions(precision=5, suppress=True)
    print("1. The Jacobian of f: R^3 -> R^4 both ways")
    columns = []
    for j in range(3):
        v = np.zeros(3)
        v[j] = 1.0
        with fwAD.dual_level():
            y = f(fwAD.make_dual(mv.Tensor(X0), mv.Tensor(v)))
            columns.append(fwAD.unpack_dual(y).tangent.data)
    rows = []
    for i in range(4):
        x = mv.Tensor(X0, requires_grad=True)
        u = np.zeros(4)
        u[i] = 1.0
        (g,) = grad(f(x), x, grad_outputs=u)
        rows.append(g.data)
    jf, jr = np.stack(columns, axis=1), np.stack(rows)
    print(f"   forward mode, {len(columns)} passes (one per input):\n{jf}")
    print(f"   reverse mode, {len(rows)} passes (one per output): max difference {np.abs(jf - jr).max():.1e}")

    print("\n2. The adjoint identity <u, J v> = <J^T u, v>")
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal(4), rng.standard_normal(3)
    _, jv = AF.jvp(f, mv.Tensor(X0), mv.Tensor(v))
    _, ju = AF.vjp(f, mv.Tensor(X0), mv.Tensor(u))
    print(f"   <u, J v> = {u @ jv.data:.15f} (forward mode)\n   <J^T u, v> = {ju.data @ v:.15f} (reverse mode)")

    print("\n3. Hessian-vector product of g(x) = sum(f(x)^2)")
    def g_fn(x):
        return F.sum(f(x) * f(x))
    _, hv = AF.hvp(g_fn, mv.Tensor(X0), mv.Tensor(v))
    _, vh = AF.vhp(g_fn, mv.Tensor(X0), mv.Tensor(v))
    print(f"   forward-over-reverse H v:   {hv.data}\n   reverse-over-reverse v^T H: {vh.data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
