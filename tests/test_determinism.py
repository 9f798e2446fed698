"""Reproducible bits (issue 12, row 6): same seed and same NUMBA_NUM_THREADS give bitwise the same run.

The CPU kernels split a batch into fixed chunks (bounds from the batch size and the thread count only) and
add the chunks' partial sums in chunk order, so no result depends on which thread ran a chunk or when.
The BLAS is held at one thread for the whole of a chunked call that runs GEMMs (``_cpu_threads.run``, through
threadpoolctl): a thread count changed mid-call once reached the chunks' GEMMs, and two same-seed runs
differed by 6e-8.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from datapaths import FASHION  # where the library finds Fashion-MNIST (tests/datapaths.py)

from minivae.kernels import _cpu_threads, cpu

REPO = pathlib.Path(__file__).resolve().parents[1]


def _blas_threads():
    """The thread counts of the BLAS libraries the kernels call, as threadpoolctl reports them."""
    from threadpoolctl import threadpool_info

    from minivae.kernels import _blas

    held = _blas.libraries()
    return [p["num_threads"] for p in threadpool_info() if p["filepath"] in held]


def test_run_holds_the_blas_at_one_thread_for_gemm_chunks_and_restores_it_after(monkeypatch):
    before = _blas_threads()
    if not before:
        pytest.skip("threadpoolctl finds no BLAS library here")
    during, serial = [], []
    # the parallel launch, seen from Python: what the BLAS is at while every chunk runs
    monkeypatch.setattr(_cpu_threads, "_entry_point", lambda chunk, args: 0)
    monkeypatch.setattr(_cpu_threads, "_parallel", lambda address, b, args: during.append((_blas_threads(), args)))
    gemm_chunk = _cpu_threads.calls_blas(lambda i, b, tag: serial.append((i, _blas_threads())))
    bounds = _cpu_threads.chunk_bounds(64)
    try:
        for _ in range(5):
            _cpu_threads.run(gemm_chunk, bounds, 1)
            assert _blas_threads() == before  # restored once every chunk is done
        _cpu_threads.run(gemm_chunk, _cpu_threads.chunk_bounds(1), 2)  # one chunk: on this thread
    finally:
        _cpu_threads._BLAS_CHUNKS.discard(gemm_chunk)
    if bounds.size > 2:
        assert {(tuple(t), tag) for t, tag in during} == {((1,) * len(before), (1,))}  # every chunk on 1 thread
    assert serial[-1] == (0, [1] * len(before)) and _blas_threads() == before
    untouched = []  # a chunk without GEMMs leaves the BLAS as it is
    _cpu_threads.run(lambda i, b, tag: untouched.append(_blas_threads()), _cpu_threads.chunk_bounds(1), 3)
    assert untouched == [before]


def test_chunk_bounds_depend_only_on_size_and_threads():
    for n in (1, 7, 32, 128):
        b = _cpu_threads.chunk_bounds(n)
        assert b[0] == 0 and b[-1] == n and np.all(np.diff(b) >= 1)
        assert np.array_equal(b, _cpu_threads.chunk_bounds(n))
        assert b.size - 1 <= max(1, _cpu_threads.num_threads() * _cpu_threads.CHUNKS_PER_THREAD)
    assert _cpu_threads.chunk_bounds(1000, min_chunk=1000).size == 2  # small work: one chunk


@pytest.mark.parametrize("kernel", ["conv2d_forward", "conv2d_backward_weight", "conv_transpose2d_forward",
                                    "conv_transpose2d_backward", "conv2d_backward_bias"])
def test_chunked_kernels_give_the_same_bits_every_call(kernel):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((32, 16, 7, 7)).astype(np.float32)
    call = {"conv2d_forward": lambda: cpu.conv2d_forward(x, w, None, (2, 2), (1, 1)),
            "conv2d_backward_weight": lambda: cpu.conv2d_backward_weight(gy, x, (3, 3), (2, 2), (1, 1)),
            "conv_transpose2d_forward": lambda: cpu.conv_transpose2d_forward(gy, w, None, (2, 2), (1, 1), (1, 1)),
            "conv_transpose2d_backward": lambda: np.concatenate(
                [a.ravel() for a in cpu.conv_transpose2d_backward(x, gy, w, (2, 2), (1, 1))]),
            "conv2d_backward_bias": lambda: cpu.conv2d_backward_bias(gy)}[kernel]
    first = call()
    for _ in range(30):
        assert np.array_equal(call(), first)


def _run(out, *extra, epochs):
    args = [sys.executable, "-m", "minivae", "train", "--dataset", "fashion-mnist", "--model", "conv",
            "--latent-dim", "2", "--train-limit", "256", "--test-limit", "64", "--batch-size", "32",
            "--no-figures", "--no-progress", "--epochs", str(epochs), *extra]
    if "--resume" not in extra:
        args += ["--out", str(out)]
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def _arrays(folder):
    with np.load(pathlib.Path(folder) / "checkpoint.npz") as npz:
        return {k: npz[k] for k in npz.files if k != "meta"}


@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(), reason="Fashion-MNIST not installed")
def test_two_runs_and_a_resumed_run_are_bitwise_equal_with_two_threads(tmp_path):
    """Through the CLI with NUMBA_NUM_THREADS=2 (the batch split over two threads): two same-seed runs
    and a run stopped after epoch 1 then resumed end with the same bits in every array."""
    _run(tmp_path / "a", epochs=2)
    _run(tmp_path / "b", epochs=2)
    _run(tmp_path / "c", epochs=1)
    _run(None, "--resume", str(tmp_path / "c"), epochs=2)
    a, b, c = (_arrays(tmp_path / n) for n in "abc")
    assert sorted(a) == sorted(b) == sorted(c) and any(k.startswith("optim/") for k in a)
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k}: two runs differ"
        assert np.array_equal(a[k], c[k]), f"{k}: the resumed run differs"
