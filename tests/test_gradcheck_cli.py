"""`minivae gradcheck` and the minivae.opcheck catalogue / check_op API."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae import Function, opcheck
from minivae.cli import main

REQUIRED = ["relu", "sigmoid", "softplus", "tanh", "exp", "log", "add", "sub", "mul", "div", "pow", "matmul",
            "sum", "mean", "reshape", "transpose", "concatenate", "split", "getitem", "linear", "conv2d",
            "conv_transpose2d", "binary_cross_entropy_with_logits", "mse_loss", "kl_normal", "reparameterize_kl"]


class Cube(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return x ** 3

    def backward(self, gy):
        (x,) = self.saved
        return 3 * x ** 2 * gy


class WrongCube(Cube):
    def backward(self, gy):
        (x,) = self.saved
        return 2.9 * x ** 2 * gy  # 3% off


class Noisy(Function):
    def forward(self, x):
        return 2 * x

    def backward(self, gy):
        return 2 * gy + np.random.default_rng().standard_normal() * 1e-12  # not reentrant


# ------------------------------------------------------------------ the catalogue
def test_catalogue_covers_every_differentiable_functional_op():
    names = set(opcheck.op_names())
    assert set(REQUIRED) <= names
    # "concatenate" is cat's alias; comparisons and argmax/argmin have no gradient
    assert set(F.__all__) - {"concatenate", "eq", "ne", "lt", "le", "gt", "ge", "argmax", "argmin"} <= names


def test_conv_settings_include_stride_padding_and_output_padding():
    settings = {c.settings for c in opcheck.cases(["conv2d", "conv_transpose2d"])}
    assert any("stride=2" in s and "padding=1" in s for s in settings)
    assert any("output_padding=1" in s for s in settings)
    assert len(opcheck.cases("conv_transpose2d")) >= 3


def test_unknown_op_lists_the_known_ones():
    with pytest.raises(ValueError, match="known ops: relu"):
        opcheck.cases(["conv3d"])


def test_an_op_alone_gets_the_same_inputs_as_in_the_full_run():
    alone = opcheck.check_all(["kl_normal", "div"], seed=3)
    together = [r for r in opcheck.check_all(seed=3) if r.op in ("kl_normal", "div")]
    assert [(r.settings, r.max_abs_error) for r in alone] == [(r.settings, r.max_abs_error) for r in together]


# ------------------------------------------------------------------ check_op
def test_check_op_on_a_user_function_passes_with_small_errors(rng):
    r = opcheck.check_op(Cube, [rng.standard_normal((3, 4))])
    assert r.passed and r.message == ""
    assert r.op == "Cube" and r.shapes == ((3, 4),) and r.mode == "full"
    assert 0 <= r.max_abs_error < 1e-6 and 0 <= r.max_rel_error < 1e-6


@pytest.mark.parametrize("fast", [False, True])
def test_check_op_catches_a_wrong_backward_and_agrees_with_gradcheck(rng, fast):
    x = rng.uniform(0.5, 2.0, (2, 3))
    r = opcheck.check_op(WrongCube, [x], fast=fast)
    assert not r.passed
    assert "analytic=" in r.message and "numeric=" in r.message
    if fast:  # a projection mixes elements: the relative error is near, not at, 0.1 / 3
        assert r.max_rel_error > 0.01
    else:
        assert r.max_rel_error == pytest.approx(0.1 / 3, rel=1e-6)
    with pytest.raises(mv.GradcheckError):
        mv.gradcheck(WrongCube.apply, [x], fast_mode=fast)


def test_full_mode_errors_are_exact_for_a_known_error(rng):
    x = np.array([[1.0, 2.0]])
    r = opcheck.check_op(WrongCube, [x])
    # the Jacobian is diagonal: analytic 2.9 x^2, numeric 3 x^2; worst at x = 2
    assert r.max_abs_error == pytest.approx(0.1 * 4, rel=1e-6)
    assert r.max_rel_error == pytest.approx(0.1 / 3, rel=1e-6)
    assert "x[0, 1]" in r.message


def test_check_op_by_name_with_op_kwargs(rng):
    x, w, b = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    r = opcheck.check_op("conv2d", [x, w, b], op_kwargs={"stride": 2, "padding": 1})
    assert r.passed and r.op == "conv2d" and r.settings == "stride=2, padding=1"
    assert r.shapes == ((1, 2, 5, 5), (3, 2, 3, 3), (3,))


def test_fixed_inputs_are_not_checked(rng):
    mu, lv = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    eps = mv.Tensor(rng.standard_normal((2, 2)))
    assert opcheck.check_op(F.reparameterize_kl, [mu, lv, eps]).passed


def test_non_reentrant_backward_fails():
    r = opcheck.check_op(Noisy, [np.ones(3)])
    assert not r.passed and "reentrant" in r.message and math.isnan(r.max_abs_error)


def test_an_op_that_raises_is_a_failure_not_a_crash(rng):
    r = opcheck.check_op("linear", [rng.standard_normal((2, 3)), rng.standard_normal((4, 5))])
    assert not r.passed and r.message.startswith("ValueError") and math.isnan(r.max_rel_error)


def test_check_op_rejects_non_ops():
    with pytest.raises(ValueError, match="unknown op"):
        opcheck.check_op("conv9d", [np.ones(2)])
    with pytest.raises(TypeError):
        opcheck.check_op(42, [np.ones(2)])


def test_format_table(rng):
    rows = [opcheck.check_op(Cube, [rng.standard_normal(3)]), opcheck.check_op(WrongCube, [np.ones(2)])]
    lines = opcheck.format_table(rows).splitlines()
    assert lines[0].split() == ["op", "settings", "input", "shapes", "max", "abs", "err", "max", "rel", "err",
                                "result"]
    assert lines[2].split()[0] == "Cube" and lines[2].endswith("pass")
    assert lines[3].split()[0] == "WrongCube" and lines[3].endswith("FAIL")


# ------------------------------------------------------------------ the command
def test_cli_one_op_prints_a_table_and_succeeds(capsys):
    assert main(["gradcheck", "--op", "conv_transpose2d", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("conv_transpose2d ")]
    assert len(rows) == len(opcheck.cases("conv_transpose2d"))
    assert all(row.endswith("pass") for row in rows)
    assert "output_padding=1" in out and "FAIL" not in out
    assert "max abs err" in out and "max rel err" in out
    assert f"{len(rows)} passed, 0 failed" in out


def test_cli_all_ops_fast_mode(capsys):
    assert main(["gradcheck", "--fast", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "fast (random projections)" in out
    for name in REQUIRED:
        assert any(line.startswith(name + " ") for line in out.splitlines()), name


def test_cli_all_ops_full_mode(capsys):
    assert main(["gradcheck"]) == 0
    assert f"{len(opcheck.CASES)} passed, 0 failed" in capsys.readouterr().out


def test_cli_exit_status_is_one_on_a_failure(capsys, monkeypatch, rng):
    broken = opcheck.OpCase("cube", "wrong backward", WrongCube.apply, lambda r: [r.uniform(1, 2, (2, 2))])
    monkeypatch.setattr(opcheck, "CASES", opcheck.CASES + (broken,))
    assert main(["gradcheck", "--op", "cube", "--op", "exp"]) == 1
    out = capsys.readouterr().out
    assert "FAIL cube wrong backward: input 0" in out and "1 passed, 1 failed" in out


def test_cli_list(capsys):
    assert main(["gradcheck", "--list"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == len(opcheck.CASES) and "conv2d" in out


def test_cli_usage_errors(capsys):
    assert main(["gradcheck", "--op", "conv9d"]) == 2
    assert "unknown op 'conv9d'" in capsys.readouterr().err
    assert main(["gradcheck", "--op", "exp", "--kernels", "no-such-kernels"]) == 2
    assert "not available" in capsys.readouterr().err


def test_cli_restores_the_kernel_choice():
    from minivae import kernels

    before = kernels.current("cpu")
    assert main(["gradcheck", "--op", "exp", "--kernels", "reference"]) == 0
    assert kernels.current("cpu") == before


def test_cli_numba_kernels(capsys):
    from minivae import kernels

    try:
        kernels.module("cpu", "numba")
    except ImportError as err:
        pytest.skip(f"numba CPU kernels not importable: {err}")
    rc = main(["gradcheck", "--kernels", "numba", "--op", "conv2d", "--op", "conv_transpose2d", "--op", "linear",
               "--op", "reparameterize_kl", "--op", "binary_cross_entropy_with_logits"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "kernels=numba" in out


def test_help_names_the_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "gradcheck" in capsys.readouterr().out
