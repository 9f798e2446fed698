"""GPU kernels: numba-cuda ``@cuda.jit`` kernels launched on CuPy arrays (the launcher).

Every name in :data:`minivae.kernels.KERNELS` is defined here with the signature of its twin in
:mod:`minivae.kernels.reference` (the ground truth these are tested against). This module sizes the grids
and starts the kernels; their sources are in :mod:`minivae.kernels._cuda_sources`, the process-wide
numba-cuda/CuPy set-up and the fast launch path in :mod:`minivae.kernels._cuda_compat`. The kernels are:

* convolution, direct (one thread per output element, no im2col buffer): ``conv2d_forward``; the input
  gradient in *gather* form (each thread of ``gx`` sums the output pixels its input pixel touched, so no
  atomics are needed), which is also ``conv_transpose2d_forward`` (bias fused); the weight and bias
  gradients as thread blocks reducing over ``(N, H_out, W_out)`` in shared memory, the batch split into
  slices so that the grid fills the device (about four blocks per streaming multiprocessor, the count
  read from the device). ``conv_transpose2d_backward`` reuses the conv kernels exactly as reference.py does.
* dense: one tiled shared-memory GEMM (16x16 tiles, either operand transposed, bias fused) for
  ``y = x W^T + b``, ``gx = gy W`` and ``gW = gy^T x``, and a column sum for ``gb``.
* fused reparameterize + KL (one thread per example forward, per element backward), BCE with logits and
  ReLU (one thread per element).

Arrays: CuPy arrays on a real GPU, passed through ``__cuda_array_interface__`` and launched on CuPy's
current stream (so the kernels are ordered with CuPy's own work without host synchronisation). Under the
CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, no real GPU) the same kernels run in Python on NumPy arrays,
with smaller thread blocks and GEMM tiles; that is how they are tested on machines without a GPU.

Outputs are allocated with the inputs' array module and have the inputs' dtype (float32 or float64), or are the
``out=`` array given (checked by :mod:`minivae.kernels._out`); ``relu=True`` (forward convolutions and dense)
stores ``max(y, 0)`` from the kernel that computes ``y`` (no second launch). The kernels accumulate in that
dtype. Non-contiguous inputs are copied to C order first. Kernels are compiled lazily, once per dtype, on their
first launch (``@cuda.jit`` without signatures: eager signatures need a driver at import time). Raises TypeError
for other dtypes.
"""
from __future__ import annotations

import numpy as np

from minivae.backend import get_array_module
from minivae.kernels import KERNELS, _cuda_compat, _out
from minivae.kernels._cuda_compat import simulated
from minivae.kernels._cuda_sources import KMAX, kernels
from minivae.kernels.conv_arith import conv_output_size, conv_transpose_output_hw

__all__ = [*KERNELS, "simulated", "fused_adam_step"]

# Launch geometry. The simulator runs every thread as Python (~0.15 ms each), so it gets small blocks.
_BLOCK = 256                              # threads per block of the 1-D kernels (capped at the work size)
_BLOCKS_PER_SM = 4                        # reductions split the batch until the grid has this many per SM


def _tile() -> int:
    return 8 if simulated() else 16      # GEMM tile edge


def _reduce_block() -> int:
    return 2 if simulated() else 256     # threads per block of the reductions (a power of two)


