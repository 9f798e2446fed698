"""A run is never lost and never silently wrong: run folders, preflight, validated flags, clean failures.

Through the command line on a small slice of Fashion-MNIST (``main([...])`` in-process, or a subprocess
where a signal or a closed pipe is involved). Each test names the row of issue 12 it covers.
"""
from __future__ import annotations

import errno
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from datapaths import FASHION  # where the library finds Fashion-MNIST (tests/datapaths.py)

from minivae.checkpoint import load_checkpoint, save_checkpoint
from minivae.cli import main

REPO = pathlib.Path(__file__).resolve().parents[1]
needs_fashion = pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                                   reason=f"Fashion-MNIST is not installed at {FASHION}")
SMALL = ["--dataset", "fashion-mnist", "--model", "vae-mlp", "--hidden", "32", "--train-limit", "64",
         "--test-limit", "32", "--batch-size", "32", "--no-figures", "--no-progress"]


def train(out, *extra):
    return main(["train", *SMALL, "--out", str(out), *extra])


def tmp_files(folder):
    return sorted(p.name for p in pathlib.Path(folder).iterdir() if p.suffix in (".tmp", ".part"))


def cli(*args, env=None, **kwargs):
    """Run ``python -m minivae ARGS`` in a subprocess (the CUDA simulator as in the test process)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "minivae", *args], cwd=REPO, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


# --------------------------------------------------------------------------- 1. run folders


@needs_fashion
def test_out_holding_a_run_is_refused_unless_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "keep"
    assert train(out, "--epochs", "2") == 0
    before = (out / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert train(out, "--epochs", "1") == 1
    err = capsys.readouterr().err
    assert err == (f"minivae train: error: --out {out} already holds a run; continue it with --resume {out}, "
                   f"or replace it with --overwrite (or choose another --out)\n")
    assert (out / "checkpoint.npz").read_bytes() == before  # the 2-epoch run is intact
    # --resume DIR continues it; --overwrite replaces it
    assert main(["train", "--resume", str(out), "--epochs", "3", "--no-progress", "--no-figures"]) == 0
    assert load_checkpoint(out / "checkpoint.npz")["meta"]["epoch"] == 3
    assert train(out, "--epochs", "1", "--overwrite") == 0
    assert load_checkpoint(out / "checkpoint.npz")["meta"]["epoch"] == 1
    assert oct((out / "checkpoint.npz").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@needs_fashion
def test_a_folder_in_use_is_refused_naming_the_process(tmp_path, capsys):
    from minivae.data.folders import FolderLock

    out = tmp_path / "busy"
    with FolderLock(out):  # flock is per open file: this holds the folder as another process would
        assert train(out, "--epochs", "1") == 1
    assert capsys.readouterr().err == (f"minivae train: error: --out {out} is in use by process {os.getpid()} "
                                       f"(another minivae train); wait for it to end or choose another --out\n")
    assert not (out / "checkpoint.npz").exists()
    assert train(out, "--epochs", "1") == 0  # free again


@needs_fashion
def test_stale_temp_files_are_removed_when_the_folder_is_opened(tmp_path):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    stale = [out / ".checkpoint.npz.k1ll3d.tmp", out / ".metrics.json.abc.tmp"]
    for p in stale:
        p.write_bytes(b"left by a SIGKILL")
    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress", "--no-figures"]) == 0
    assert tmp_files(out) == []


# --------------------------------------------------------------------------- 2. signals


@needs_fashion
def test_sigterm_ends_the_step_keeps_the_checkpoint_and_exits_143(tmp_path):
    out = tmp_path / "run"
    proc = cli("train", *SMALL, "--epochs", "100000", "--out", str(out))
    try:
        deadline = time.monotonic() + 60
        while not (out / "checkpoint.npz").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    epoch = load_checkpoint(out / "checkpoint.npz")["meta"]["epoch"]
    assert lines[0] == (f"minivae train: interrupted (SIGTERM); the last good checkpoint is "
                        f"{out / 'checkpoint.npz'} (epoch {epoch}); continue with `minivae train --resume {out}`")
    assert tmp_files(out) == []
    assert f"epoch {epoch}:" in stdout


def test_a_deferred_signal_is_raised_when_the_block_ends():
    from minivae.signals import GracefulStop, Interrupted

    done = []
    previous = signal.getsignal(signal.SIGTERM)
    with GracefulStop() as stop:
        with pytest.raises(Interrupted) as info:
            with stop.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.01)
                done.append("step finished")
    assert done == ["step finished"]
    assert info.value.signum == signal.SIGTERM and info.value.exit_status == 143
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is put back


# --------------------------------------------------------------------------- 3. preflight


@needs_fashion
def test_out_that_cannot_be_created_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert train(blocker / "run", "--epochs", "1") == 1
    assert capsys.readouterr().err == (f"minivae train: error: --out {blocker / 'run'} is not writable: Not a "
                                       f"directory; choose another --out folder\n")


@needs_fashion
def test_read_only_out_is_one_line(tmp_path, capsys, monkeypatch):
    import minivae.preflight as preflight

    def denied(*args, **kwargs):  # the tests may run as root, for whom chmod 555 changes nothing
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(preflight, "_probe", denied)
    assert train(tmp_path / "ro", "--epochs", "1") == 1
    assert capsys.readouterr().err == (f"minivae train: error: --out {tmp_path / 'ro'} is not writable: "
                                       f"Permission denied; choose another --out folder\n")


@needs_fashion
def test_too_little_space_for_two_checkpoints_is_refused_before_training(tmp_path, capsys, monkeypatch):
    import shutil

    import minivae.preflight as preflight

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: usage._replace(free=1 << 20))
    assert train(tmp_path / "full", "--epochs", "1") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"minivae train: error: --out {tmp_path / 'full'} has 1.0 MiB free; a run of this "
                          f"model needs ") and "two checkpoints of about" in err and err.count("\n") == 1
    assert not (tmp_path / "full" / "checkpoint.npz").exists()


def test_checkpoint_size_estimate_matches_a_real_checkpoint(tmp_path):
    from minivae.models import build_model
    from minivae.optim import Adam
    from minivae.preflight import CHECKPOINT_OVERHEAD, checkpoint_bytes

    model = build_model("conv", latent_dim=2)
    opt = Adam(model.parameters())
    for p in model.parameters():
        p.grad = type(p)(np.zeros_like(p.data))
    opt.step()
    size = save_checkpoint(tmp_path / "c.npz", model, opt, {"epoch": 1}).stat().st_size
    n = sum(p.data.size for p in model.parameters())
    assert 3 * 4 * n <= size <= checkpoint_bytes(n) <= size + CHECKPOINT_OVERHEAD


def test_gpu_without_a_gpu_is_one_line(tmp_path, capsys):
    assert main(["train", "--device", "gpu", "--out", str(tmp_path / "g"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minivae train: error: --device gpu: no usable GPU (") and err.endswith(
        "; use --device cpu\n") and err.count("\n") == 1


@needs_fashion
def test_full_disk_during_a_checkpoint_write_names_the_last_good_one(tmp_path, capsys, monkeypatch):
    import minivae.checkpoint as ckpt_mod

    real, calls = ckpt_mod.np.savez, []

    def savez(f, **arrays):
        calls.append(1)
        if len(calls) == 2:  # the checkpoint of epoch 2
            f.write(b"PK half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(f, **arrays)

    monkeypatch.setattr(ckpt_mod.np, "savez", savez)
    out = tmp_path / "run"
    assert train(out, "--epochs", "3") == 1
    assert capsys.readouterr().err == (f"minivae train: error: could not write the checkpoint of epoch 2 to "
                                       f"{out / 'checkpoint.npz'}: No space left on device; the last good "
                                       f"checkpoint is {out / 'checkpoint.npz'} (epoch 1)\n")
    assert load_checkpoint(out / "checkpoint.npz")["meta"]["epoch"] == 1
    assert tmp_files(out) == []


# --------------------------------------------------------------------------- 4. every value validated


@pytest.mark.parametrize("flag,value,message", [
    ("--train-limit", "0", "must be >= 1, got 0"),
    ("--train-limit", "-5", "must be >= 1, got -5"),
    ("--test-limit", "0", "must be >= 1, got 0"),
    ("--beta", "-2", "must be a finite number >= 0, got -2"),
    ("--gamma", "-1", "must be a finite number >= 0, got -1"),
    ("--latent-dim", "0", "must be >= 1, got 0"),
    ("--lr", "0", "must be a finite number > 0, got 0"),
    ("--lr", "nan", "must be a finite number > 0, got nan"),
    ("--lr", "inf", "must be a finite number > 0, got inf"),
    ("--lr", "fast", "expected a number, got 'fast'"),
    ("--epochs", "0", "must be >= 1, got 0"),
    ("--batch-size", "1.5", "expected an integer, got '1.5'"),
    ("--capacity-max", "-1", "must be a finite number >= 0, got -1"),
    ("--data-dir", "/no/such/dir", "no such folder: /no/such/dir"),
])
def test_bad_flag_values_name_the_flag(flag, value, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", flag, value, "--out", str(tmp_path / "x")])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"minivae train: error: argument {flag}: {message}"
    assert not (tmp_path / "x").exists()


def test_unknown_model_option_lists_the_accepted_ones(tmp_path, capsys):
    assert main(["train", "--model", "conv", "--model-option", "nosuchkw=3", "--out", str(tmp_path / "x")]) == 1
    assert capsys.readouterr().err == ("minivae train: error: --model-option: model 'conv' has no option nosuchkw; "
                                       "accepted: likelihood, sigma\n")


@pytest.mark.parametrize("field,value,flag", [("beta", -2.0, "--beta"), ("train_limit", 0, "--train-limit"),
                                              ("lr", float("nan"), "--lr"), ("latent_dim", 0, "--latent-dim"),
                                              ("gamma", -1.0, "--gamma"), ("test_limit", -5, "--test-limit")])
def test_fit_validates_a_config_built_in_python(field, value, flag, tmp_path):
    from minivae.train import TrainConfig, fit

    config = TrainConfig(out=str(tmp_path / "x"), **{field: value})
    with pytest.raises(ValueError, match=f"^{field} \\({flag}\\) must be"):
        fit(config)
    assert not (tmp_path / "x").exists()


@needs_fashion
@pytest.mark.parametrize("damage", ["fewer_params_in_meta", "wrong_moment_shape"])
def test_checkpoint_whose_optimizer_arrays_do_not_match_is_one_line(damage, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    path = out / "checkpoint.npz"
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    import json

    info = json.loads(str(arrays["meta"]))
    if damage == "fewer_params_in_meta":
        info["optimizer"]["num_params"] -= 1
        arrays["meta"] = np.array(json.dumps(info))
    else:
        arrays["optim/0/m"] = np.zeros(3, np.float32)
    np.savez(path, **arrays)
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress", "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"minivae train: error: checkpoint {path} ")
    assert ("is inconsistent" in err) if damage == "fewer_params_in_meta" else ("does not match" in err)


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch, capsys, tmp_path):
    import minivae.commands.train as train_cmd

    def boom(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(train_cmd, "run", boom)
    assert main(["train", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == \
        "minivae train: error: RuntimeError: boom (run with --debug for the traceback)\n"
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "train", "--out", str(tmp_path)])


def test_data_list_into_a_closed_pipe_is_quiet():
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write, as with `| head` after its lines
    proc = subprocess.run([sys.executable, "-m", "minivae", "data", "list"], cwd=REPO, stdout=w,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(w)
    assert proc.stderr == ""
    assert proc.returncode == 141


@needs_fashion
def test_sample_prints_the_file_it_really_wrote(tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    capsys.readouterr()
    assert main(["sample", str(out), "--n", "4", "--out", str(tmp_path / "grid")]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'grid.png'}\n"
    assert (tmp_path / "grid.png").is_file()
    folder = tmp_path / "figs"
    folder.mkdir()
    assert main(["sample", str(out), "--n", "4", "--out", str(folder)]) == 0
    assert capsys.readouterr().out == f"wrote {folder / 'samples.png'}\n"
    assert (folder / "samples.png").is_file()


def test_a_second_signal_during_a_deferred_block_raises_at_once():
    from minivae.signals import GracefulStop, Interrupted

    reached = []
    with GracefulStop() as stop:
        with pytest.raises(Interrupted) as info:
            with stop.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.01)
                reached.append("after the first")
                os.kill(os.getpid(), signal.SIGINT)  # the user insists
                time.sleep(0.01)
                reached.append("after the second")
    assert reached == ["after the first"] and info.value.signum == signal.SIGINT
