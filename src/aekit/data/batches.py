"""A data path with no per-sample Python: the whole split lives on the device as uint8.

Each epoch draws one permutation from a generator seeded by ``(seed, epoch)``, so the
order is a pure function of the epoch: a resumed run and every DDP rank see the same
permutation. Like TF1's ``next_batch`` loop, an epoch is ``int(n / batch_size)`` full batches;
the remainder is dropped. Under data parallelism ``batch_size`` stays the *global* batch: rank
``r`` of ``W`` takes slice ``r`` of every global batch, so all ranks step the same number of
times and their averaged gradients are the one-process gradient of that batch.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from aekit.data.rows import RowView
from aekit.data.stream import StreamBatches
from aekit.data.tensors import ShardedBatches, as_device_tensor, check_shard, gather_float, to_float
from aekit.runtime import generator

__all__ = ["DeviceBatches", "StreamBatches", "as_device_tensor", "check_shard", "iterate_in_chunks", "make_batches",
           "to_float"]


class DeviceBatches(ShardedBatches):
    """Shuffled mini-batches of ``(x,)`` or ``(x, y)`` gathered on ``device``.

    ``images`` is (N, D) uint8 (scaled to [0, 1] per batch) or float (used as is, as float32).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None, *, batch_size: int,
                 device: torch.device | str = "cpu", seed: int = 0, rank: int = 0, world_size: int = 1):
        super().__init__(len(images), labels, batch_size=batch_size, device=device, seed=seed, rank=rank,
                         world_size=world_size)
        self.x = as_device_tensor(images, self.device)  # (N, D) uint8 (or float32 for non-image data)

    def __len__(self) -> int:
        return len(self.x) // self.batch_size

    def permutation(self, epoch: int) -> torch.Tensor:
        """This rank's sample order for ``epoch``: (len(self), local_batch) indices on the device, row ``b``
        being this rank's slice of global batch ``b``."""
        perm = torch.randperm(len(self.x), generator=generator(self.seed * 1_000_003 + epoch))
        batches = perm[: len(self) * self.batch_size].view(len(self), self.world_size, self.local_batch)
        return batches[:, self.rank].contiguous().to(self.device, non_blocking=True)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, ...]]:
        for idx in self.permutation(epoch):
            x = gather_float(self.x, idx)  # (B, D) float32
            yield (x,) if self.y is None else (x, self.y.index_select(0, idx))


def make_batches(images, labels=None, *, batch_size: int, device: torch.device | str = "cpu", seed: int = 0,
                 rank: int = 0, world_size: int = 1):
    """The training batches for a split: every program and estimator gets its batches here. A split that is
    a view of a memory-mapped file (a dataset bigger than memory) is streamed from it; any other is copied
    to the device whole."""
    if isinstance(images, RowView):
        return StreamBatches(images, labels, batch_size=batch_size, device=device, seed=seed, rank=rank,
                             world_size=world_size)
    return DeviceBatches(images, labels, batch_size=batch_size, device=device, seed=seed, rank=rank,
                         world_size=world_size)


def iterate_in_chunks(images: np.ndarray, device: torch.device, chunk: int = 8192) -> Iterator[torch.Tensor]:
    """Scaled float batches of ``images`` in order, for evaluation and encoding."""
    for start in range(0, len(images), chunk):
        yield to_float(as_device_tensor(images[start:start + chunk], device))
