"""Anomaly scores by nearest neighbours: how far a sample lies from the training samples it most resembles.

A sample's score is its mean Euclidean distance to its ``k`` nearest training samples. Distances are taken in
the space the network sees (pixels in [0, 1], or standardized columns), with pixels square-rooted first: the
square root evens out the variance of bright and dark pixels (an anscombe-like transform), so a faint
stroke where normal images have none counts as much as a bright one. The training samples are kept as they
came (uint8 pixels stay uint8) and converted once, in chunks.

A trained run keeps a bank of at most :data:`BANK_ROWS` training samples (a seeded draw) in its checkpoint, with
the quantiles of its validation samples' scores, so that ``aekit score`` can use it on new data.
"""

from __future__ import annotations

import numpy as np
import torch

from aekit.training.evaluate import per_chunk

N_NEIGHBORS = 5  # neighbours averaged: the estimator's default, and what a run's bank is scored with
BANK_ROWS = 20_000  # training samples a run keeps for scoring (uint8 28x28 images: 16 MB)
QUANTILE_ROWS = 10_000  # validation samples whose scores give a run's thresholds
BANK_CHUNK, QUERY_CHUNK = 8192, 1024  # rows compared at once: the distance matrix stays near 32 MB


def features(x: torch.Tensor, bounded: bool) -> torch.Tensor:
    """Rows in the space distances are taken in: the square root of [0, 1] pixels, standardized columns as
    they are. uint8 rows are scaled by 1/255 first."""
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    x = x.float() if x.dtype not in (torch.float32, torch.float64) else x
    return x.clamp(0.0, 1.0).sqrt() if bounded else x


def knn_distance(bank: np.ndarray, x: np.ndarray, k: int, bounded: bool, device: torch.device) -> np.ndarray:
    """(N,) mean distance of each row of ``x`` to its ``k`` nearest rows of ``bank`` (at most ``len(bank)``),
    both in the network's scaled space (see :func:`features`)."""
    search = _Search(bank, k, bounded, device)
    return per_chunk(lambda q: search(q)[0].mean(dim=1), x, device, QUERY_CHUNK).astype(np.float64)


def differences(bank: np.ndarray, x: np.ndarray, k: int, bounded: bool, device: torch.device) -> np.ndarray:
    """(N, D) per-feature squared differences between each row of ``x`` and its ``k`` nearest rows of ``bank``
    (their mean), in the space distances are taken in: summed over the features they are the mean squared
    distance to those rows, so they say which features set a row apart from the training samples it resembles."""
    search = _Search(bank, k, bounded, device)

    def one(q: torch.Tensor) -> torch.Tensor:
        idx = search(q)[1]
        near = features(torch.as_tensor(bank[idx.reshape(-1).cpu().numpy()]).to(device), bounded)
        near = near.view(len(q), idx.shape[1], -1)
        return ((near - features(q, bounded)[:, None].to(near.dtype)) ** 2).mean(dim=1)
    return per_chunk(one, x, device, QUERY_CHUNK)


class _Search:
    """The ``k`` nearest rows of a bank, held in chunks of scaled rows: ``search(q)`` gives (distances, indices)."""

    def __init__(self, bank: np.ndarray, k: int, bounded: bool, device: torch.device):
        self.k, self.bounded = min(k, len(bank)), bounded
        self.chunks = [(start, features(torch.as_tensor(bank[start:start + BANK_CHUNK]).to(device), bounded))
                       for start in range(0, len(bank), BANK_CHUNK)]

    def __call__(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = features(q, self.bounded)
        best = None
        for start, b in self.chunks:  # the k nearest of each bank chunk, then of those
            d = torch.cdist(q.to(b.dtype), b).clamp_min(0.0)
            d, i = d.topk(min(self.k, d.shape[1]), dim=1, largest=False)
            if best is not None:
                d, i = torch.cat([best[0], d], dim=1), torch.cat([best[1], i + start], dim=1)
                d, order = d.topk(self.k, dim=1, largest=False)
                i = i.gather(1, order)
            best = (d, i)
        return best


def bank(train: np.ndarray, rows: int = BANK_ROWS) -> np.ndarray:
    """The training samples a run keeps: all of them, or ``rows`` drawn without replacement (seed 0), in order."""
    if len(train) <= rows:
        return np.ascontiguousarray(train)
    return train[np.sort(np.random.default_rng(0).choice(len(train), size=rows, replace=False))]
