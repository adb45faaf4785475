"""uint8 pixels as float tensors on the device, and how a global batch splits over data-parallel ranks:
what the in-memory and the streaming batches share."""

from __future__ import annotations

import numpy as np
import torch

from aekit.errors import ConfigError

SCALE = 1.0 / 255.0  # input_data multiplies by 1/255 in float32


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1] in one fused cast-and-scale op; float data passes through."""
    return torch.mul(x, SCALE) if x.dtype == torch.uint8 else x  # uint8 * python float promotes to float32


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
