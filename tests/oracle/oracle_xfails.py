"""Expected failures of the oracle: row name -> {mode, dtype, (mode, dtype) or "*": reason}.

Each reason says where minivae disagrees with PyTorch (a minimal reproducer belongs in the reason) or says
``not yet implemented``. The marks are strict: when the op is fixed the case passes, the xfail fails, and its
entry here has to go. Empty: every oracle case agrees with PyTorch (the documented differences are left out of
their rows with a comment, see ``oracle_rows_edges.py`` and docs/differences_from_pytorch.md).
"""
from __future__ import annotations

F = "finding {}".format

XFAILS: dict = {}
