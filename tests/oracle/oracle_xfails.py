"""Expected failures of the oracle: row name -> {mode, dtype, (mode, dtype) or "*": reason}.

Every reason names an entry of /work/notes/oracle-findings.md (``finding N``: minivae disagrees with PyTorch,
with a minimal reproducer there) or says ``not yet implemented``. The marks are strict: when the op is fixed the
case passes, the xfail fails, and its entry here has to go. (Findings 1-7, 9-14 were fixed in main at c961671
and 7b5e36b; finding 8 became a documented difference, see oracle_rows_edges.py.)
"""
from __future__ import annotations

F = "finding {}".format

XFAILS = {
    "Tensor.any": {"forward": F(15)},
    "Tensor.all": {"forward": F(15)},
}
