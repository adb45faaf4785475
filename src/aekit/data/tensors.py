"""What the in-memory and the streaming batches share: uint8 pixels as float tensors on the device, and
how a global batch splits over data-parallel ranks."""

from __future__ import annotations

import copy

import numpy as np
import torch

from aekit.errors import ConfigError

SCALE = 1.0 / 255.0  # input_data multiplies by 1/255 in float32


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1] in one cast-and-scale op; float data passes through."""
    return torch.mul(x, SCALE) if x.dtype == torch.uint8 else x  # uint8 * python float promotes to float32


def gather_float(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``to_float(x.index_select(0, idx))``: rows ``idx`` of ``x`` as float32 (uint8 scaled to [0, 1])."""
    return to_float(x.index_select(0, idx))


def as_device_tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 and float64 stay as they are, anything else becomes float32; shares memory on the CPU when it safely can."""
    a = np.ascontiguousarray(a if a.dtype in (np.uint8, np.float64) else a.astype(np.float32, copy=False))
    if not a.flags.writeable:  # e.g. a read-only memmap: torch must not alias it
        a = a.copy()
    return torch.from_numpy(a).to(device)


def check_shard(batch_size: int, rank: int, world_size: int) -> None:
    """A global batch splits evenly over the ranks, and ``rank`` is one of them."""
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank={rank} must be in [0, world_size={world_size})")
    if batch_size % world_size:
        raise ConfigError(f"batch_size={batch_size} does not split evenly over {world_size} processes; choose a "
                          f"batch_size that is a multiple of {world_size} (e.g. {batch_size - batch_size % world_size or world_size})")


class ShardedBatches:
    """The common part of a batches class: ``batch_size`` is the global batch, of which rank ``rank`` of
    ``world_size`` takes slice ``local_batch``; ``seed`` drives the shuffling; ``y`` the labels, on ``device``."""

    def __init__(self, n: int, labels: np.ndarray | None, *, batch_size: int, device: torch.device | str, seed: int,
                 rank: int, world_size: int):
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be a positive integer")
        check_shard(batch_size, rank, world_size)
        if n < batch_size:
            raise ConfigError(f"batch_size={batch_size} is larger than the {n} training images; "
                              f"use a batch_size of at most {n}")
        if labels is not None and len(labels) != n:
            raise ConfigError(f"{len(labels)} labels for {n} images; they must be as many")
        self.device = torch.device(device)
        self.y = None if labels is None else torch.as_tensor(labels, dtype=torch.int64).to(self.device)
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.local_batch = batch_size // world_size

    def reseeded(self, seed: int):
        """The same data (shared, not copied) with another shuffling stream, e.g. for a second phase."""
        other = copy.copy(self)
        other.seed = seed
        return other
