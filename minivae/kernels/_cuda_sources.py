"""numba-cuda kernel sources of :mod:`minivae.kernels.gpu` (the launcher that sizes and starts them).

:func:`kernels` builds every ``@cuda.jit`` kernel for one dtype, GEMM tile edge and reduction block size,
so that constants and shared-array element types are of the array dtype (float32 kernels never promote
to float64) and block-shape constants are frozen into the compiled code. Nothing here launches a kernel
or touches a device: building the dict compiles nothing (``@cuda.jit`` without signatures compiles on the
first launch), so this module imports on machines without a GPU.

Kernels (indices are NCHW; "S" is the number of batch splits a reduction is cut into):

* ``conv_forward``: direct convolution, one thread per output element (bias and ReLU fused: ``relu`` nonzero
  stores ``0 if acc < 0 else acc``, the bits of ``relu_forward``).
* ``conv_gather``: the conv2d input gradient in gather form, which is also the transposed-convolution
  forward (bias and ReLU fused); one thread per element of the result, no atomics.
* ``conv_weight_grad_taps`` (at most :data:`KMAX` taps, kept in registers; one block per (o, c) and batch
  split) and ``conv_weight_grad`` (larger kernels; one block per weight element): the conv2d weight
  gradient.
* ``channel_sum``: the conv bias gradient, one block per channel and batch split.
* ``gemm``: tiled shared-memory GEMM, either operand transposed, bias and ReLU fused; ``column_sum``.
* ``reparam_kl_forward`` / ``reparam_kl_backward``, ``bce_forward`` / ``bce_backward``, ``relu_forward`` /
  ``relu_backward``: elementwise.
* ``adam_step``: one Adam step of every parameter with a gradient, over flat buffers (the fused Adam of
  :mod:`minivae.optim.adam`).

The three block reductions share one device function, ``block_sum`` (a shared-memory tree sum over the
block's threads).
"""
from __future__ import annotations

import functools
import math

from numba import cuda

#: Kernels with at most this many taps (5x5) use the weight-gradient kernel keeping the taps in registers.
KMAX = 25


