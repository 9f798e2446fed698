"""Expected failures of the oracle: row name -> {mode, dtype, (mode, dtype) or "*": reason}.

Every reason names an entry of /work/notes/oracle-findings.md (``finding N``: minivae disagrees with PyTorch,
with a minimal reproducer there) or says ``not yet implemented``. The marks are strict: when the op is fixed the
case passes, the xfail fails, and its entry here has to go.
"""
from __future__ import annotations

F = "finding {}".format
INPLACE = ["Tensor.add_", "Tensor.sub_", "Tensor.mul_", "Tensor.div_", "Tensor.copy_", "Tensor.zero_", "Tensor.fill_",
           "Tensor.clamp_", "Tensor.__iadd__", "Tensor.__isub__", "Tensor.__imul__", "Tensor.__itruediv__"]

XFAILS = {
    **{name: {"*": F(1)} for name in ("Tensor.__matmul__", "Tensor.__rmatmul__", "Tensor.matmul", "F.matmul")},
    "F.linear": {"*": F(2)},
    "F.cross_entropy": {"forward": F(3)},
    "F.nll_loss": {"forward": F(3)},
    **{name: {"jvp": F(4)} for name in INPLACE},
    "Tensor.copy_": {"jvp": F(4), "vjp": F(13)},
    **{name: {"*": F(5)} for name in ("Tensor.relu", "F.relu", "edge.relu_0d")},
    "edge.relu_at_0_and_nan": {"vjp": F(6), "jvp": F(6)},
    "edge.pow_x_to_0": {"double_backward": F(7), "rev_over_fwd": F(7)},
    "edge.norm_at_0": {"double_backward": F(8), "rev_over_fwd": F(8)},
    "F.conv_transpose2d": {"fwd_over_rev": F(14)},
    "Tensor.chunk": {"forward": F(9)},
    "F.chunk": {"forward": F(9)},
}