def _splits_to_fill(n: int, blocks: int, sms: int) -> int:
    """Slices of a batch of ``n`` so that ``blocks * slices`` reaches ``_BLOCKS_PER_SM * sms`` (1..n)."""
    return max(1, min(n, -(-_BLOCKS_PER_SM * sms // max(blocks, 1))))


def _batch_splits(xp, n: int, blocks: int) -> int:
    """How many slices of the batch a reduction of ``blocks`` blocks is split into to fill the device."""
    if simulated():
        return min(n, 2)  # exercise the split path cheaply
    return _splits_to_fill(n, blocks, _cuda_compat.sm_count(xp))


def _kernel(name: str, dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"GPU kernels support float32 and float64 arrays, got {dtype}")
    return kernels(dtype.name, _tile(), _reduce_block())[name]


def _launch(xp, kernel, grid, block, *args) -> None:
    grid_size = grid if isinstance(grid, int) else grid[0] * grid[1]
    if grid_size == 0:
        return
    stream = _cuda_compat.stream(xp)
    if stream is None:
        kernel[grid, block](*args)
    elif not (_cuda_compat.FAST_LAUNCH and _cuda_compat.fast_launch(kernel, grid, block, stream, args)):
        kernel[grid, block, stream](*args)


def _launch_1d(xp, kernel, n: int, *args) -> None:
    block = max(1, min(_BLOCK, n))
    _launch(xp, kernel, (n + block - 1) // block, block, *args)


def _prepare(*arrays):
    """(xp, dtype, contiguous arrays of one floating dtype); None entries stay None."""
    present = [a for a in arrays if a is not None]
    xp = get_array_module(*present)
    dtype = np.result_type(*[a.dtype for a in present])
    out = [None if a is None else xp.ascontiguousarray(a, dtype=dtype) for a in arrays]
    return xp, dtype, out


_dummies: dict = {}


def _bias_arg(xp, dtype, bias):
    """(bias array, has_bias flag): a 1-element placeholder when bias is None (the kernel never reads it)."""
    if bias is not None:
        return bias, 1
    key = (xp.__name__, np.dtype(dtype).name, xp.cuda.Device().id if xp is not np else None)
    if key not in _dummies:
        _dummies[key] = xp.zeros(1, dtype=dtype)
    return _dummies[key], 0


# --------------------------------------------------------------------------- conv2d


def conv2d_forward(x, weight, bias, stride, padding, *, out=None, relu=False):
    """``y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] * x_pad[n, c, i*sh + p, j*sw + q]`` (then ``max(y, 0)``
    where ``relu``, in the same kernel).

    Args: x ``(N, C_in, H, W)``, weight ``(C_out, C_in, kH, kW)``, bias ``(C_out,)`` or None, float32 or
        float64 (CuPy on a GPU, NumPy under the simulator); stride, padding ``(h, w)`` int pairs; ``out``: the
        result array (C-contiguous, the result's shape and dtype).
    Returns: ``(N, C_out, H_out, W_out)`` in the input dtype, ``H_out = (H + 2 ph - kH) // sh + 1``.
    Raises: TypeError for dtypes other than float32/float64; ValueError for a wrong ``out``.
    """
    xp, dtype, (x, weight, bias) = _prepare(x, weight, bias)
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    y = _out.output(out, (n, c_out, conv_output_size(h, kh, stride[0], padding[0]),
                          conv_output_size(w, kw, stride[1], padding[1])), dtype, "conv2d_forward", xp)
    b, has_bias = _bias_arg(xp, dtype, bias)
    _launch_1d(xp, _kernel("conv_forward", dtype), y.size, x, weight, b, has_bias, int(relu),
               stride[0], stride[1], padding[0], padding[1], y)
    return y


def _gather(xp, dtype, gy, weight, bias, out_shape, stride, padding, out=None, relu=False):
    out = _out.output(out, out_shape, dtype, "conv_transpose2d_forward", xp)
    b, has_bias = _bias_arg(xp, dtype, bias)
    _launch_1d(xp, _kernel("conv_gather", dtype), out.size, gy, weight, b, has_bias, int(relu),
               stride[0], stride[1], padding[0], padding[1], out)
    return out


def _sum_splits(xp, dtype, part, shape):
    """Sum ``part`` over its first axis (the batch splits) into a new array of ``shape``."""
    if part.shape[0] == 1:
        return part.reshape(shape)
    out = xp.empty(shape, dtype=dtype)
    _launch_1d(xp, _kernel("column_sum", dtype), out.size, part.reshape(part.shape[0], -1), out.reshape(-1))
    return out


def conv2d_backward_weight(grad_output, x, kernel_size, stride, padding, *, out=None):
    """Weight gradient of conv2d: ``gw[o,c,p,q] = sum_{n,i,j} gy[n,o,i,j] * x_pad[n,c,i*sh+p,j*sw+q]``.

    Args: grad_output ``(N, C_out, H_out, W_out)``, x ``(N, C_in, H, W)``, kernel_size ``(kH, kW)``.
    Returns: ``(C_out, C_in, kH, kW)`` in the input dtype (copied into ``out`` when given).
    """
    xp, dtype, (gy, x) = _prepare(grad_output, x)
    shape = (gy.shape[1], x.shape[1], int(kernel_size[0]), int(kernel_size[1]))
    if shape[2] * shape[3] > KMAX:
        gw = xp.empty(shape, dtype=dtype)
        _launch(xp, _kernel("conv_weight_grad", dtype), gw.size, _reduce_block(), gy, x,
                stride[0], stride[1], padding[0], padding[1], gw)
        return _out.write(out, gw, "conv2d_backward_weight")
    blocks = shape[0] * shape[1]
    splits = _batch_splits(xp, gy.shape[0], blocks)
    part = xp.empty((splits,) + shape, dtype=dtype)
    _launch(xp, _kernel("conv_weight_grad_taps", dtype), (blocks, splits), _reduce_block(), gy, x,
            stride[0], stride[1], padding[0], padding[1], part)
    return _out.write(out, _sum_splits(xp, dtype, part, shape), "conv2d_backward_weight")


def conv2d_backward_bias(grad_output, *, out=None):
    """Bias gradient of conv2d and conv_transpose2d: ``(N, C, H, W)`` summed over N, H, W -> ``(C,)`` (copied
    into ``out`` when given; ValueError for a wrong ``out``)."""
    xp, dtype, (gy,) = _prepare(grad_output)
    splits = _batch_splits(xp, gy.shape[0], gy.shape[1])
    part = xp.empty((splits, gy.shape[1]), dtype=dtype)
    _launch(xp, _kernel("channel_sum", dtype), (gy.shape[1], splits), _reduce_block(), gy, part)
    return _out.write(out, _sum_splits(xp, dtype, part, (gy.shape[1],)), "conv2d_backward_bias")


# --------------------------------------------------------------------------- conv_transpose2d


def conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding, *, out=None, relu=False):
    """Transposed convolution, the adjoint of conv2d with the same weight, bias (and ``relu``) fused.

    Args: x ``(N, C_in, H, W)``, weight ``(C_in, C_out, kH, kW)``, bias ``(C_out,)`` or None; out: as above.
    Returns: ``(N, C_out, H_out, W_out)``, ``H_out = (H-1)*sh - 2*ph + kH + output_padding[0]``.
    """
    xp, dtype, (x, weight, bias) = _prepare(x, weight, bias)
    shape = (x.shape[0], weight.shape[1]) + conv_transpose_output_hw(x.shape, weight.shape[2:], stride, padding,
                                                                     output_padding)
    return _gather(xp, dtype, x, weight, bias, shape, stride, padding, out, relu)


def conv_transpose2d_backward(grad_output, x, weight, stride, padding, *, out=None):
    """Both gradients of conv_transpose2d, as :func:`minivae.kernels.reference.conv_transpose2d_backward`:
    ``(conv2d_forward(gy, W), conv2d_backward_weight(x, gy))``, shapes ``(N, C_in, H, W)``, ``(C_in, C_out, kH, kW)``
    (into ``out=(gx_out, gW_out)`` where given, either None).
    """
    gx_out, gw_out = _out.pair(out, "conv_transpose2d_backward")
    return (conv2d_forward(grad_output, weight, None, stride, padding, out=gx_out),
            conv2d_backward_weight(x, grad_output, weight.shape[2:], stride, padding, out=gw_out))


# --------------------------------------------------------------------------- dense


def _gemm(xp, dtype, a, ta, b, tb, bias, shape, out=None, relu=False):
    c = _out.output(out, shape, dtype, "dense_forward", xp)
    tile = _tile()
    grid = ((shape[1] + tile - 1) // tile, (shape[0] + tile - 1) // tile)
    bias_arr, has_bias = _bias_arg(xp, dtype, bias)
    _launch(xp, _kernel("gemm", dtype), grid, (tile, tile), a, b, int(ta), int(tb), bias_arr, has_bias, int(relu), c)
    return c


def dense_forward(x, weight, bias, *, out=None, relu=False):
    """``y = x @ weight.T + bias`` (then ``max(y, 0)`` where ``relu``) by the tiled GEMM kernel, bias and ReLU fused.

    Args: x ``(N, in_features)``, weight ``(out_features, in_features)``, bias ``(out_features,)`` or None;
        ``out``: the result array (C-contiguous, the result's shape and dtype, else ValueError).
    Returns: ``(N, out_features)`` in the input dtype (``out`` when given).
    """
    xp, dtype, (x, weight, bias) = _prepare(x, weight, bias)
    return _gemm(xp, dtype, x, False, weight, True, bias, (x.shape[0], weight.shape[0]), out, relu)


def dense_backward(grad_output, x, weight):
    """Returns ``(gx, gw, gb) = (gy @ W, gy.T @ x, gy.sum(0))``, shapes of x, weight and ``(out_features,)``."""
    xp, dtype, (gy, x, weight) = _prepare(grad_output, x, weight)
    gx = _gemm(xp, dtype, gy, False, weight, False, None, x.shape)
    gw = _gemm(xp, dtype, gy, True, x, False, None, weight.shape)
    gb = xp.empty((gy.shape[1],), dtype=dtype)
    _launch_1d(xp, _kernel("column_sum", dtype), gb.size, gy, gb)
    return gx, gw, gb


# --------------------------------------------------------------------------- reparameterize + KL


def reparameterize_kl_forward(mu, logvar, eps):
    """Fused ``z = mu + exp(logvar/2) * eps`` and ``kl = 0.5 * sum_j (mu^2 + exp(logvar) - 1 - logvar)``.

    Args: mu, logvar, eps ``(N, D)``. Returns: z ``(N, D)``, kl ``(N,)`` in nats, in the input dtype.
    """
    xp, dtype, (mu, logvar, eps) = _prepare(mu, logvar, eps)
    z = xp.empty(mu.shape, dtype=dtype)
    kl = xp.empty((mu.shape[0],), dtype=dtype)
    _launch_1d(xp, _kernel("reparam_kl_forward", dtype), mu.shape[0], mu, logvar, eps, z, kl)
    return z, kl


def reparameterize_kl_backward(grad_z, grad_kl, mu, logvar, eps):
    """Returns ``(g_mu, g_logvar)``, each ``(N, D)``:
    ``g_mu = gz + gkl * mu``, ``g_logvar = gz * eps * exp(logvar/2) / 2 + gkl * (exp(logvar) - 1) / 2``.
    """
    xp, dtype, (gz, gkl, mu, logvar, eps) = _prepare(grad_z, grad_kl, mu, logvar, eps)
    gmu = xp.empty(mu.shape, dtype=dtype)
    glogvar = xp.empty(mu.shape, dtype=dtype)
    _launch_1d(xp, _kernel("reparam_kl_backward", dtype), mu.size, gz, gkl.reshape(-1), mu, logvar, eps,
               gmu, glogvar)
    return gmu, glogvar


# --------------------------------------------------------------------------- BCE with logits


def _flat_same_shape(xp, shape, *arrays):
    return [(a if a.shape == shape else xp.ascontiguousarray(xp.broadcast_to(a, shape))).reshape(-1)
            for a in arrays]


def bce_with_logits_forward(logits, target):
    """Elementwise ``max(x, 0) - x*t + log1p(exp(-|x|))`` (nats), the shape and dtype of ``logits``."""
    xp, dtype, (logits, target) = _prepare(logits, target)
    shape = np.broadcast_shapes(logits.shape, target.shape)
    x, t = _flat_same_shape(xp, shape, logits, target)
    out = xp.empty(x.shape, dtype=dtype)
    _launch_1d(xp, _kernel("bce_forward", dtype), out.size, x, t, out)
    return out.reshape(shape)


def bce_with_logits_backward(grad_output, logits, target):
    """Gradient w.r.t. the logits: ``gy * (sigmoid(x) - t)``, sigmoid as ``(1 + tanh(x/2)) / 2``."""
    xp, dtype, (gy, logits, target) = _prepare(grad_output, logits, target)
    shape = np.broadcast_shapes(gy.shape, logits.shape, target.shape)
    g, x, t = _flat_same_shape(xp, shape, gy, logits, target)
    out = xp.empty(x.shape, dtype=dtype)
    _launch_1d(xp, _kernel("bce_backward", dtype), out.size, g, x, t, out)
    return out.reshape(shape)


# --------------------------------------------------------------------------- ReLU


def relu_forward(x, *, out=None):
    """``y = max(x, 0)``, one thread per element; the shape and dtype of ``x`` (into ``out`` when given, which may
    be ``x``; ValueError for a wrong ``out``)."""
    shape = np.shape(x)  # (a 0-d ``x`` comes out of _prepare 1-d: the result keeps x's own shape)
    xp, dtype, (x,) = _prepare(x)
    out = _out.output(out, shape, dtype, "relu_forward", xp)
    _launch_1d(xp, _kernel("relu_forward", dtype), out.size, x.reshape(-1), out.reshape(-1))
    return out


def relu_backward(grad_output, output, *, out=None):
    """``gx = gy`` where the ReLU's output ``y > 0``, else 0; one thread per element (into ``out`` when given,
    which may be ``grad_output``: in place; ValueError for a wrong ``out``)."""
    xp, dtype, (gy, y) = _prepare(grad_output, output)
    if gy.shape != y.shape:
        raise ValueError(f"relu_backward: gradient shape {gy.shape} != output shape {y.shape}")
    out = _out.output(out, np.shape(grad_output), dtype, "relu_backward", xp)
    _launch_1d(xp, _kernel("relu_backward", dtype), out.size, gy.reshape(-1), y.reshape(-1), out.reshape(-1))
    return out


# --------------------------------------------------------------------------- fused Adam (not a KERNELS entry)


def fused_adam_step(param, grad, exp_avg, exp_avg_sq, segments, coefficients, hyper, max_len: int) -> None:
    """One Adam step of several parameters in one kernel launch, in place on flat buffers.

    Args:
        param, exp_avg, exp_avg_sq: 1-D C-contiguous buffers holding every parameter and its two moments
            (float32 or float64, one dtype); updated in place.
        grad: 1-D buffer of the gradients of the parameters being updated, in ``segments`` order.
        segments: int64 ``(S, 3)``: per updated parameter, ``(start, end)`` of its elements in ``param`` and
            the start of its gradient in ``grad``. Parameters not listed are left untouched.
        coefficients: ``(S, 2)`` of the buffers' dtype: ``(lr / (1 - beta1^t), 1 - beta2^t)``, ``t`` the
            parameter's own step count (bias correction as ``torch.optim.Adam``).
        hyper: ``(6,)`` of the buffers' dtype: ``(beta1, beta2, 1 - beta1, 1 - beta2, weight_decay, eps)``.
        max_len: the largest ``end - start`` (sizes the grid).
    Maths: Kingma & Ba (2015), Algorithm 1, in the operation order of :class:`minivae.optim.Adam`.
    Raises: TypeError for dtypes other than float32/float64.
    """
    xp = get_array_module(param)
    rows = int(segments.shape[0])
    if rows == 0:
        return
    block = 4 if simulated() else _BLOCK
    cols = max(1, min(-(-int(max_len) // block), _BLOCKS_PER_SM * _cuda_compat.sm_count(xp)))
    _launch(xp, _kernel("adam_step", param.dtype), (cols, rows), block, param, grad, exp_avg, exp_avg_sq,
            segments, coefficients, hyper)