@functools.lru_cache(maxsize=None)
def kernels(dtype_name: str, tile: int, rblock: int) -> dict:
    """The kernels for one dtype ("float32"/"float64"), GEMM tile edge and reduction block size.

    Built by a factory so that constants (zero, one, a half) and shared-array element types are of the
    array dtype: float32 kernels then never promote to float64.
    """
    from numba import types

    ft = getattr(types, dtype_name)
    zero, one, half = ft(0.0), ft(1.0), ft(0.5)
    TILE, TILE_PAD, RB = tile, tile + 1, rblock  # constants frozen into the kernels (shared array shapes)

    @cuda.jit(device=True)
    def unravel4(k, d1, d2, d3):
        # (a, b, c, d) with k = ((a*d1 + b)*d2 + c)*d3 + d: a flat C-order index into a 4-D array
        d = k % d3
        k = k // d3
        c = k % d2
        k = k // d2
        return k // d1, k % d1, c, d

    @cuda.jit(device=True)
    def block_sum(buf, tid, value):
        # Tree sum of `value` over the RB threads of the block (RB a power of two), through the shared
        # array buf (RB entries): buf[t] += buf[t + step] for step = RB/2, RB/4, ..., 1, a barrier after
        # each level. Every thread of the block must call it. The result is valid in thread 0 only: once
        # past the last barrier, thread 0 may start another block_sum and overwrite buf[0].
        buf[tid] = value
        cuda.syncthreads()
        step = RB // 2
        while step > 0:
            if tid < step:
                buf[tid] += buf[tid + step]
            cuda.syncthreads()
            step //= 2
        return buf[0]

    @cuda.jit
    def conv_forward(x, w, bias, has_bias, relu, sh, sw, ph, pw, y):
        # y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] x[n, c, i*sh + p - ph, j*sw + q - pw]
        idx = cuda.grid(1)
        n_, o_, ho, wo = y.shape
        if idx >= n_ * o_ * ho * wo:
            return
        n, o, i, j = unravel4(idx, o_, ho, wo)
        c_in, h_in, w_in = x.shape[1], x.shape[2], x.shape[3]
        kh, kw = w.shape[2], w.shape[3]
        acc = bias[o] if has_bias else zero
        for c in range(c_in):
            for p in range(kh):
                h = i * sh + p - ph
                if h >= 0 and h < h_in:
                    for q in range(kw):
                        u = j * sw + q - pw
                        if u >= 0 and u < w_in:
                            acc += w[o, c, p, q] * x[n, c, h, u]
        if relu and acc < zero:  # a NaN stays NaN, as relu_forward
            acc = zero
        y[n, o, i, j] = acc

    @cuda.jit
    def conv_gather(gy, w, bias, has_bias, relu, sh, sw, ph, pw, gx):
        # gx[n,c,h,u] = b[c] + sum over (o,p,q) with h = i*sh + p - ph, u = j*sw + q - pw of w[o,c,p,q] gy[n,o,i,j]
        # Threads walk each (n, c) plane in stride-phase-major order: all (h, u) with h % sh == a and
        # u % sw == b come together, so the threads of a warp share one set of taps (p = a + ph mod sh,
        # stepping by sh) and do not diverge, and neighbouring threads read neighbouring gy columns.
        idx = cuda.grid(1)
        n_, c_, h_in, w_in = gx.shape
        if idx >= n_ * c_ * h_in * w_in:
            return
        k = idx % (h_in * w_in)
        t = idx // (h_in * w_in)
        c = t % c_
        n = t // c_
        a = 0
        b = 0
        found = False
        for pa in range(sh):
            rows = (h_in - pa + sh - 1) // sh
            for pb in range(sw):
                cols = (w_in - pb + sw - 1) // sw
                if not found:
                    if k < rows * cols:
                        a = pa
                        b = pb
                        found = True
                    else:
                        k -= rows * cols
        rows = (h_in - a + sh - 1) // sh
        cols = (w_in - b + sw - 1) // sw
        h = a + (k // cols) * sh
        u = b + (k % cols) * sw
        o_, ho, wo = gy.shape[1], gy.shape[2], gy.shape[3]
        kh, kw = w.shape[2], w.shape[3]
        acc = bias[c] if has_bias else zero
        for p in range((a + ph) % sh, kh, sh):
            i = (h + ph - p) // sh
            if h + ph - p >= 0 and i < ho:
                for q in range((b + pw) % sw, kw, sw):
                    j = (u + pw - q) // sw
                    if u + pw - q >= 0 and j < wo:
                        for o in range(o_):
                            acc += w[o, c, p, q] * gy[n, o, i, j]
        if relu and acc < zero:
            acc = zero
        gx[n, c, h, u] = acc

    @cuda.jit
    def conv_weight_grad_taps(gy, x, sh, sw, ph, pw, part):
        # One block per (o, c) and per split s of the batch; each thread keeps the kh*kw taps in registers:
        # part[s,o,c,p,q] = sum_{n = s, s + S, ...} sum_{i,j} gy[n,o,i,j] x[n, c, i*sh + p - ph, j*sw + q - pw]
        s_, o_, c_, kh, kw = part.shape
        c = cuda.blockIdx.x % c_
        o = cuda.blockIdx.x // c_
        split = cuda.blockIdx.y
        n_, ho, wo = gy.shape[0], gy.shape[2], gy.shape[3]
        h_in, w_in = x.shape[2], x.shape[3]
        tid = cuda.threadIdx.x
        acc = cuda.local.array(KMAX, ft)
        for t in range(kh * kw):
            acc[t] = zero
        for n in range(split, n_, s_):
            for r in range(tid, ho * wo, RB):
                i = r // wo
                j = r - i * wo
                g = gy[n, o, i, j]
                for p in range(kh):
                    h = i * sh + p - ph
                    if h >= 0 and h < h_in:
                        for q in range(kw):
                            u = j * sw + q - pw
                            if u >= 0 and u < w_in:
                                acc[p * kw + q] += g * x[n, c, h, u]
        buf = cuda.shared.array(RB, ft)
        for t in range(kh * kw):  # reduce each tap over the block
            total = block_sum(buf, tid, acc[t])
            if tid == 0:
                part[split, o, c, t // kw, t % kw] = total

    @cuda.jit
    def conv_weight_grad(gy, x, sh, sw, ph, pw, gw):
        # kernels with more than KMAX taps: one block per gw[o,c,p,q] = sum_{n,i,j} gy[n,o,i,j] x[n,c,...]
        o_, c_, kh, kw = gw.shape
        o, c, p, q = unravel4(cuda.blockIdx.x, c_, kh, kw)
        n_, ho, wo = gy.shape[0], gy.shape[2], gy.shape[3]
        h_in, w_in = x.shape[2], x.shape[3]
        tid = cuda.threadIdx.x
        acc = zero
        for r in range(tid, n_ * ho * wo, RB):
            j = r % wo
            s = r // wo
            i = s % ho
            n = s // ho
            h = i * sh + p - ph
            u = j * sw + q - pw
            if h >= 0 and h < h_in and u >= 0 and u < w_in:
                acc += gy[n, o, i, j] * x[n, c, h, u]
        buf = cuda.shared.array(RB, ft)
        total = block_sum(buf, tid, acc)
        if tid == 0:
            gw[o, c, p, q] = total

    @cuda.jit
    def channel_sum(gy, part):
        # one block per channel o and batch split s: part[s, o] = sum_{n = s, s + S, ...} sum_{i,j} gy[n,o,i,j]
        s_ = part.shape[0]
        o = cuda.blockIdx.x
        split = cuda.blockIdx.y
        n_, hw = gy.shape[0], gy.shape[2] * gy.shape[3]
        wo = gy.shape[3]
        tid = cuda.threadIdx.x
        acc = zero
        for n in range(split, n_, s_):
            for r in range(tid, hw, RB):
                i = r // wo
                acc += gy[n, o, i, r - i * wo]
        buf = cuda.shared.array(RB, ft)
        total = block_sum(buf, tid, acc)
        if tid == 0:
            part[split, o] = total

    @cuda.jit
    def gemm(a, b, ta, tb, bias, has_bias, relu, c):
        # c = op(a) @ op(b) (+ bias[col]) (then max(c, 0) where relu); op(a) = a.T when ta, op(b) = b.T when tb.
        # Tiles are loaded so that consecutive threads (threadIdx.x) read consecutive addresses.
        sa = cuda.shared.array((TILE, TILE_PAD), ft)  # sa[r, k] = op(a)[i0 + r, k0 + k]
        sb = cuda.shared.array((TILE, TILE_PAD), ft)  # sb[k, s] = op(b)[k0 + k, j0 + s]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        i0 = cuda.blockIdx.y * TILE
        j0 = cuda.blockIdx.x * TILE
        m_, n_ = c.shape
        k_ = a.shape[0] if ta else a.shape[1]
        acc = zero
        for k0 in range(0, k_, TILE):
            if ta:
                i, k = i0 + tx, k0 + ty
                sa[tx, ty] = a[k, i] if (i < m_ and k < k_) else zero
            else:
                i, k = i0 + ty, k0 + tx
                sa[ty, tx] = a[i, k] if (i < m_ and k < k_) else zero
            if tb:
                k, j = k0 + tx, j0 + ty
                sb[tx, ty] = b[j, k] if (j < n_ and k < k_) else zero
            else:
                k, j = k0 + ty, j0 + tx
                sb[ty, tx] = b[k, j] if (j < n_ and k < k_) else zero
            cuda.syncthreads()
            for kk in range(TILE):
                acc += sa[ty, kk] * sb[kk, tx]
            cuda.syncthreads()
        row, col = i0 + ty, j0 + tx
        if row < m_ and col < n_:
            if has_bias:
                acc += bias[col]
            if relu and acc < zero:
                acc = zero
            c[row, col] = acc

    @cuda.jit
    def column_sum(g, out):
        j = cuda.grid(1)
        if j < g.shape[1]:
            acc = zero
            for i in range(g.shape[0]):
                acc += g[i, j]
            out[j] = acc

    @cuda.jit
    def reparam_kl_forward(mu, logvar, eps, z, kl):
        n = cuda.grid(1)
        if n < mu.shape[0]:
            acc = zero
            for d in range(mu.shape[1]):
                m = mu[n, d]
                lv = logvar[n, d]
                std = math.exp(half * lv)
                z[n, d] = m + std * eps[n, d]
                acc += m * m + math.exp(lv) - one - lv
            kl[n] = half * acc

    @cuda.jit
    def reparam_kl_backward(gz, gkl, mu, logvar, eps, gmu, glogvar):
        idx = cuda.grid(1)
        d_ = mu.shape[1]
        if idx < mu.shape[0] * d_:
            n = idx // d_
            d = idx % d_
            g = gkl[n]
            std = math.exp(half * logvar[n, d])
            gmu[n, d] = gz[n, d] + g * mu[n, d]
            glogvar[n, d] = half * gz[n, d] * eps[n, d] * std + half * g * (std * std - one)

    @cuda.jit
    def bce_forward(x, t, out):
        idx = cuda.grid(1)
        if idx < x.size:
            v = x[idx]
            out[idx] = max(v, zero) - v * t[idx] + math.log1p(math.exp(-abs(v)))

    @cuda.jit
    def bce_backward(gy, x, t, out):
        idx = cuda.grid(1)
        if idx < x.size:
            out[idx] = gy[idx] * (half * (one + math.tanh(half * x[idx])) - t[idx])

    @cuda.jit
    def relu_forward(x, out):
        idx = cuda.grid(1)
        if idx < x.size:
            v = x[idx]
            out[idx] = zero if v < zero else v  # a NaN stays NaN (max() may return the other operand)

    @cuda.jit
    def relu_backward(gy, y, out):
        idx = cuda.grid(1)
        if idx < y.size:
            out[idx] = zero if y[idx] <= zero else gy[idx]  # a NaN y passes gy, as PyTorch

    @cuda.jit
    def adam_step(p, g, m, v, seg, coef, hyper):
        # One Adam step (Kingma & Ba 2015, Algorithm 1, as minivae.optim.Adam) on flat views: block row y
        # updates parameter y of those with a gradient, elements seg[y,0] <= k < seg[y,1] of p, m, v, its
        # gradient at g[seg[y,2] + k - seg[y,0]]. coef[y] = (lr / (1 - b1^t), 1 - b2^t) with t that
        # parameter's step count; hyper = (b1, b2, 1 - b1, 1 - b2, weight_decay, eps). Same operation order
        # as adam.py: g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g g; p -= step m / (sqrt(v/bc2) + eps).
        y = cuda.blockIdx.y
        start = seg[y, 0]
        end = seg[y, 1]
        goff = seg[y, 2] - start
        step_size = coef[y, 0]
        bc2 = coef[y, 1]
        b1, b2, c1, c2, wd, eps = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4], hyper[5]
        stride = cuda.gridDim.x * cuda.blockDim.x
        k = start + cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        while k < end:
            gk = g[goff + k]
            if wd != zero:
                gk = gk + wd * p[k]
            mk = m[k] * b1 + c1 * gk
            vk = v[k] * b2 + c2 * gk * gk
            m[k] = mk
            v[k] = vk
            p[k] = p[k] - step_size * mk / (math.sqrt(vk / bc2) + eps)
            k += stride

    return dict(adam_step=adam_step, conv_forward=conv_forward, conv_gather=conv_gather,
                conv_weight_grad=conv_weight_grad, conv_weight_grad_taps=conv_weight_grad_taps,
                channel_sum=channel_sum, gemm=gemm, column_sum=column_sum,
                reparam_kl_forward=reparam_kl_forward, reparam_kl_backward=reparam_kl_backward,
                bce_forward=bce_forward, bce_backward=bce_backward, relu_forward=relu_forward,
                relu_backward=relu_backward)

