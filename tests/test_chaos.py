"""Chaos (issue 12, row 7): a short training run killed at random moments never loses its run.

A bounded loop starts ``minivae train`` (or ``--resume`` once a checkpoint exists) in a subprocess and kills
it, alternating SIGKILL and SIGTERM; half of the kills are aimed at a checkpoint write (sent as soon as the
process's own ``.checkpoint.npz.*.tmp`` file appears), the others at a random point of progress (after 0, 1 or 2 more
checkpoints have been written): every kill is driven by the run's progress, never by wall time, so ten kills
land within the first 20 of the 30 epochs however fast the machine is. After every kill the folder must
hold a loadable checkpoint (once one was written) whose epoch never goes back; after a SIGTERM the process
exits 143 with the resume hint and leaves no temporary file of its own; a SIGKILL's temporary file is removed by
the next process that opens the folder (one killed before it opened the folder leaves it for the one after).
Finally ``--resume`` finishes the run, and its arrays equal, bit for bit, those of an uninterrupted run with the
same seed (NUMBA_NUM_THREADS=2 in both). The counts are printed (``pytest -s``) as ``chaos: ...``.

No assertion depends on when a kill lands: every outcome (before the first checkpoint, mid-step, mid-write,
during evaluation, after the run ended) is a legal one, and each is checked for what must hold then.
"""
from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from datapaths import FASHION  # where the library finds Fashion-MNIST (tests/datapaths.py)

from minivae.checkpoint import load_checkpoint

REPO = pathlib.Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                                 reason=f"Fashion-MNIST is not installed at {FASHION}")]

EPOCHS = 30  # enough that ten kills land before the run completes, also with the faster kernels of issue 14
KILLS = 10
RUN = ["--dataset", "fashion-mnist", "--model", "conv", "--latent-dim", "2", "--train-limit", "256",
       "--test-limit", "64", "--batch-size", "32", "--no-figures", "--no-progress"]
ENV = {**os.environ, "NUMBA_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}


def _start(out: pathlib.Path) -> subprocess.Popen:
    if (out / "checkpoint.npz").exists():
        args = ["--resume", str(out), "--epochs", str(EPOCHS), "--no-figures", "--no-progress"]
    else:
        args = [*RUN, "--epochs", str(EPOCHS), "--out", str(out)]
    return subprocess.Popen([sys.executable, "-m", "minivae", "train", *args], cwd=REPO, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _temp_files(out: pathlib.Path) -> list[str]:
    try:
        return [n for n in os.listdir(out) if n.endswith(".tmp")]
    except FileNotFoundError:
        return []


def _handlers_installed(out: pathlib.Path, pid: int) -> bool:
    """The process holds the run folder's lock (so minivae's signal handlers are in place)."""
    try:
        return (out / ".lock").read_text().strip() == str(pid)
    except OSError:
        return False


def _wait(proc, until, timeout=180.0) -> bool:
    """Poll ``until()`` every millisecond; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while not until():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the training process hung"
        time.sleep(0.001)
    return True


def _checkpoint_id(out: pathlib.Path):
    """Identity of the current checkpoint file (each write renames a new file into place), or None."""
    try:
        st = os.stat(out / "checkpoint.npz")
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _arrays(out: pathlib.Path) -> dict:
    with np.load(out / "checkpoint.npz") as npz:
        return {k: npz[k] for k in npz.files if k != "meta"}


def test_training_killed_at_random_moments_never_loses_the_run(tmp_path):
    rng = random.Random(2026)
    out = tmp_path / "chaos"
    counts = {"kills": 0, "sigkill": 0, "sigterm": 0, "aimed_at_write": 0, "checkpoint_temp_seen_at_kill": 0,
              "checkpoints_loaded": 0, "before_first_checkpoint": 0, "sigkill_temp_left": 0,
              "sigterm_temp_left": 0, "finished_before_kill": 0, "killed_after_last_checkpoint": 0}
    last_epoch = 0
    for i in range(KILLS):
        stale = set(_temp_files(out))  # a SIGKILLed write's file: the next process removes it once it holds the folder
        proc = _start(out)
        sig = signal.SIGKILL if i % 2 == 0 else signal.SIGTERM
        aim_at_write = i % 4 in (0, 3)

        def writing():  # a checkpoint write of this process under way (not a stale file of the one before)
            return any(n.startswith(".checkpoint.npz.") and n not in stale for n in _temp_files(out))

        try:
            if aim_at_write:
                alive = _wait(proc, writing)
            else:
                alive = _wait(proc, lambda: _handlers_installed(out, proc.pid))
                for _ in range(rng.randint(0, 2) if alive else 0):  # a random number of checkpoints later
                    seen = _checkpoint_id(out)
                    alive = _wait(proc, lambda: _checkpoint_id(out) != seen)
                    if not alive:
                        break
            if alive:
                counts["checkpoint_temp_seen_at_kill"] += writing()
                proc.send_signal(sig)
            _, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
        if not alive:
            counts["finished_before_kill"] += 1
            assert proc.returncode == 0, stderr
            break
        counts["kills"] += 1
        counts["aimed_at_write"] += aim_at_write
        if sig == signal.SIGKILL:
            counts["sigkill"] += 1
            counts["sigkill_temp_left"] += len(_temp_files(out))
            assert proc.returncode in (-signal.SIGKILL, 0), stderr
        else:
            counts["sigterm"] += 1
            counts["sigterm_temp_left"] += len(_temp_files(out))
            assert proc.returncode in (143, 0), stderr
            if proc.returncode == 143:
                lines = [line for line in stderr.splitlines() if line.strip()]
                assert len(lines) == 1 and "minivae train: interrupted (SIGTERM)" in lines[0], stderr
            # its own temporary files are gone; a stale one stays where the kill came before the folder was opened
            assert set(_temp_files(out)) <= stale, "a SIGTERM left a temporary file"
        if (out / "checkpoint.npz").exists():
            epoch = load_checkpoint(out / "checkpoint.npz")["meta"]["epoch"]  # raises if not loadable
            counts["checkpoints_loaded"] += 1
            assert epoch >= last_epoch
            last_epoch = epoch
        else:
            counts["before_first_checkpoint"] += 1
            assert last_epoch == 0
        if proc.returncode == 0 or last_epoch >= EPOCHS:  # killed after its last checkpoint: the run is complete
            counts["killed_after_last_checkpoint"] += proc.returncode != 0
            break
    # finish the run, then compare with an uninterrupted one
    if not (out / "checkpoint.npz").exists() or load_checkpoint(out / "checkpoint.npz")["meta"]["epoch"] < EPOCHS:
        finish = _start(out)
        _, stderr = finish.communicate(timeout=300)
        assert finish.returncode == 0, stderr
    assert _temp_files(out) == []
    assert load_checkpoint(out / "checkpoint.npz")["meta"]["epoch"] == EPOCHS
    reference = tmp_path / "reference"
    ref = _start(reference)
    _, stderr = ref.communicate(timeout=300)
    assert ref.returncode == 0, stderr
    a, b = _arrays(out), _arrays(reference)
    assert sorted(a) == sorted(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k}: the killed-and-resumed run differs from the uninterrupted one"
    counts["temp_files_left_at_end"] = len(_temp_files(out))
    print("\nchaos: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    assert counts["kills"] >= 4 and counts["sigterm"] >= 2 and counts["sigkill"] >= 2
