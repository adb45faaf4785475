"""Evaluation without autograd, in large batches: reconstructions, codes, errors, accuracy, error quantiles."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from aekit.data.batches import iterate_in_chunks

QUANTILE_LEVELS = np.linspace(0.0, 1.0, 1001)  # stored training-error quantiles: 0.1% resolution


def error_quantiles(errors: np.ndarray) -> np.ndarray:
    return np.quantile(np.asarray(errors, dtype=np.float64), QUANTILE_LEVELS)


@torch.inference_mode()
def per_chunk(fn: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray, device: torch.device,
              chunk: int = 8192) -> np.ndarray:
    """``fn`` of every chunk of ``images``, written into one array allocated once.

    Keeping each chunk's small result as its own tensor until the end would interleave long-lived small blocks
    with the chunks' large ones on the heap, which glibc then cannot give back: over a million-row split the
    process grew by gigabytes. One output, filled in place, keeps memory flat however many rows there are."""
    out, start = None, 0
    for x in iterate_in_chunks(images, device, chunk):
        y = fn(x)
        if out is None:
            out = torch.empty((len(images), *y.shape[1:]), dtype=y.dtype, device=y.device)
        out[start:start + len(y)] = y
        start += len(y)
    return (out if out is not None else torch.empty(0)).cpu().numpy()


def reconstruction_error(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    """Per-sample mean squared error (N,), computed in large batches without autograd."""
    model.eval()
    return per_chunk(lambda x: ((model(x) - x) ** 2).mean(dim=1), images, device)


def encode(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    model.eval()
    return per_chunk(model.encode, images, device)


def reconstruct(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    model.eval()
    return per_chunk(model, images, device)


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, device: torch.device) -> float:
    model.eval()
    pred = per_chunk(lambda x: model(x).argmax(dim=1), images, device)
    return float((pred == labels).mean())
