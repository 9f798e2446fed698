"""Python frames from ``F.conv_transpose2d`` to each jitted function it calls first (issue 22's reading depth).

    python benchmarks/conv_frames.py

Every Numba dispatcher in ``minivae.kernels.*`` is wrapped (after a warm-up call, so nothing compiles while
wrapped); the first call of each records the Python stack. Printed per jitted function: the frames from the
``conv_transpose2d`` call down to its caller, and how many frames and source files that is.
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numba.core.dispatcher import Dispatcher  # noqa: E402  (after the repository root is on sys.path)

import minivae  # noqa: E402  (after the repository root is on sys.path)
import minivae.functional as F  # noqa: E402  (after the repository root is on sys.path)


class _Recorder:
    """A jitted function that records the Python stack of its first call; other attributes are the function's
    (a kernel hands its chunk function to ``_cpu_threads.run``, which compiles it and takes its address)."""

    def __init__(self, dispatcher, name, hits):
        self._dispatcher, self._name, self._hits = dispatcher, name, hits

    def __call__(self, *args, **kwargs):
        if self._name not in [h[0] for h in self._hits]:
            self._hits.append((self._name, traceback.extract_stack()[:-1]))
        return self._dispatcher(*args, **kwargs)

    def __getattr__(self, attr):
        return getattr(self._dispatcher, attr)


def main() -> int:
    x = minivae.Tensor(np.ones((4, 8, 7, 7), np.float32))
    w = minivae.Tensor(np.ones((8, 4, 3, 3), np.float32))
    F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)  # compile / load first
    hits = []
    for name in [m for m in sys.modules if m.startswith("minivae.kernels")]:
        mod = sys.modules[name]
        for k, v in list(vars(mod).items()):
            if isinstance(v, Dispatcher):
                setattr(mod, k, _Recorder(v, k, hits))
    F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
    for name, stack in hits:
        start = next(i for i, f in enumerate(stack) if f.name == "conv_transpose2d" and f.filename.endswith("conv.py"))
        path = stack[start:]
        for f in path:
            print(f"  {f.filename.split('minivae/')[-1]}:{f.lineno} {f.name}")
        print(f"first jitted call: {name}; frames: {len(path)}; files: {len({f.filename for f in path})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
