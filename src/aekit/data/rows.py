"""Rows of a memory-mapped (N, D) array, selected without copying, and read with ``pread``.

A dataset bigger than memory is opened as a read-only ``np.memmap``. Reading it *through* the
mapping would make every page touched count in the process's resident memory until the kernel
reclaims it, so a pass over a 784 MB file would show a 784 MB peak RSS. :class:`RowView` reads
rows with plain file reads instead (the page cache holds them, not the process): one read per
run of consecutive rows, straight into the output array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aekit.errors import DataError


def read_rows(mm: np.memmap, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``mm[rows]`` for a 2-D memmap ``mm`` and sorted row numbers ``rows``, read from its file, not its pages.

    ``out`` (len(rows), D), when given, receives the rows; consecutive rows are read in one call."""
    n_cols = mm.shape[1]
    row_bytes = n_cols * mm.dtype.itemsize
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), n_cols), dtype=mm.dtype) if out is None else out
    if len(rows) == 0:
        return out
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1  # where a run of consecutive rows ends
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [len(rows)]))
    buffer = memoryview(out.reshape(-1).view(np.uint8))
    with open(mm.filename, "rb", buffering=0) as f:
        for a, b in zip(starts.tolist(), stops.tolist()):
            f.seek(mm.offset + int(rows[a]) * row_bytes)
            _read_exactly(f, buffer[a * row_bytes:b * row_bytes], mm.filename)
    return out


def _read_exactly(f, target: memoryview, name: str) -> None:
    got = 0
    while got < len(target):
        n = f.readinto(target[got:])
        if not n:
            raise DataError(f"{name}: the file ended early (it shrank after it was opened?); re-create or re-copy it")
        got += n


class RowView:
    """The rows ``rows`` (sorted, or None for all) of a 2-D memmap, as an array-like that copies nothing.

    It has ``len``, ``shape``, ``dtype`` and ``ndim``; indexing it with an int, a slice, an index array or a
    boolean mask returns those rows as an ndarray, so evaluation code (``images[:k]``, ``images[idx]``,
    chunked iteration) takes it as it takes an array. ``np.asarray(view)`` reads all of it: avoid that.
    """

    def __init__(self, mm: np.memmap, rows: np.ndarray | None = None):
        if mm.ndim != 2:
            raise ValueError(f"RowView needs a 2-D memmap, got shape {mm.shape}")
        self.base = mm
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.dtype = mm.dtype
        self.ndim = 2

    @property
    def path(self) -> Path:
        return Path(self.base.filename)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.base.shape[1])

    def __len__(self) -> int:
        return self.base.shape[0] if self.rows is None else len(self.rows)

    def file_rows(self, positions: np.ndarray | slice) -> np.ndarray:
        """The file's row numbers of the view's rows at ``positions``."""
        if self.rows is not None:
            return self.rows[positions]
        return np.arange(len(self))[positions] if isinstance(positions, slice) else np.asarray(positions, dtype=np.int64)

    def __getitem__(self, key):
        if isinstance(key, tuple):  # rows first, then the rest on the (small) result
            return self[key[0]][(slice(None), *key[1:])]
        if isinstance(key, (int, np.integer)):
            n = len(self)
            if not -n <= key < n:
                raise IndexError(f"index {key} is out of bounds for {n} rows")
            return self[slice(int(key) % n, int(key) % n + 1)][0]
        if isinstance(key, slice):
            return read_rows(self.base, self.file_rows(key))
        key = np.asarray(key)
        if key.dtype == bool:
            if key.shape != (len(self),):
                raise IndexError(f"boolean index of shape {key.shape} does not match {len(self)} rows")
            key = np.flatnonzero(key)
        wanted = self.file_rows(np.where(key < 0, key + len(self), key) if key.size else key.astype(np.int64))
        order = np.argsort(wanted, kind="stable")
        out = np.empty((len(wanted), self.base.shape[1]), dtype=self.dtype)
        out[order] = read_rows(self.base, wanted[order])  # read in file order, give back in the order asked
        return out

    def __array__(self, dtype=None, copy=None):
        x = self[:]
        return x if dtype is None else x.astype(dtype)

    def __repr__(self) -> str:
        return f"RowView({self.path.name}, {len(self)} of {self.base.shape[0]} rows x {self.base.shape[1]})"
