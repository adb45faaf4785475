"""Training batches streamed from a memory-mapped split: the data path for datasets bigger than memory.

The same interface as :class:`~aekit.data.batches.DeviceBatches`, and the same contract: an epoch's
order is a pure function of ``(seed, epoch)`` (so a resumed run and every DDP rank see the same
order), an epoch is ``n // batch_size`` global batches, and rank ``r`` of ``W`` takes slice ``r`` of
every global batch. Only the way rows are drawn differs, so that the file is read sequentially:

1. the split's rows are cut into chunks of ``chunk_rows`` consecutive rows;
2. each epoch shuffles the chunks, and takes them ``buffer_chunks`` at a time (a *window*);
3. a window is read with one file read per run of rows, kept as uint8, and its rows shuffled.

The epoch's order is the windows' shuffled rows one after the other; a batch may span two windows.
At most two windows are in memory (the one being used and the next, read by a background thread
while the device trains): about 2 x 4 x 16,384 x 784 bytes = 103 MB at the defaults.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import numpy as np
import torch

from aekit.data.rows import RowView, read_rows
from aekit.data.tensors import ShardedBatches, to_float
from aekit.errors import ConfigError
from aekit.runtime import generator

CHUNK_ROWS = 16_384  # rows read in one piece: 12.8 MB of 784-byte images
BUFFER_CHUNKS = 4  # chunks shuffled together


class StreamBatches(ShardedBatches):
    """Shuffled mini-batches of ``(x,)`` or ``(x, y)`` read from a :class:`RowView`, float32 on ``device``."""

    def __init__(self, images: RowView, labels: np.ndarray | None = None, *, batch_size: int,
                 device: torch.device | str = "cpu", seed: int = 0, rank: int = 0, world_size: int = 1,
                 chunk_rows: int = CHUNK_ROWS, buffer_chunks: int = BUFFER_CHUNKS, prefetch: bool = True):
        super().__init__(len(images), labels, batch_size=batch_size, device=device, seed=seed, rank=rank,
                         world_size=world_size)
        if chunk_rows < 1 or buffer_chunks < 1:
            raise ConfigError(f"chunk_rows={chunk_rows} and buffer_chunks={buffer_chunks} must be positive integers")
        self.images = images  # (N, D) uint8, read a window at a time
        self.chunk_rows, self.buffer_chunks, self.prefetch = chunk_rows, buffer_chunks, prefetch

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def plan(self, epoch: int) -> list[tuple[np.ndarray, torch.Tensor]]:
        """The windows of ``epoch``: for each, the split positions it reads (in file order) and the
        permutation of them the epoch takes. Drawn from ``(seed, epoch)`` alone."""
        g = generator(self.seed * 1_000_003 + epoch)
        n = len(self.images)
        n_chunks = -(-n // self.chunk_rows)
        chunks = torch.randperm(n_chunks, generator=g).numpy()
        windows = []
        for start in range(0, n_chunks, self.buffer_chunks):
            ids = np.sort(chunks[start:start + self.buffer_chunks])
            positions = np.concatenate([np.arange(c * self.chunk_rows, min((c + 1) * self.chunk_rows, n)) for c in ids])
            windows.append((positions, torch.randperm(len(positions), generator=g)))
        return windows

    def order(self, epoch: int) -> np.ndarray:
        """Every position of the split in the order ``epoch`` uses them (batch ``b`` is ``[b*B, (b+1)*B)``)."""
        return np.concatenate([positions[perm.numpy()] for positions, perm in self.plan(epoch)])

    def _read(self, positions: np.ndarray) -> tuple[torch.Tensor, ...]:
        """One window on the device: its images (uint8) and labels, in ``positions`` order."""
        x = torch.from_numpy(read_rows(self.images.base, self.images.file_rows(positions))).to(self.device)
        if self.y is None:
            return (x,)
        return x, self.y.index_select(0, torch.from_numpy(positions).to(self.device))

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, ...]]:
        windows = self.plan(epoch)
        lo, hi, size = self.rank * self.local_batch, (self.rank + 1) * self.local_batch, self.batch_size
        carry: tuple[torch.Tensor, ...] | None = None  # the rows of a global batch begun in the previous window
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(self._read, windows[0][0]) if self.prefetch else None
            for i, (positions, perm) in enumerate(windows):
                window = ahead.result() if ahead is not None else self._read(positions)
                if self.prefetch and i + 1 < len(windows):
                    ahead = pool.submit(self._read, windows[i + 1][0])
                perm = perm.to(self.device)
                start = 0
                if carry is not None:
                    start = min(size - len(carry[0]), len(perm))
                    carry = tuple(torch.cat((c, t.index_select(0, perm[:start]))) for c, t in zip(carry, window))
                    if len(carry[0]) < size:
                        continue  # a window smaller than a batch
                    yield self._batch(tuple(c[lo:hi] for c in carry))
                    carry = None
                while start + size <= len(perm):
                    yield self._batch(tuple(t.index_select(0, perm[start + lo:start + hi]) for t in window))
                    start += size
                if start < len(perm):
                    carry = tuple(t.index_select(0, perm[start:]) for t in window)

    @staticmethod
    def _batch(tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (to_float(tensors[0]), *tensors[1:])  # (B/W, D) float32 in [0, 1], then labels
