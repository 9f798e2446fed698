"""Runs that cannot be lost or poisoned (issue 25): resume with overwrite, divergence, strict JSON, links,
crafted checkpoints, test-set limits, atomic figures, SIGHUP, transactional ``load_state_dict``.

Every test runs the command line in-process (``main([...])``) on a small synthetic data set registered as
``synth`` (random 28x28 images written as IDX files with their checksums), so nothing depends on a data
set being installed. Each test names the probe of the issue it covers.
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import signal
import time
import zipfile

import numpy as np
import pytest

from minivae.checkpoint import CheckpointError, load_checkpoint, read_meta
from minivae.cli import main
from minivae.data import registry
from minivae.data.idx import write_idx
from minivae.data.registry import Checksum, DatasetInfo

SMALL = ["--dataset", "synth", "--model", "vae-mlp", "--hidden", "8", "--latent-dim", "2", "--train-limit", "64",
         "--test-limit", "16", "--batch-size", "32", "--lr", "0.001", "--no-figures", "--no-progress"]


@pytest.fixture
def synth(tmp_path, monkeypatch):
    """A 10-class synthetic data set ``synth`` in ``tmp_path/data`` (256 train, 200 test images)."""
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    sums = []
    for prefix, n in (("train", 256), ("t10k", 200)):
        images = (rng.random((n, 28, 28)) < 0.2).astype(np.uint8) * 255
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte.gz"
            write_idx(folder / name, arr, gzip=True)
            digest = hashlib.sha256(gzip.decompress((folder / name).read_bytes())).hexdigest()
            sums.append((name, (Checksum("sha256", digest, "decompressed"),)))
    info = DatasetInfo(name="synth", title="synthetic", mirrors=(), checksums=tuple(sums),
                       class_names=tuple(str(i) for i in range(10)))
    monkeypatch.setitem(registry.REGISTRY, "synth", info)
    monkeypatch.setenv("MINIVAE_DATA", str(folder))
    return folder


def train(out, *extra):
    return main(["train", *SMALL, "--out", str(out), *extra])


def resume(out, *extra):
    return main(["train", "--resume", str(out), "--no-progress", "--no-figures", *extra])


def epoch_of(folder):
    return read_meta(folder / "checkpoint.npz")["epoch"]


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.rstrip("\n")


def rewrite(path, change_info=None, change_arrays=None, extra=None):
    """Rewrite a checkpoint with its JSON metadata and/or arrays edited (as a user with an editor would)."""
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    info = json.loads(str(arrays["meta"]))
    if change_info:
        change_info(info)
    if change_arrays:
        change_arrays(arrays)
    arrays["meta"] = np.array(json.dumps(info))
    np.savez(path, **arrays)
    if extra:
        with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in extra.items():
                zf.writestr(name, data)


def strict_load(path):
    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


# --------------------------------------------------------------------------- resume + overwrite


def test_resume_with_overwrite_on_the_same_folder_is_refused_and_deletes_nothing(synth, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    before = (out / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert resume(out, "--epochs", "2", "--overwrite") == 1
    assert one_line(capsys.readouterr().err) == (
        f"minivae train: error: --resume {out} with --overwrite: --overwrite would delete the run that --resume "
        f"continues; drop --overwrite to continue it, or drop --resume to replace it")
    assert (out / "checkpoint.npz").read_bytes() == before and (out / "metrics.json").is_file()


def test_overwrite_deletes_nothing_until_the_new_run_can_start(synth, tmp_path, capsys):
    out, other = tmp_path / "run", tmp_path / "other"
    assert train(out, "--epochs", "1") == 0
    assert train(other, "--epochs", "1") == 0
    before = (out / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    # the run to continue is refused once the folder is open (another --latent-dim): `run` must survive
    assert main(["train", "--resume", str(other), "--out", str(out), "--overwrite", "--epochs", "2",
                 "--latent-dim", "3", "--no-progress", "--no-figures"]) == 1
    assert "refusing to resume (latent_dim: checkpoint 2, requested 3)" in one_line(capsys.readouterr().err)
    assert (out / "checkpoint.npz").read_bytes() == before and (out / "metrics.json").is_file()


# --------------------------------------------------------------------------- divergence guard


def _nan_test_elbo_at(monkeypatch, epoch):
    import minivae.train as train_mod

    real, calls = train_mod.evaluate, []

    def evaluate(*args, **kwargs):
        calls.append(1)
        ev = real(*args, **kwargs)
        return {**ev, "elbo": float("nan")} if len(calls) == epoch else ev

    monkeypatch.setattr(train_mod, "evaluate", evaluate)


def test_an_epoch_with_a_nan_test_elbo_is_not_saved_and_exits_1(synth, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    _nan_test_elbo_at(monkeypatch, 2)
    assert train(out, "--epochs", "2") == 1
    err = one_line(capsys.readouterr().err)
    assert err == (f"minivae train: error: training diverged at epoch 2: test_elbo not finite; epoch 2 was not "
                   f"saved, the last good checkpoint is {out / 'checkpoint.npz'} (epoch 1); try a smaller --lr")
    assert epoch_of(out) == 1
    metrics = strict_load(out / "metrics.json")
    assert [e["epoch"] for e in metrics["epochs"]] == [1]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the inf weight, on purpose
def test_an_epoch_ending_with_infinite_weights_or_moments_is_not_saved(synth, tmp_path, capsys, monkeypatch):
    import minivae.train as train_mod

    real, calls = train_mod.train_step, []

    def train_step(model, optimizer, *args, **kwargs):  # the last step of epoch 2 overflows
        calls.append(1)
        stats = real(model, optimizer, *args, **kwargs)
        if len(calls) == 4:
            model.parameters()[0].data[0, 0] = np.inf
            optimizer.state[1]["v"][0] = np.nan
        return stats

    monkeypatch.setattr(train_mod, "train_step", train_step)
    out = tmp_path / "run"
    assert train(out, "--epochs", "3") == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith("minivae train: error: training diverged at epoch 2: ")
    assert "weights encoder.1.weight" in err and "Adam v of parameter 1" in err
    assert err.endswith(f"the last good checkpoint is {out / 'checkpoint.npz'} (epoch 1); try a smaller --lr")
    assert epoch_of(out) == 1


def test_metrics_json_is_strict_json_with_the_reason_for_nulls(tmp_path):
    from minivae.train import TrainConfig, _write_metrics

    history = [{"epoch": 1, "train_loss": 1.0, "test_elbo": float("nan")},
               {"epoch": 2, "train_loss": float("inf"), "test_elbo": -3.0}]
    _write_metrics(tmp_path, TrainConfig(out=str(tmp_path)), history)
    metrics = strict_load(tmp_path / "metrics.json")
    assert metrics["epochs"][0]["test_elbo"] is None and metrics["epochs"][1]["train_loss"] is None
    assert metrics["non_finite"]["keys"] == ["epochs[0].test_elbo", "epochs[1].train_loss"]
    assert "strict JSON" in metrics["non_finite"]["reason"]


@pytest.mark.parametrize("command", ["evaluate", "sample", "plot"])
def test_commands_refuse_a_checkpoint_with_non_finite_weights(command, synth, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    path = out / "checkpoint.npz"

    def poison(arrays):
        arrays["model/encoder.1.weight"][0, :3] = [np.nan, np.inf, np.nan]

    rewrite(path, change_arrays=poison)
    capsys.readouterr()
    extra = {"evaluate": ["--iw-samples", "0", "--no-progress"], "sample": ["--out", str(tmp_path / "s.png")],
             "plot": ["--out", str(tmp_path / "figs")]}[command]
    assert main([command, str(out), *extra]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"minivae {command}: error: checkpoint {path} holds non-finite weights (NaN/inf in encoder.1.weight "
        f"(3 values)): it comes from a diverged run; use a checkpoint saved before it diverged")
    assert not (tmp_path / "s.png").exists() and not (tmp_path / "figs").exists()


# --------------------------------------------------------------------------- no writes through links


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlinked_lock_file_is_refused_not_followed(dangling, synth, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_text("precious")
    (out / ".lock").symlink_to(victim)
    assert train(out, "--epochs", "1") == 1
    assert one_line(capsys.readouterr().err) == (
        f"minivae train: error: --out {out}: its lock file {out / '.lock'} is a symbolic link, which minivae "
        f"does not follow; delete the link or choose another --out")
    assert victim.read_text() == "precious" if not dangling else not victim.exists()
    assert not (out / "checkpoint.npz").exists()


def test_a_lock_file_that_cannot_be_opened_is_named(synth, tmp_path, capsys):
    out = tmp_path / "run"
    (out / ".lock").mkdir(parents=True)
    assert train(out, "--epochs", "1") == 1
    assert one_line(capsys.readouterr().err) == (
        f"minivae train: error: --out {out}: cannot open its lock file {out / '.lock'}: Is a directory; "
        f"delete it or choose another --out")


def test_figures_replace_a_symlink_instead_of_writing_through_it(synth, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "grid.png"
    link.symlink_to(victim)
    assert main(["sample", str(out), "--n", "4", "--out", str(link)]) == 0
    (out / "samples.png").symlink_to(victim)
    assert main(["plot", str(out)]) == 0
    assert victim.read_text() == "precious"
    for png in (link, out / "samples.png"):
        assert not png.is_symlink() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_json_is_written_atomically_and_strict(synth, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "res.json"
    link.symlink_to(victim)
    assert main(["evaluate", str(out), "--iw-samples", "2", "--no-progress", "--json", str(link)]) == 0
    assert victim.read_text() == "precious" and not link.is_symlink()
    assert strict_load(link)["n_test"] == 16


# --------------------------------------------------------------------------- bounded checkpoint loading


def test_a_crafted_parameter_count_is_refused_before_anything_is_allocated(synth, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    path = out / "checkpoint.npz"
    rewrite(path, change_info=lambda info: info["optimizer"].update(num_params=10 ** 6))
    capsys.readouterr()
    assert main(["evaluate", str(out), "--iw-samples", "0", "--no-progress"]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"minivae evaluate: error: checkpoint {path} is inconsistent: metadata optimizer.num_params = 1000000 "
        f"does not match the model's 8 parameters")


def test_a_parameter_count_of_1e10_is_refused_at_once(synth, tmp_path):
    from minivae.models import build_model
    from minivae.optim import Adam

    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    path = out / "checkpoint.npz"
    rewrite(path, change_info=lambda info: info["optimizer"].update(num_params=1e10))
    model = build_model("vae-mlp", latent_dim=2, hidden=[8])
    for opt in (None, Adam(model.parameters(), lr=1e-3)):
        with pytest.raises(CheckpointError, match=r"optimizer.num_params = 10000000000.0 does not match the "
                                                  r"model's 8 parameters$"):
            load_checkpoint(path, model=model, optimizer=opt)
    with pytest.raises(CheckpointError, match="optimizer.num_params = 10000000000.0 but the file holds"):
        load_checkpoint(path)


def test_a_large_unused_compressed_array_is_refused_unread(synth, tmp_path, capsys):
    import io

    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    path = out / "checkpoint.npz"
    buf = io.BytesIO()
    np.save(buf, np.zeros(8 << 20, np.float32))  # 32 MiB of zeros: about 32 KiB compressed
    rewrite(path, extra={"junk.npy": buf.getvalue()})
    assert path.stat().st_size < 2 << 20
    capsys.readouterr()
    assert main(["evaluate", str(out), "--iw-samples", "0", "--no-progress"]) == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"minivae evaluate: error: checkpoint {path} holds 32.") and \
        err.endswith("MiB: not a checkpoint of this model")


def test_a_crafted_model_size_is_refused_before_the_model_is_built(synth, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    path = out / "checkpoint.npz"
    rewrite(path, change_info=lambda info: info["meta"]["model_config"].update(hidden=[10 ** 9]))
    capsys.readouterr()
    assert main(["sample", str(out), "--out", str(tmp_path / "s.png")]) == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"minivae sample: error: checkpoint {path} is inconsistent: metadata "
                          f"model_config.hidden = 1000000000 and ")


def test_an_array_header_claiming_another_shape_is_refused(synth, tmp_path):
    from minivae.models import build_model

    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    path = out / "checkpoint.npz"
    rewrite(path, change_arrays=lambda a: a.update({"model/encoder.1.weight": np.zeros((3, 3), np.float32)}))
    with pytest.raises(CheckpointError, match=r"array model/encoder.1.weight has shape \(3, 3\), expected "
                                              r"\(8, 784\)"):
        load_checkpoint(path, model=build_model("vae-mlp", latent_dim=2, hidden=[8]))


def test_a_file_that_is_not_an_npz_gets_no_numpy_pickle_advice(synth, tmp_path, capsys):
    import pickle

    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    path = out / "checkpoint.npz"
    for payload in (pickle.dumps({"a": 1}), b"\x93NUMPY" + b"\0" * 40):
        path.write_bytes(payload)
        capsys.readouterr()
        assert main(["evaluate", str(out), "--iw-samples", "0", "--no-progress"]) == 1
        err = one_line(capsys.readouterr().err)
        assert err == f"minivae evaluate: error: checkpoint {path} is corrupt or truncated: File is not a zip file"
        assert "allow_pickle" not in err


# --------------------------------------------------------------------------- same data


@pytest.mark.parametrize("command", ["evaluate", "plot"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_test_limit_below_one_is_refused_by_evaluate_and_plot(command, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, str(tmp_path), "--test-limit", value])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        f"minivae {command}: error: argument --test-limit: must be >= 1, got {value}"


@pytest.mark.parametrize("limit", [0, -1])
def test_load_run_test_data_refuses_a_limit_below_one(limit):
    from minivae.evaluate import load_run_test_data
    from minivae.train import TrainConfig

    with pytest.raises(ValueError, match=f"^--test-limit must be an integer >= 1, got {limit}$"):
        load_run_test_data(TrainConfig(dataset="synth"), test_limit=limit)


def test_resume_with_another_test_limit_is_refused(synth, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    capsys.readouterr()
    assert resume(out, "--epochs", "2", "--test-limit", "8") == 1
    assert one_line(capsys.readouterr().err) == (
        f"minivae train: error: checkpoint {out / 'checkpoint.npz'} was written by another model or config; "
        f"refusing to resume (test_limit: checkpoint 16, requested 8)")
    assert epoch_of(out) == 1


# --------------------------------------------------------------------------- figures, signals


def test_a_full_disk_in_the_figure_phase_is_named_and_leaves_no_partial_png(synth, tmp_path, capsys,
                                                                          monkeypatch):
    from matplotlib.figure import Figure

    real, calls = Figure.savefig, []

    def savefig(self, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            f.write(b"\x89PNG half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, f, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    out = tmp_path / "run"
    args = [a for a in SMALL if a != "--no-figures"]
    assert main(["train", *args, "--epochs", "1", "--out", str(out)]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"minivae train: error: could not write the figures to {out}: No space left on device; the run is "
        f"complete (checkpoint {out / 'checkpoint.npz'}, epoch 1, and metrics are saved); draw them later "
        f"with `minivae plot {out}`")
    pngs = sorted(p.name for p in out.iterdir() if p.suffix == ".png")
    assert len(pngs) == 2 and all((out / p).stat().st_size > 100 for p in pngs)
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


def test_the_hint_after_a_signal_in_the_figure_phase_is_plot_not_resume(synth, tmp_path):
    from minivae.commands.train import interrupted_message
    from minivae.signals import Interrupted
    from minivae.train import TrainConfig

    out = tmp_path / "run"
    assert train(out, "--epochs", "2") == 0
    msg = interrupted_message(TrainConfig(out=str(out), epochs=2), Interrupted(signal.SIGTERM))
    assert msg == (f"minivae train: interrupted (SIGTERM) while drawing the figures; the run is complete: "
                   f"{out / 'checkpoint.npz'} (epoch 2); draw the figures with `minivae plot {out}`")
    assert "--resume" in interrupted_message(TrainConfig(out=str(out), epochs=3), Interrupted(signal.SIGTERM))
    assert interrupted_message(TrainConfig(out=str(out), epochs=2, figures=False), Interrupted(signal.SIGHUP)) == (
        f"minivae train: interrupted (SIGHUP) after the last epoch; the run is complete: {out / 'checkpoint.npz'} "
        f"(epoch 2)")


def test_sighup_is_handled_like_sigterm():
    from minivae.signals import GracefulStop, Interrupted

    done = []
    previous = signal.getsignal(signal.SIGHUP)
    with GracefulStop() as stop:
        with pytest.raises(Interrupted) as info:
            with stop.deferred():
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(0.01)
                done.append("step finished")
    assert done == ["step finished"]
    assert info.value.signum == signal.SIGHUP and info.value.exit_status == 129
    assert signal.getsignal(signal.SIGHUP) is previous


# --------------------------------------------------------------------------- messages


def test_a_failed_metrics_write_is_not_called_a_checkpoint_write(synth, tmp_path, capsys, monkeypatch):
    import minivae.train as train_mod

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(train_mod, "atomic_write_text", full)
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 1
    assert one_line(capsys.readouterr().err) == (
        f"minivae train: error: could not write the metrics of epoch 1 to {out / 'metrics.json'}: No space left "
        f"on device; the checkpoint of epoch 1 is saved at {out / 'checkpoint.npz'} (`minivae train --resume "
        f"{out}` rewrites the metrics)")
    assert epoch_of(out) == 1


def test_empty_out_and_empty_resume_are_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--out", "", "--no-progress"]) == 1
    assert one_line(capsys.readouterr().err) == "minivae train: error: out (--out) must name a folder, got ''"
    assert main(["train", "--resume", "", "--no-progress"]) == 1
    assert one_line(capsys.readouterr().err) == \
        "minivae train: error: --resume: empty path; give the run folder (or checkpoint file) to continue"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("edit,message", [
    (lambda i, a: a.pop("optim/0/m"),
     "cannot be resumed: the Adam state of parameter 0 holds ['step', 'v'], expected ['m', 'step', 'v']"),
    (lambda i, a: i["meta"].pop("config"), "holds no training config: cannot resume from it"),
    (lambda i, a: i["meta"].update(epoch=-3), "cannot be resumed: its metadata has epoch = -3 (need an integer >= 1)"),
    (lambda i, a: i["optimizer"]["hyper"].update(lr=5.0),
     "was written with other optimizer settings; refusing to resume (lr: checkpoint 5.0, this run 0.001)"),
    (lambda i, a: i["optimizer"]["hyper"].update(betas=[2, 5]),
     ("is inconsistent: metadata optimizer.hyper: Adam: invalid hyper-parameters lr=0.001, betas=[2, 5], eps=1e-08, "
      "weight_decay=0.0 (need lr > 0, 0 <= beta < 1, eps > 0, weight_decay >= 0)")),
])
def test_hand_edited_checkpoints_are_refused_in_one_line_before_resuming(edit, message, synth, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    path = out / "checkpoint.npz"
    holder = {}

    def change_info(info):
        holder["info"] = info

    def change_arrays(arrays):
        edit(holder["info"], arrays)

    rewrite(path, change_info=change_info, change_arrays=change_arrays)
    edited = path.read_bytes()
    capsys.readouterr()
    assert resume(out, "--epochs", "2") == 1
    captured = capsys.readouterr()
    assert "resumed from" not in captured.out
    err = one_line(captured.err)
    assert err.endswith(message) and str(path) in err, err
    assert path.read_bytes() == edited


# --------------------------------------------------------------------------- load_state_dict


def _mlp():
    from minivae import nn

    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_module_load_state_dict_changes_nothing_when_a_late_entry_is_bad():
    model = _mlp()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = {k: v + 1 for k, v in before.items()}
    state["2.bias"] = np.array(["a", "b"])  # right shape, not numbers: found after the first ones
    with pytest.raises(KeyError, match="2.bias is not a number array"):
        model.load_state_dict(state)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_module_load_state_dict_returns_missing_and_unexpected_keys():
    model = _mlp()
    state = dict(model.state_dict())
    state.pop("0.bias")
    state["extra"] = np.zeros(2)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra"]
    missing, unexpected = result
    assert (missing, unexpected) == (["0.bias"], ["extra"])
    assert tuple(model.load_state_dict(model.state_dict())) == ([], [])


@pytest.mark.parametrize("damage", ["step_count", "late_state", "betas"])
def test_optimizer_load_state_dict_changes_nothing_when_it_raises(damage):
    import minivae as mv
    from minivae.optim import Adam

    model = _mlp()
    src = Adam(model.parameters(), lr=0.05, betas=(0.8, 0.9))
    for p in src.params:
        p.grad = mv.Tensor(np.ones(p.shape, np.float32))
    src.step()
    state = src.state_dict()
    if damage == "step_count":
        state["step_count"] = "three"
    elif damage == "late_state":
        state["state"][-1]["m"] = np.array(["x", "y"])
    else:
        state["hyper"]["betas"] = (2, 5)
    dst = Adam(model.parameters(), lr=1e-3)
    with pytest.raises(ValueError):
        dst.load_state_dict(state)
    assert dst.defaults["lr"] == 1e-3 and dst.defaults["betas"] == (0.9, 0.999)
    assert dst.step_count == 0 and all(st == {} for st in dst.state)


def test_a_download_replaces_a_symlink_at_its_destination(tmp_path):
    from minivae.data.download import download

    src = tmp_path / "served.bin"
    src.write_bytes(b"fresh data")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    dest = tmp_path / "cache" / "file.gz"
    dest.parent.mkdir()
    dest.symlink_to(victim)
    sums = (Checksum("sha256", hashlib.sha256(b"fresh data").hexdigest(), "file"),)
    assert download(src.as_uri(), dest, sums, progress=False) == dest
    assert victim.read_text() == "precious"
    assert not dest.is_symlink() and dest.read_bytes() == b"fresh data"


def test_evaluate_refuses_non_finite_results(synth, tmp_path, capsys, monkeypatch):
    import minivae.evaluate as evaluate_mod

    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    real = evaluate_mod.evaluate_run
    monkeypatch.setattr(evaluate_mod, "evaluate_run",
                        lambda *a, **kw: {**real(*a, **kw), "test_elbo": float("-inf")})
    capsys.readouterr()
    assert main(["evaluate", str(out), "--iw-samples", "0", "--no-progress"]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"minivae evaluate: error: {out}: test_elbo = -inf (not finite): the model's outputs overflow on this data")


_CHILD = """
import sys
sys.path.insert(0, {tests!r})
import pytest
import test_run_integrity
from minivae.cli import console_main
test_run_integrity.synth.__wrapped__(__import__("pathlib").Path({data!r}), pytest.MonkeyPatch())
sys.argv = ["minivae", *sys.argv[1:]]
sys.exit(console_main())
"""


def test_sighup_during_training_keeps_the_checkpoint_and_exits_129(tmp_path):
    import pathlib
    import subprocess
    import sys

    tests = pathlib.Path(__file__).resolve().parent
    (tmp_path / "synthdata").mkdir()
    code = _CHILD.format(tests=str(tests), data=str(tmp_path / "synthdata"))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", code, "train", *SMALL, "--epochs", "100000", "--out", str(out)],
                            cwd=tests.parent, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.npz").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGHUP)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 129, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    epoch = epoch_of(out)
    assert lines == [f"minivae train: interrupted (SIGHUP); the last good checkpoint is {out / 'checkpoint.npz'} "
                     f"(epoch {epoch}); continue with `minivae train --resume {out}`"]
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
