"""Fails when a public op has no row in the oracle's table.

Public ops: every name in ``minivae.functional.__all__`` (as ``F.name``) and every public method, property
and operator of ``minivae.Tensor`` (as ``Tensor.name``), less the explicit, commented exclusions below (things
that are not ops: conversions to other types, autograd plumbing, attributes).
"""
from __future__ import annotations

import inspect

from test_oracle_ops import ROWS

import minivae as mv
import minivae.functional as MF

# Tensor attributes that are not ops (no tensor -> tensor mathematics to compare), each with why.
NOT_OPS = {
    "numpy": "conversion to a NumPy array",
    "item": "conversion to a Python number",
    "tolist": "conversion to Python lists",
    "backward": "runs the engine: checked by every vjp/double_backward case",
    "register_hook": "autograd plumbing",
    "retain_grad": "autograd plumbing",
    "requires_grad_": "autograd flag",
    "zero_grad": "clears .grad (minivae's own helper)",
    "detach": "cuts the graph (checked in test_oracle_edges)",
    "detach_": "cuts the graph in place",
    "to": "device/dtype move: the dtype form has a row (Tensor.to.dtype); devices are not PyTorch's",
    "cpu": "device move", "cuda": "device move", "gpu": "device move",
    "size": "shape query", "dim": "shape query", "numel": "shape query", "nelement": "shape query",
    "element_size": "storage query", "stride": "storage query", "is_contiguous": "storage query",
    "contiguous": "returns a contiguous copy or self: identity on values",
    "data_ptr": "storage query", "untyped_storage": "storage query",
    "type": "dtype query/cast",
    "is_floating_point": "dtype query",
    "shape": "attribute", "dtype": "attribute", "ndim": "attribute", "device": "attribute",
    "is_leaf": "autograd attribute", "grad_fn": "autograd attribute", "grad": "autograd attribute",
    "data": "attribute", "requires_grad": "autograd attribute", "version": "version counter (test_oracle_edges)",
    "_version": "version counter",
}
# dunders of Tensor that are Python protocol, not ops
NOT_OP_DUNDERS = {
    "__init__", "__new__", "__repr__", "__str__", "__len__", "__array__", "__array_priority__", "__dict__",
    "__module__", "__doc__", "__weakref__", "__hash__", "__bool__", "__iter__", "__format__", "__float__",
    "__int__", "__index__", "__class__", "__annotations__", "__slots__", "__contains__", "__reduce__",
    "__reduce_ex__", "__getstate__", "__setstate__", "__deepcopy__", "__copy__", "__dlpack__",
    "__dlpack_device__", "__array_ufunc__", "__array_function__", "__array_wrap__", "__cuda_array_interface__",
    "__firstlineno__", "__static_attributes__", "__dir__", "__sizeof__", "__init_subclass__", "__subclasshook__",
    "__getattribute__", "__setattr__", "__delattr__", "__class_getitem__", "__complex__",
}


def public_tensor_names() -> set:
    names = set()
    for cls in inspect.getmro(mv.Tensor):
        if cls is object:
            continue
        for name in vars(cls):
            dunder = name.startswith("__") and name.endswith("__")
            if dunder and name not in NOT_OP_DUNDERS:
                names.add(name)
            elif not name.startswith("_") and name not in NOT_OPS:
                names.add(name)
    return {f"Tensor.{n}" for n in names}


def public_ops() -> set:
    return {f"F.{n}" for n in MF.__all__} | public_tensor_names()


def test_every_public_op_has_an_oracle_row():
    covered = {name for row in ROWS for name in row.covers}
    missing = sorted(public_ops() - covered)
    assert not missing, (f"public ops without an oracle row (add one to tests/oracle/oracle_rows*.py, or, for a "
                         f"non-op, an entry with the reason to NOT_OPS): {missing}")


def test_the_enumeration_sees_the_ops_it_must():
    ops = public_ops()
    for name in ("F.conv2d", "F.exp", "Tensor.__add__", "Tensor.__matmul__", "Tensor.__getitem__", "Tensor.sum"):
        assert name in ops
    assert not {"Tensor.numpy", "Tensor.item", "Tensor.backward", "Tensor.__init__"} & ops
