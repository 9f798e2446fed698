"""Each pass of the compiled step: applied where it should be, switchable off, and the same bits either way."""
from __future__ import annotations

import numpy as np
import pytest
from test_compile_parity import assert_same_state, run_steps  # (tests/compile is on sys.path, as pytest runs it)

from minivae import kernels
from minivae.compiler import passes

ALL_OFF = {name: False for name in passes.DEFAULTS}


def compiled_run(options, name="conv", impl="numba", dtype=np.float32):
    import minivae.compiler as compiler
    from minivae.steps import ELBOStep

    original = ELBOStep.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.compiled:
            self.run = compiler.compile(self.step, passes=options)

    ELBOStep.__init__ = init
    try:
        with kernels.use(impl):
            return run_steps(name, dtype, compiled=True)
    finally:
        ELBOStep.__init__ = original


@pytest.mark.parametrize("impl", ["numba", "reference"])
@pytest.mark.parametrize("only", [None, "epilogue", "memory", "adam"])
def test_each_pass_alone_and_none_give_eager_bits(only, impl):
    options = dict(ALL_OFF, **({only: True} if only else {}))
    with kernels.use(impl):
        m1, o1, l1, _ = run_steps("conv", np.float32, compiled=False)
    m2, o2, l2, step = compiled_run(options, impl=impl)
    assert l1 == l2
    assert_same_state(m1, o1, m2, o2)
    plan = step.run.plan
    assert plan.passes == ([only] if only else [])


def test_epilogue_fuses_every_relu_after_a_conv_or_dense_in_the_conv_vae():
    *_, step = compiled_run(dict(ALL_OFF, epilogue=True))
    plan = step.run.plan
    assert plan.fusions == {"conv2d+relu": 2, "linear+relu": 1, "convtranspose2d+relu": 2}
    assert not any(n.name == "ReLU" for n in plan.nodes)
    assert sum("relu" in n.fused for n in plan.nodes) == 5
    *_, plain = compiled_run(ALL_OFF)
    assert sum(n.name == "ReLU" for n in plain.run.plan.nodes) == 5 and plain.run.plan.fusions == {}


def test_memory_planner_reuses_buffers_and_never_overlaps_live_arrays():
    *_, step = compiled_run(dict(ALL_OFF, memory=True))
    plan = step.run.plan
    assert plan.planned and len(plan.buffers) < len(plan.planned)  # reuse happened
    assert sum(plan.buffers) < sum(plan.nbytes(s) for s in plan.planned)
    life = plan.lifetimes()
    by_buffer: dict = {}
    for s, b in plan.planned_buffer.items():
        by_buffer.setdefault(b, []).append(life[s])
    for spans in by_buffer.values():  # arrays sharing a buffer are never alive at once
        spans.sort()
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))


def test_adam_pass_makes_one_flat_call_and_keeps_state_dict_working():
    m, o, _, step = compiled_run(dict(ALL_OFF, adam=True))
    plan = step.run.plan
    assert plan.fusions == {"adam over all parameters": 1}
    params = list(m.parameters())
    base = params[0].data.base
    assert base is not None and all(p.data.base is base for p in params)  # views into one flat buffer
    state = o.state_dict()
    o.load_state_dict(state)  # replaces the moments: the next replay falls back to the optimizer's own loop
    assert all(st["m"].base is None for st in o.state)
