"""Every public op against PyTorch 2.13 (CPU): one test per (row, mode, dtype) of the table in
``oracle_rows*.py``, each over a few hypothesis examples (0-d, size-1 and empty dims, broadcasting pairs,
non-contiguous layouts), derandomized so that every run draws the same examples.

Modes and tolerances: see ``oracle_harness``. Expected failures are strict xfails (``oracle_xfails.py``) whose
reason describes the disagreement or says the op is not yet implemented.
"""
from __future__ import annotations

import os
import warnings

import oracle_rows
import oracle_rows_edges
import oracle_rows_nn
import oracle_rows_shape
import oracle_rows_twins
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from oracle_harness import check
from oracle_inputs import seeds
from oracle_xfails import XFAILS

ROWS = oracle_rows.rows() + oracle_rows_shape.rows() + oracle_rows_nn.rows() + oracle_rows_edges.rows()
ROWS += oracle_rows_twins.rows(ROWS)
for _row in ROWS:
    _row.xfail.update(XFAILS.get(_row.name, {}))
# shrinking a failure costs time on every run of a strict xfail: ORACLE_SHRINK=1 shrinks (to write a finding)
PHASES = (Phase.explicit, Phase.reuse, Phase.generate) + ((Phase.shrink,) if os.environ.get("ORACLE_SHRINK") else ())
EXAMPLES = {"forward": 8, "vjp": 5, "double_backward": 3, "jvp": 4, "fwd_over_rev": 3, "rev_over_fwd": 3}


def _params():
    params = []
    for row in ROWS:
        for mode in row.modes:
            for dtype in row.dtypes:
                reason = row.xfail_reason(mode, dtype)
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                params.append(pytest.param(row, mode, dtype, marks=marks, id=f"{row.name}-{mode}-{dtype}"))
    return params


PARAMS = _params()


@pytest.mark.parametrize("row, mode, dtype", PARAMS)
def test_op_against_pytorch(row, mode, dtype):
    n = row.examples or EXAMPLES[mode]

    @settings(max_examples=min(n, EXAMPLES[mode]), derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False, phases=PHASES)
    @given(case=row.gen, layouts=st.lists(st.sampled_from(row.layouts), min_size=1, max_size=3), seed=seeds)
    def examples(case, layouts, seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch's deprecation notes (x.T on 1-d) are not ours
            check(row, mode, dtype, case, tuple(layouts), seed)

    examples()


def test_row_names_are_unique_and_every_xfail_names_a_row():
    names = [r.name for r in ROWS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert not set(XFAILS) - set(names), f"xfails of rows that do not exist: {sorted(set(XFAILS) - set(names))}"
