"""Use a saved model on new data: whatever ``aekit.load`` returns, seen as an autoencoder.

A checkpoint may hold any autoencoder (MLP, tied, PCA-residual, convolutional, VAE: everything with
``encode`` and ``decode``, see :func:`aekit.models.layers.is_autoencoder`), an ``EncoderClassifier``, or a fitted
estimator. :func:`open_model` gives them one interface: the network, how raw input is scaled into it, and
the training-error quantiles used for thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aekit.errors import DataError
from aekit.loading import load
from aekit.models.classifier import EncoderClassifier
from aekit.models.layers import is_autoencoder
from aekit.training.evaluate import (
    QUANTILE_LEVELS,
    encode,
    reconstruct,
    reconstruction_error,
)


@dataclass
class OpenedModel:
    network: torch.nn.Module  # an autoencoder or an EncoderClassifier, eval mode, on the CPU
    estimator: object | None  # the fitted estimator, when the checkpoint holds one
    train_error_quantiles: np.ndarray | None
    source: str

    @property
    def input_size(self) -> int:
        cfg = self.network.config
        return (cfg.autoencoder if isinstance(self.network, EncoderClassifier) else cfg).input_size

    def prepare(self, x: np.ndarray, what: str = "INPUT") -> np.ndarray:
        """Check the width and scale ``x`` into the network's [0, 1] space (uint8 stays uint8)."""
        if x.shape[1] != self.input_size:
            raise DataError(f"{what} has {x.shape[1]} features per sample; the model at {self.source} expects {self.input_size}")
        if self.estimator is not None:
            return self.estimator._scale(x)
        if x.dtype != np.uint8 and (x.min() < 0 or x.max() > 1):
            raise DataError(f"{what}: float values must lie in [0, 1] (found {x.min():g} to {x.max():g}); "
                            "pass uint8 pixels or divide by 255")
        return x

    def autoencoder(self) -> torch.nn.Module:
        """The network that reconstructs: the checkpoint's own, or the estimator's pretrained autoencoder."""
        if is_autoencoder(self.network):
            return self.network
        if self.estimator is not None and hasattr(self.estimator, "autoencoder_"):
            return self.estimator.autoencoder_
        raise DataError(f"the model at {self.source} is a classifier without a decoder; "
                        "reconstruct and score need an autoencoder checkpoint (a run directory, not its classifier/)")

    def encode(self, x: np.ndarray) -> np.ndarray:
        return encode(self.network, self.prepare(x), torch.device("cpu"))

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return reconstruct(self.autoencoder(), self.prepare(x), torch.device("cpu"))

    def errors(self, x: np.ndarray) -> np.ndarray:
        return reconstruction_error(self.autoencoder(), self.prepare(x), torch.device("cpu"))

    def threshold(self, contamination: float, errors: np.ndarray) -> tuple[float, str]:
        """The error above which a sample is an outlier: PyOD's meaning of ``contamination``, the
        expected share of outliers in the *training* data. Falls back to the input's own errors."""
        if not 0 < contamination < 0.5:
            raise DataError(f"--contamination {contamination} must be in (0, 0.5)")
        if self.train_error_quantiles is not None:
            return float(np.interp(1 - contamination, QUANTILE_LEVELS, self.train_error_quantiles)), "training data"
        return float(np.quantile(errors, 1 - contamination)), "this input (the checkpoint has no training errors)"


def open_model(path: str | Path) -> OpenedModel:
    obj = load(path)
    if isinstance(obj, torch.nn.Module):
        q = getattr(obj, "extra_arrays", {}).get("train_error_quantiles")
        if q is not None and (q.shape != QUANTILE_LEVELS.shape or not np.isfinite(q).all()):
            raise DataError(f"{path}: extra.train_error_quantiles must be {len(QUANTILE_LEVELS)} finite numbers, "
                            f"found shape {q.shape}; the checkpoint is damaged: rerun the training")
        return OpenedModel(obj.cpu().eval(), None, q, str(path))
    network = obj.model_.cpu().eval()
    return OpenedModel(network, obj, getattr(obj, "train_error_quantiles_", None), str(path))
