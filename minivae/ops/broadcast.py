"""``sum_to``: the single place where broadcasting is undone in backward (HIPS autograd's ``unbroadcast``)."""
from __future__ import annotations


def sum_to(grad, shape: tuple):
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving an array of ``shape``.

    If ``x`` of ``shape`` was broadcast to ``grad.shape`` in the forward pass, the VJP is this sum.
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    grad = grad.sum(axis=axes, keepdims=True) if axes else grad
    return grad.reshape(shape)
