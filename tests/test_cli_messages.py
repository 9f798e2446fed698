"""The command line forgives the usual mistakes: the exact lines it prints for them.

* no abbreviated flags (``--epoch 1`` is not taken for ``--epochs``);
* an unknown flag: the sub-command's usage, then one line with the closest flag ("did you mean --lr?");
* a bad value: one line naming the flag, the value and what is allowed, no usage;
* ``evaluate``/``sample``/``plot`` on something that is not a run: one line (a folder of runs lists them);
* ``sample`` writes into the run folder by default and creates ``--out``'s folder;
* a warning is one plain line; every flag has a help text that gives its default; plurals are right.
"""
from __future__ import annotations

import argparse
import warnings
import zipfile

import pytest

from minivae.cli import _HelpFormatter, build_parser, closest_flag, main


def _fails(capsys, argv, status=2) -> list[str]:
    """Run ``minivae argv`` expecting an error; the lines it wrote to stderr (stdout must stay empty)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == status, err
    assert out == ""
    return err.splitlines()


@pytest.mark.parametrize("flag, expected", [
    ("--learning-rate", "--lr"), ("--batchsize", "--batch-size"), ("--epoch", "--epochs"),
    ("--latent_dim", "--latent-dim"), ("--latentdim", "--latent-dim"), ("--learning-rate=3", "--lr"),
    ("--zzz", None)])
def test_closest_flag(flag, expected):
    options = ["--lr", "--batch-size", "--epochs", "--latent-dim", "--seed", "-h", "--help"]
    assert closest_flag(flag, options) == expected


@pytest.mark.parametrize("flag, hint", [("--learning-rate", "--lr"), ("--batchsize", "--batch-size"),
                                        ("--epoch", "--epochs")])
def test_an_unknown_flag_shows_the_subcommand_usage_and_the_closest_flag(capsys, flag, hint):
    lines = _fails(capsys, ["train", flag, "1"])
    assert lines[0].startswith("usage: minivae train ")
    assert lines[-1] == f"minivae train: error: unknown option {flag} (did you mean {hint}?)"


def test_an_unknown_flag_of_a_nested_command_shows_that_command_usage(capsys):
    lines = _fails(capsys, ["data", "fetch", "mnist", "--mirorr", "http://x"])
    assert lines[0].startswith("usage: minivae data fetch ")
    assert lines[-1] == "minivae data fetch: error: unknown option --mirorr (did you mean --mirror?)"


def test_a_flag_far_from_every_other_gets_the_help_pointer(capsys):
    lines = _fails(capsys, ["evaluate", "run", "--zzzz"])
    assert lines[-1] == "minivae evaluate: error: unknown option --zzzz (see minivae evaluate --help)"


def test_a_misspelled_command_is_one_line_with_a_suggestion(capsys):
    assert _fails(capsys, ["trian"]) == [
        "minivae: error: unknown command 'trian' (choose from train, evaluate, sample, plot, data, gradcheck); "
        "did you mean train?"]


@pytest.mark.parametrize("argv, line", [
    (["train", "--epochs", "0"], "minivae train: error: argument --epochs: must be >= 1, got 0"),
    (["train", "--lr", "-1"], "minivae train: error: argument --lr: must be a finite number > 0, got -1"),
    (["train", "--batch-size", "x"], "minivae train: error: argument --batch-size: expected an integer, got 'x'"),
    (["train", "--beta", "nan"], "minivae train: error: argument --beta: must be a finite number >= 0, got nan"),
    (["train", "--model", "cnv"], "minivae train: error: argument --model: invalid choice: 'cnv' (choose from conv, "
                                  "cvae, cvae-conv, vae-conv, vae-conv-keras, vae-mlp, vae-mlp-torch); did you mean "
                                  "conv?"),
    (["evaluate", "run", "--seed", "1.5"], "minivae evaluate: error: argument --seed: invalid int value: '1.5'"),
    (["gradcheck", "--order", "3"], "minivae gradcheck: error: argument --order: invalid choice: 3 (choose from 1, 2)"),
])
def test_a_bad_value_is_one_line_naming_flag_value_and_range(capsys, argv, line):
    assert _fails(capsys, argv) == [line]


def test_abbreviations_are_refused(capsys):
    lines = _fails(capsys, ["train", "--epoch", "1"])
    assert lines[-1] == "minivae train: error: unknown option --epoch (did you mean --epochs?)"


def test_a_file_that_is_not_a_run(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    for command in ("evaluate", "sample", "plot"):
        assert _fails(capsys, [command, str(notes)], status=1) == [
            f"minivae {command}: error: {notes} is not a run: give the folder written by `minivae train --out DIR`, "
            f"or the checkpoint.npz inside it"]


def test_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert _fails(capsys, ["evaluate", str(tmp_path)], status=1) == [
        f"minivae evaluate: error: {tmp_path} is not a run: it holds no checkpoint.npz (a run is the folder "
        f"`minivae train --out DIR` writes)"]


def test_a_folder_of_runs_lists_them(tmp_path, capsys):
    for name in ("b", "a"):
        (tmp_path / name).mkdir()
        with zipfile.ZipFile(tmp_path / name / "checkpoint.npz", "w"):
            pass
    (tmp_path / "notes").mkdir()
    assert _fails(capsys, ["plot", str(tmp_path)], status=1) == [
        f"minivae plot: error: {tmp_path} is a folder of runs, not a run; the runs inside: {tmp_path / 'a'}, "
        f"{tmp_path / 'b'}"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_mnist_dir):
    from minivae.data import binarize, load_dataset, to_float
    from minivae.train import TrainConfig, fit

    out = tmp_path_factory.mktemp("cli") / "run"
    images, labels = load_dataset("mnist", "test", data_dir=shared_mnist_dir)
    x = binarize(to_float(images[:120]))
    cfg = TrainConfig(model="vae-mlp", dataset="mnist", data_dir=str(shared_mnist_dir), epochs=1, batch_size=40,
                      lr=1e-3, latent_dim=2, test_limit=20, figures=False, progress=False, out=str(out),
                      model_options={"hidden": [16]})
    fit(cfg, data=(x[:100], labels[:100], x[100:], labels[100:]), log=lambda *a: None)
    return out


def test_sample_writes_into_the_run_folder_by_default(run_dir, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(run_dir), "--n", "4"]) == 0
    assert capsys.readouterr().out == f"wrote {run_dir / 'samples.png'}\n"
    assert (run_dir / "samples.png").is_file() and not (tmp_path / "samples.png").exists()


def test_sample_creates_the_folder_of_out(run_dir, capsys, tmp_path):
    target = tmp_path / "missing" / "deeper" / "x.png"
    assert main(["sample", str(run_dir), "--n", "4", "--out", str(target)]) == 0
    assert capsys.readouterr().out == f"wrote {target}\n"
    assert target.is_file()


def test_evaluate_says_epoch_in_the_singular(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--iw-samples", "0", "--no-progress"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "model vae-mlp on mnist (20 test images, bernoulli likelihood, after 1 epoch)"


def test_a_warning_is_one_plain_line(capsys, monkeypatch):
    import minivae.commands.gradcheck as gradcheck_command

    def warn_and_succeed(args):
        warnings.warn("MNIST training IDX files not found; using 5,000 digits")
        return 0

    monkeypatch.setattr(gradcheck_command, "run", warn_and_succeed)
    assert main(["gradcheck", "--op", "relu"]) == 0
    assert capsys.readouterr().err == "minivae gradcheck: warning: MNIST training IDX files not found; using 5,000 digits\n"


def _parsers(parser, prefix="minivae"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prefix} {name}")


def test_every_flag_has_help_giving_its_default():
    problems = []
    for name, parser in _parsers(build_parser()):
        formatter = _HelpFormatter(name)
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            text = formatter._expand_help(action) if action.help else ""
            what = action.option_strings[0] if action.option_strings else action.dest
            if not text:
                problems.append(f"{name} {what}: no help")
            elif action.option_strings and action.nargs != 0 and "default" not in text:
                problems.append(f"{name} {what}: the help does not give the default: {text!r}")
    assert not problems, "\n".join(problems)


def test_the_command_list_shows_whole_sentences(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "latent traversals, denoising, inpainting (a hidden square filled by gradient ascent over z)" in out
    assert not any(line.rstrip().endswith(",") for line in out.splitlines())


def test_parsers_refuse_abbreviations():
    assert all(not parser.allow_abbrev for _, parser in _parsers(build_parser()))

