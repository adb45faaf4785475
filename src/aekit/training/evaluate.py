"""Evaluation without autograd, in large batches: reconstructions, codes, errors, accuracy, error quantiles."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from aekit.data.batches import iterate_in_chunks

QUANTILE_LEVELS = np.linspace(0.0, 1.0, 1001)  # stored training-error quantiles: 0.1% resolution


def error_quantiles(errors: np.ndarray) -> np.ndarray:
    return np.quantile(np.asarray(errors, dtype=np.float64), QUANTILE_LEVELS)


@torch.inference_mode()
def predict_batches(fn: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray, device: torch.device) -> Iterable[torch.Tensor]:
    for x in iterate_in_chunks(images, device):
        yield x, fn(x)


def reconstruction_error(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    """Per-sample mean squared error (N,), computed in large batches without autograd."""
    model.eval()
    errs = [((xh - x) ** 2).mean(dim=1) for x, xh in predict_batches(model, images, device)]
    return torch.cat(errs).cpu().numpy()


def encode(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    model.eval()
    return torch.cat([z for _, z in predict_batches(model.encode, images, device)]).cpu().numpy()


def reconstruct(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    model.eval()
    return torch.cat([xh for _, xh in predict_batches(model, images, device)]).cpu().numpy()


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, device: torch.device) -> float:
    model.eval()
    pred = torch.cat([logits.argmax(dim=1) for _, logits in predict_batches(model, images, device)]).cpu().numpy()
    return float((pred == labels).mean())
