"""The Numba CPU kernel set ("numba" on the CPU): every name in :data:`minivae.kernels.KERNELS`, with the
signatures and results of :mod:`minivae.kernels.reference`.

The convolutions are :mod:`minivae.kernels._cpu_conv` (the kernels: shapes, dtypes, chunks, workspaces) and
:mod:`minivae.kernels._cpu_conv_jit` (the jitted work they launch: im2col + GEMM, col2im, per chunk);
dense, reparameterize + KL, BCE with logits and ReLU are :mod:`minivae.kernels._cpu_elementwise`. What they share:
the chunking, the parallel launch and the dtype check (:mod:`minivae.kernels._cpu_threads`) and OpenBLAS's GEMM
callable from jitted code with the BLAS thread limit (:mod:`minivae.kernels._blas`).

For the compiled step (issue 24): ``out=`` on the kernels returning one array (:mod:`minivae.kernels._out`), the
ReLU epilogue ``relu=True`` of the forward convolutions and dense (:mod:`minivae.kernels._cpu_epilogue`), and
``relu_output=`` on the two backward kernels below, which mask ``grad_output`` as :func:`relu_backward` does
before the kernel runs (a separate pass: not fused into the kernels' reads).
"""
from __future__ import annotations

from minivae.kernels import KERNELS, _cpu_conv, _cpu_elementwise

# ``__all__`` is built from KERNELS, which ruff cannot read: the imports below carry noqa: F401
from minivae.kernels._cpu_conv import (  # noqa: F401  (the kernel set's names, re-exported)
    conv2d_backward_bias,
    conv2d_backward_weight,
    conv2d_forward,
    conv_transpose2d_forward,
)
from minivae.kernels._cpu_elementwise import (  # noqa: F401  (the kernel set's names, re-exported)
    bce_with_logits_backward,
    bce_with_logits_forward,
    dense_forward,
    relu_backward,
    relu_forward,
    reparameterize_kl_backward,
    reparameterize_kl_forward,
)
from minivae.kernels._cpu_threads import num_threads

__all__ = [*KERNELS, "threads"]


def conv_transpose2d_backward(grad_output, x, weight, stride, padding, *, out=None, relu_output=None):
    """:func:`minivae.kernels._cpu_conv.conv_transpose2d_backward` (shapes, dtypes, ``out``, errors there), with
    ``grad_output`` first masked by :func:`relu_backward` where ``relu_output`` (the output of a ReLU that followed
    the transposed convolution) is given: the bits of calling ``relu_backward`` first."""
    if relu_output is not None:
        grad_output = relu_backward(grad_output, relu_output)
    return _cpu_conv.conv_transpose2d_backward(grad_output, x, weight, stride, padding, out=out)


def dense_backward(grad_output, x, weight, *, relu_output=None):
    """:func:`minivae.kernels._cpu_elementwise.dense_backward` (``(gx, gw, gb)``), with ``grad_output`` first masked
    by :func:`relu_backward` where ``relu_output`` is given: the bits of calling ``relu_backward`` first."""
    if relu_output is not None:
        grad_output = relu_backward(grad_output, relu_output)
    return _cpu_elementwise.dense_backward(grad_output, x, weight)


def threads() -> int:
    """Threads a kernel call splits its work over: Numba's (``NUMBA_NUM_THREADS``, or ``numba.set_num_threads``)."""
    return num_threads()


def cache_is_cold() -> bool:
    """True when Numba's disk cache holds no compiled code for one of the CPU kernels' chunk functions or their
    parallel driver (the first run on this machine or after a change to their source): their first calls will then
    compile for seconds instead of loading in a fraction of one. Reads the cache index only; compiles and changes
    nothing."""
    from minivae.kernels import _cpu_conv_jit, _cpu_elementwise, _cpu_threads

    jitted = [_cpu_threads._parallel] + [getattr(m, name) for m in (_cpu_conv_jit, _cpu_elementwise)
                                         for name in dir(m) if name.endswith("_chunk")]
    try:
        return any(not f._cache._cache_file._load_index() for f in jitted)  # (Numba's cache, private API)
    except (AttributeError, OSError):
        return False
