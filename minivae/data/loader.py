"""Mini-batch iteration over NumPy arrays, reproducible and resumable."""
from __future__ import annotations

import copy
from typing import Any, Iterator

import numpy as np

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over aligned arrays in mini-batches.

    ``DataLoader(images, labels, batch_size=32)`` yields tuples ``(images[idx], labels[idx])`` of
    NumPy arrays, one per batch (a 1-tuple for a single array).  With ``shuffle`` each epoch (each
    ``iter()``) uses a fresh permutation drawn from ``np.random.default_rng(seed)``, so the same
    seed gives the same sequence of epochs.  The last, smaller batch is kept unless ``drop_last``.

    :meth:`state_dict` / :meth:`load_state_dict` save and restore the epoch counter and the RNG
    state (and, if taken mid-epoch, the position in that epoch) so that training resumes with
    exactly the batches it would have seen.

    Raises :class:`ValueError` when no arrays are given, their lengths differ, or ``batch_size < 1``.
    """

    def __init__(self, *arrays: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False):
        if not arrays:
            raise ValueError("DataLoader needs at least one array")
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"arrays must have the same length, got {[len(a) for a in arrays]}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.arrays = arrays
        self.n = lengths.pop()
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.drop_last = bool(drop_last)
        self.epoch = 0  # number of epochs started
        self._rng = np.random.default_rng(seed)
        self._current: tuple[dict, int] | None = None  # (rng state at epoch start, batches done)
        self._resume: tuple[dict, int] | None = None

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def _order(self) -> np.ndarray | None:
        return self._rng.permutation(self.n) if self.shuffle else None

    def __iter__(self) -> Iterator[tuple[np.ndarray, ...]]:
        if self._resume is not None:
            start_state, start = self._resume
            self._resume = None
            self._rng.bit_generator.state = copy.deepcopy(start_state)
        else:
            start_state, start = copy.deepcopy(self._rng.bit_generator.state), 0
            self.epoch += 1
        order = self._order()
        nb = len(self)
        for b in range(start, nb):
            self._current = (start_state, b + 1)
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, self.n)
            if order is None:
                yield tuple(a[lo:hi] for a in self.arrays)
            else:
                idx = order[lo:hi]
                yield tuple(a[idx] for a in self.arrays)
        self._current = None

    def state_dict(self) -> dict[str, Any]:
        """A picklable snapshot: ``epoch``, ``rng_state`` (the bit generator's state), ``batch``
        (batches already yielded in the current epoch, 0 between epochs) and the settings."""
        if self._current is not None and self._current[1] < len(self):
            rng_state, batch = self._current
            epoch = self.epoch
        else:
            rng_state, batch, epoch = self._rng.bit_generator.state, 0, self.epoch
        return {"epoch": epoch, "batch": batch, "rng_state": copy.deepcopy(rng_state), "seed": self.seed,
                "n": self.n, "batch_size": self.batch_size, "shuffle": self.shuffle, "drop_last": self.drop_last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the next ``iter()`` continues where the snapshot was taken.

        Raises :class:`ValueError` if the snapshot was taken with a different data length or
        batch size."""
        if state.get("n", self.n) != self.n or state.get("batch_size", self.batch_size) != self.batch_size:
            raise ValueError(f"state is for n={state.get('n')}, batch_size={state.get('batch_size')}; "
                             f"this loader has n={self.n}, batch_size={self.batch_size}")
        self.epoch = int(state["epoch"])
        self._current = None
        if state.get("batch", 0):
            self._resume = (copy.deepcopy(state["rng_state"]), int(state["batch"]))
        else:
            self._resume = None
            self._rng.bit_generator.state = copy.deepcopy(state["rng_state"])
