"""All context state (grad mode, anomaly mode, the forward-AD level, the kernel selection, the backward trace)
lives in contextvars: a block opened in one thread (or asyncio task) is invisible in another."""
from __future__ import annotations

import asyncio
import threading

import minivae as mv
from minivae import kernels
from minivae.autograd import anomaly, forward_ad
from minivae.autograd.trace import active as active_trace


def _state() -> dict:
    return {"grad": mv.is_grad_enabled(), "anomaly": anomaly.is_enabled(), "dual": forward_ad._level() is not None,
            "kernels": kernels.current("cpu"), "trace": active_trace() is not None}


def _in_thread(f):
    out = {}
    t = threading.Thread(target=lambda: out.update(f()))
    t.start()
    t.join()
    return out


def test_blocks_opened_in_one_thread_are_invisible_in_another():
    default = _in_thread(_state)
    with mv.no_grad(), mv.detect_anomaly(), forward_ad.dual_level(), kernels.use("reference"), mv.autograd.trace():
        here = _state()
        there = _in_thread(_state)
    assert here == {"grad": False, "anomaly": True, "dual": True, "kernels": "reference", "trace": True}
    assert there == default
    assert default["grad"] and not default["anomaly"] and not default["dual"] and not default["trace"]


def test_a_dual_level_in_another_thread_does_not_leak_here():
    opened, release = threading.Event(), threading.Event()

    def worker():
        with forward_ad.dual_level():
            opened.set()
            release.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert opened.wait(10)
        assert forward_ad._level() is None
        with forward_ad.dual_level():  # no "nested level" error: the other thread's level is not ours
            pass
    finally:
        release.set()
        t.join()


def test_asyncio_tasks_each_see_their_own_grad_mode():
    async def in_no_grad(started, release):
        with mv.no_grad():
            started.set()
            await release.wait()
            return mv.is_grad_enabled()

    async def main():
        started, release = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(in_no_grad(started, release))
        await started.wait()
        seen_here = mv.is_grad_enabled()
        release.set()
        return seen_here, await task

    assert asyncio.run(main()) == (True, False)
