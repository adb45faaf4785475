"""Anomaly scores by nearest neighbours: how far a sample lies from the training samples it most resembles.

A sample's score is its mean Euclidean distance to its ``k`` nearest training samples. Distances are taken in
the space the network sees (pixels in [0, 1], or standardized columns), with pixels square-rooted first: the
square root evens out the variance of bright and dark pixels (an anscombe-like transform), so a faint
stroke where normal images have none counts as much as a bright one. Each image's square-rooted pixels are
then divided by their norm to the power :data:`NORM_POWER`: part of the way to comparing directions only, so a
thicker or brighter copy of a normal image stays near it while overall brightness still counts a little (the
power is the largest at which Fashion-MNIST's one-class validation AUC stays within 0.002 of power 0's, while
digits gain the more the larger it is: ``python -m benchmarks knn-space``). The training samples are kept as they
came (uint8 pixels stay uint8) and converted once, in chunks.

A trained run keeps a bank of at most :data:`BANK_ROWS` training samples (a seeded draw) in its checkpoint, with
the quantiles of its validation samples' scores, so that ``aekit score`` can use it on new data.
"""

from __future__ import annotations

import numpy as np
import torch

from aekit.errors import DataError
from aekit.training.evaluate import per_chunk

N_NEIGHBORS = 5  # neighbours averaged: the estimator's default, and what a run's bank is scored with
BANK_ROWS = 20_000  # training samples a run keeps for scoring (uint8 28x28 images: 16 MB)
QUANTILE_ROWS = 10_000  # validation samples whose scores give a run's thresholds
NORM_POWER = 0.3  # 0 compares pixels as they are, 1 their directions only; checkpoints record the power they used
BANK_CHUNK, QUERY_CHUNK = 8192, 1024  # rows compared at once: the distance matrix stays near 32 MB


def features(x: torch.Tensor, bounded: bool, norm_power: float) -> torch.Tensor:
    """Rows in the space distances are taken in: the square root of [0, 1] pixels over its norm to the power
    ``norm_power``, standardized columns as they are. uint8 rows are scaled by 1/255 first."""
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    x = x.float() if x.dtype not in (torch.float32, torch.float64) else x
    if not bounded:
        return x
    x = x.clamp(0.0, 1.0).sqrt()
    if norm_power:  # an all-black image keeps its zeros
        x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-6) ** norm_power
    return x


def knn_distance(bank: np.ndarray, x: np.ndarray, k: int, bounded: bool, device: torch.device, *,
                 norm_power: float) -> np.ndarray:
    """(N,) mean distance of each row of ``x`` to its ``k`` nearest rows of ``bank`` (at most ``len(bank)``),
    both in the network's scaled space (see :func:`features`)."""
    search = _Search(bank, k, bounded, device, norm_power)
    return per_chunk(lambda q: search(q)[0].mean(dim=1), x, device, QUERY_CHUNK).astype(np.float64)


def differences(bank: np.ndarray, x: np.ndarray, k: int, bounded: bool, device: torch.device, *,
                norm_power: float) -> np.ndarray:
    """(N, D) per-feature squared differences between each row of ``x`` and its ``k`` nearest rows of ``bank``
    (their mean), in the space distances are taken in: summed over the features they are the mean squared
    distance to those rows, so they say which features set a row apart from the training samples it resembles."""
    search = _Search(bank, k, bounded, device, norm_power)

    def one(q: torch.Tensor) -> torch.Tensor:
        idx = search(q)[1]
        near = search.features(torch.as_tensor(bank[idx.reshape(-1).cpu().numpy()]).to(device))
        near = near.view(len(q), idx.shape[1], -1)
        return ((near - search.features(q)[:, None].to(near.dtype)) ** 2).mean(dim=1)
    return per_chunk(one, x, device, QUERY_CHUNK)


class _Search:
    """The ``k`` nearest rows of a bank, held in chunks of scaled rows: ``search(q)`` gives (distances, indices)."""

    def __init__(self, bank: np.ndarray, k: int, bounded: bool, device: torch.device, norm_power: float):
        self.k, self.bounded, self.norm_power = min(k, len(bank)), bounded, norm_power
        self.chunks = [(start, self.features(torch.as_tensor(bank[start:start + BANK_CHUNK]).to(device)))
                       for start in range(0, len(bank), BANK_CHUNK)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return features(x, self.bounded, self.norm_power)

    def __call__(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.features(q)
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


def saved_norm_power(extra: dict, key: str, where) -> float:
    """The norm power a checkpoint's neighbour scores were measured with: ``extra[key]``, or 0 in checkpoints
    from before it was recorded (their thresholds were measured that way)."""
    power = extra.get(key, 0.0)
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not 0 <= power <= 1:
        raise DataError(f"{where}: extra.{key} must be a number in [0, 1], found {power!r}; "
                        "the checkpoint is damaged: rerun the training")
    return float(power)


def bank(train: np.ndarray, rows: int = BANK_ROWS) -> np.ndarray:
    """The training samples a run keeps: all of them, or ``rows`` drawn without replacement (seed 0), in order."""
    if len(train) <= rows:
        return np.ascontiguousarray(train)
    return train[np.sort(np.random.default_rng(0).choice(len(train), size=rows, replace=False))]
