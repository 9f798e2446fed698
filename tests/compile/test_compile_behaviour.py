"""What ``minivae.compile`` does call by call: eager, record, replay; guards and recaptures; the errors it raises;
``check=True``; a plan you can read."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import minivae as mv
from minivae import kernels
from minivae.autograd.tensor import Tensor
from minivae.compiler import CaptureError, CheckError, RecaptureWarning, assert_finite
from minivae.nn import Linear
from minivae.optim import SGD, Adam


def small_step(seed=0, dtype=np.float64, opt=Adam, compiled=True, **options):
    rng = np.random.default_rng(seed)
    layer = Linear(3, 2, rng=rng, dtype=dtype)
    optimizer = opt(layer.parameters(), lr=0.1)

    def step(x, y):
        loss = mv.mean((mv.tanh(layer(x)) - y) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return layer, optimizer, (mv.compile(step, **options) if compiled else step)


def data(k, n=4, dtype=np.float64):
    rng = np.random.default_rng(100 + k)
    return Tensor(rng.standard_normal((n, 3)).astype(dtype)), Tensor(rng.standard_normal((n, 2)).astype(dtype))


def test_first_call_eager_second_records_later_replay():
    layer, _, step = small_step()
    assert step.plan is None
    step(*data(0))
    assert step.plan is None and step.captures == 0
    step(*data(1))
    assert step.captures == 1 and step.plan is not None
    names = [n.name for n in step.plan.nodes]
    assert names[0] == "Linear" and "zero_grad" in names and names[-1] == "Adam.step"
    before = layer.weight.data.copy()
    out = step(*data(2))  # a replay: no graph, a plain Tensor out, the parameters changed in place
    assert out.grad_fn is None and not out.requires_grad and out.shape == ()
    assert not np.array_equal(before, layer.weight.data) and layer.weight.grad is not None


def test_replay_matches_eager_and_returns_the_loss_of_its_own_inputs():
    l1, _, eager = small_step(opt=SGD, compiled=False)
    l2, _, compiled = small_step(opt=SGD)
    for k in range(6):
        a = eager(*data(k))
        b = compiled(*data(k))
        assert a.item() == b.item()
    assert np.array_equal(l1.weight.data, l2.weight.data) and np.array_equal(l1.bias.grad.data, l2.bias.grad.data)


def test_new_shape_recaptures_and_warns_once():
    _, _, step = small_step()
    for k in range(3):
        step(*data(k))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(4):
            step(*data(k, n=7))
    assert [w.category for w in caught] == [RecaptureWarning]
    assert "7x3" in str(caught[0].message)
    assert step.captures == 2 and len(step.plans) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step(*data(5))  # back to the first shape: its plan is kept, no warning
        step(*data(6, n=7))


def test_guards_cover_dtype_kernels_and_grad_mode():
    _, _, step = small_step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecaptureWarning)
        for k in range(2):
            step(*data(k))
        keys = set(step.plans)
        with kernels.use("reference"):
            step(*data(3))
            step(*data(4))
        assert len(step.plans) == 2 and set(step.plans) > keys
    (shapes, selection, grad_enabled), _ = list(step.plans)
    assert shapes == (((4, 3), "float64", "cpu"), ((4, 2), "float64", "cpu")) and grad_enabled is True


def test_a_step_whose_ops_depend_on_the_data_raises_naming_the_first_differing_op():
    w = Tensor(np.ones(3), requires_grad=True)

    @mv.compile
    def step(x):
        y = (x * w).sum()
        if y.item() > 0:  # data-dependent Python control flow
            y = mv.exp(y)
        y.backward()
        return y

    step(Tensor(np.ones(3)))
    with pytest.raises(CaptureError, match=r"operation \d+ was .*(Exp|grad).*data"):
        step(Tensor(-np.ones(3)))


def test_compile_of_a_function_touching_no_tensor_raises():
    step = mv.compile(lambda x: x)
    with pytest.raises(CaptureError, match="ran no Tensor operation"):
        step(np.ones(3))


def test_a_python_number_returned_by_the_step_raises():
    w = Tensor(np.ones(3), requires_grad=True)
    step = mv.compile(lambda x: (x * w).sum().item())
    with pytest.raises(CaptureError, match="returned a float"):
        step(Tensor(np.ones(3)))


def test_a_mask_made_on_data_outside_any_op_is_caught():
    w = Tensor(np.ones(3), requires_grad=True)

    @mv.compile
    def step(x):
        mask = Tensor((x.data > 0).astype(np.float64))  # made on .data, outside any op
        loss = (x * w * mask).sum()
        loss.backward()
        return loss

    step(Tensor(np.array([1.0, -1.0, 1.0])))
    with pytest.raises(CaptureError, match="no recorded op made"):
        step(Tensor(np.array([-1.0, 1.0, 1.0])))


def test_comparisons_and_where_are_replayed_on_new_data():
    w = Tensor(np.ones(3), requires_grad=True)
    grads = []

    def step(x):
        loss = mv.where(x > 0, x * w, -(x * w)).sum()
        w.grad = None
        loss.backward()
        return loss

    compiled = mv.compile(step)
    xs = [np.array([1.0, -2.0, 3.0]), np.array([-1.0, 2.0, 3.0]), np.array([1.0, 2.0, -3.0]),
          np.array([-4.0, -2.0, 3.0])]
    for x in xs:
        out = compiled(Tensor(x))
        grads.append(w.grad.data.copy())
        assert out.item() == np.abs(x).sum()
    assert all(np.array_equal(g, np.abs(x)) for g, x in zip(grads, xs))  # d|x w|/dw at w = 1


def test_check_mode_passes_on_a_correct_step_and_leaves_eager_state():
    l1, _, step = small_step(check=True)
    l2, _, eager = small_step(compiled=False)
    for k in range(5):
        step(*data(k))
        eager(*data(k))
    assert np.array_equal(l1.weight.data, l2.weight.data)


def test_check_mode_raises_at_the_first_difference():
    w = Tensor(np.ones(3), requires_grad=True)
    scale = {"value": 1.0}

    def step(x):
        loss = (x * w).sum() * scale["value"]  # a Python number the plan freezes
        w.grad = None
        loss.backward()
        return loss

    checked = mv.compile(step, check=True)
    for k in range(3):
        checked(Tensor(np.full(3, float(k))))
    scale["value"] = 2.0
    with pytest.raises(CheckError, match=r"node \d+ \(Mul\) differs from eager"):
        checked(Tensor(np.ones(3)))


def test_assert_finite_raises_in_the_replay_before_the_update():
    layer, optimizer, _ = small_step()

    @mv.compile
    def step(x):
        loss = layer(x).sum()
        assert_finite(loss, FloatingPointError, lambda a: f"loss is {float(a)}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    for k in range(3):
        step(data(k)[0])
    before = layer.weight.data.copy()
    bad = data(3)[0].data.copy()
    bad[0, 0] = np.nan
    with pytest.raises(FloatingPointError, match="loss is nan"):
        step(Tensor(bad))
    assert np.array_equal(before, layer.weight.data)


def test_random_draws_inside_the_step_are_drawn_anew_by_every_replay():
    w = Tensor(np.ones(4, dtype=np.float32), requires_grad=True)

    def step(x):
        loss = (x * w * mv.randn(4)).sum()
        w.grad = None
        loss.backward()
        return loss

    mv.manual_seed(3)
    eager = [step(Tensor(np.ones(4, np.float32))).item() for _ in range(5)]
    mv.manual_seed(3)
    compiled = mv.compile(step)
    replayed = [compiled(Tensor(np.ones(4, np.float32))).item() for _ in range(5)]
    assert replayed == eager and len(set(replayed)) == 5


def test_backward_with_create_graph_inside_a_step_is_refused():
    w = Tensor(np.ones(3), requires_grad=True)

    @mv.compile
    def step(x):
        loss = (x * w).sum() ** 2
        loss.backward(create_graph=True)
        return loss

    with pytest.raises(CaptureError, match="create_graph"):
        step(Tensor(np.ones(3)))


def test_a_gradient_penalty_step_replays_with_the_same_bits():
    """autograd.grad(create_graph=True) inside the step: its VJP ops are ops like any other."""
    def make():
        w = Tensor(np.linspace(0.5, 1.5, 3), requires_grad=True)

        def step(x):
            loss = mv.sum(mv.tanh(x * w) ** 2)
            (g,) = mv.autograd.grad(loss, w, create_graph=True)
            total = loss + 0.1 * (g * g).sum()
            w.grad = None
            total.backward()
            with mv.no_grad():
                w.sub_(0.1 * w.grad)
            return total
        return w, step

    w1, eager = make()
    w2, step = make()
    compiled = mv.compile(step)
    for k in range(6):
        x = np.random.default_rng(k).standard_normal(3)
        assert eager(Tensor(x)).item() == compiled(Tensor(x)).item()
    assert np.array_equal(w1.data, w2.data) and compiled.captures == 1


def test_unknown_pass_and_non_callable_raise():
    with pytest.raises(ValueError, match="unknown pass"):
        mv.compile(lambda x: x, passes={"nope": False})
    with pytest.raises(TypeError, match="expected a function"):
        mv.compile(3)


def test_plan_summary_and_memory_plot(tmp_path):
    _, _, step = small_step()
    for k in range(3):
        step(*data(k))
    text = step.plan.summary()
    assert "Linear" in text and "Adam.step" in text and "peak live memory" in text and "MFLOP" in text
    labels, live = step.plan.memory_profile()
    assert len(labels) == len(step.plan.nodes) and live.max() > 0
    fig = step.plan.plot_memory(path=tmp_path / "memory.png")
    assert (tmp_path / "memory.png").stat().st_size > 1000 and fig is not None
