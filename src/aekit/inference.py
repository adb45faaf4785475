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

from aekit.data.inputs import load_input
from aekit.data.tables import TableSchema, is_table, read_table
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
from aekit.training.neighbors import N_NEIGHBORS, differences, knn_distance, saved_norm_power


@dataclass
class OpenedModel:
    network: torch.nn.Module  # an autoencoder or an EncoderClassifier, eval mode, on the CPU
    estimator: object | None  # the fitted estimator, when the checkpoint holds one
    train_error_quantiles: np.ndarray | None
    source: str
    validation_error_quantiles: np.ndarray | None = None
    table: TableSchema | None = None  # a model trained on a table: how its rows become features
    neighbors: np.ndarray | None = None  # training samples for nearest-neighbour scores (aekit.training.neighbors)
    validation_neighbor_quantiles: np.ndarray | None = None  # of the validation samples' nearest-neighbour scores
    neighbors_norm_power: float = 0.0  # the space of those scores; checkpoints from before it was recorded used 0

    @property
    def methods(self) -> tuple[str, ...]:
        """The scores this model can give, its default first."""
        return ("knn", "reconstruction") if self.neighbors is not None else ("reconstruction",)

    def read(self, path: str | Path, key: str | None = None, unknown: str = "error") -> tuple[np.ndarray, tuple[int, ...]]:
        """(N, D) input and its image shape from ``path``: a table file through the model's table schema, else
        what :func:`aekit.data.inputs.load_input` reads."""
        path = Path(path)
        if is_table(path):
            if self.table is None:
                raise DataError(f"INPUT {path} is a table, but the model at {self.source} was not trained on one; "
                                "train it on a table (aekit reproduce stacked --dataset TABLE.csv)")
            x = self.table.transform(read_table(path, f"INPUT {path}"), f"INPUT {path}", unknown)
            return x, (x.shape[1],)
        if self.table is not None:  # raw numbers, one column each, standardized as the training rows were
            if path.is_dir() or path.suffix not in (".npy", ".npz"):
                raise DataError(f"INPUT {path}: the model at {self.source} was trained on a table; give new rows as "
                                ".csv or .parquet with the same columns")
            x, _ = load_input(path, key=key)
            x = self.table.transform_array(x, f"INPUT {path}")
            return x, (x.shape[1],)
        return load_input(path, key=key)

    @property
    def bounded(self) -> bool:
        """Whether the network's input lies in [0, 1] (pixels) rather than standardized values."""
        if self.estimator is not None:
            return self.estimator.scaling_ != "standard"
        return self.table is None

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
        if self.bounded and x.dtype != np.uint8 and (x.min() < 0 or x.max() > 1):
            raise DataError(f"{what}: float values must lie in [0, 1] (found {x.min():g} to {x.max():g}); "
                            "pass uint8 pixels or divide by 255")
        return x

    def scaled(self, x: np.ndarray, what: str = "INPUT") -> np.ndarray:
        """:meth:`prepare` as floats: what the network's reconstructions are compared with."""
        x = self.prepare(x, what)
        return x / np.float32(255) if x.dtype == np.uint8 else x

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

    def scores(self, x: np.ndarray, method: str) -> np.ndarray:
        """Anomaly scores (higher = more anomalous): the reconstruction error, or (``knn``) the mean distance to
        the nearest kept training samples."""
        if method == "reconstruction":
            return self.errors(x)
        return knn_distance(self.neighbors, self.prepare(x), self.n_neighbors, self.bounded, torch.device("cpu"),
                            norm_power=self.neighbors_norm_power)

    def differences(self, x: np.ndarray, method: str) -> np.ndarray:
        """(N, D) per-feature squared differences behind each score: from the reconstruction, or (``knn``) from
        the nearest kept training samples (in the space their distances are taken in)."""
        if method == "reconstruction":
            return (self.reconstruct(x) - self.scaled(x)) ** 2
        return differences(self.neighbors, self.prepare(x), self.n_neighbors, self.bounded, torch.device("cpu"),
                           norm_power=self.neighbors_norm_power)

    @property
    def n_neighbors(self) -> int:
        return getattr(self.estimator, "n_neighbors", N_NEIGHBORS)

    def threshold(self, contamination: float, errors: np.ndarray, quantile: float | None = None,
                  method: str = "reconstruction") -> tuple[float, str]:
        """The score above which a sample is an outlier: PyOD's meaning of ``contamination``, the
        expected share of outliers in the *training* data; or, given ``quantile``, that quantile of the
        validation errors (rows the model never trained on). Falls back to the input's own errors.
        Nearest-neighbour scores of training samples are zero (each is its own neighbour), so both rules take
        the validation samples' scores for them."""
        check_threshold(contamination, quantile)
        if method == "knn":
            level = quantile if quantile is not None else 1 - contamination
            if self.validation_neighbor_quantiles is None:
                return float(np.quantile(errors, level)), "this input (the model keeps no validation scores)"
            return float(np.interp(level, QUANTILE_LEVELS, self.validation_neighbor_quantiles)), "validation scores"
        if quantile is not None:
            if self.validation_error_quantiles is None:
                raise DataError(f"the model at {self.source} keeps no validation errors (its run had no validation "
                                "split, or it is an estimator); use --contamination instead")
            return float(np.interp(quantile, QUANTILE_LEVELS, self.validation_error_quantiles)), "validation errors"
        if self.train_error_quantiles is not None:
            return float(np.interp(1 - contamination, QUANTILE_LEVELS, self.train_error_quantiles)), "training data"
        return float(np.quantile(errors, 1 - contamination)), "this input (the checkpoint has no training errors)"


def check_threshold(contamination: float, quantile: float | None = None) -> None:
    """The threshold's options, checkable before any work: ``quantile`` in (0, 1) when given, else
    ``contamination`` in (0, 0.5)."""
    if quantile is not None and not 0 < quantile < 1:
        raise DataError(f"--quantile {quantile} must be in (0, 1), e.g. 0.99")
    if quantile is None and not 0 < contamination < 0.5:
        raise DataError(f"--contamination {contamination} must be in (0, 0.5)")


def open_model(path: str | Path) -> OpenedModel:
    obj = load(path)
    if isinstance(obj, torch.nn.Module):
        quantiles = {}
        for name in ("train_error_quantiles", "validation_error_quantiles", "validation_neighbor_quantiles"):
            q = quantiles[name] = getattr(obj, "extra_arrays", {}).get(name)
            if q is not None and (q.shape != QUANTILE_LEVELS.shape or not np.isfinite(q).all()):
                raise DataError(f"{path}: extra.{name} must be {len(QUANTILE_LEVELS)} finite numbers, "
                                f"found shape {q.shape}; the checkpoint is damaged: rerun the training")
        saved = getattr(obj, "extra", {}).get("table")
        table = None if saved is None else TableSchema.from_json(saved, f"{Path(path) / 'config.json'}")
        opened = OpenedModel(obj.cpu().eval(), None, quantiles["train_error_quantiles"], str(path),
                             quantiles["validation_error_quantiles"], table, _bank(obj, path),
                             quantiles["validation_neighbor_quantiles"],
                             saved_norm_power(getattr(obj, "extra", {}), "neighbors_norm_power", path))
        if table is not None and len(table.feature_names) != opened.input_size:
            raise DataError(f"{path}: extra.table describes {len(table.feature_names)} features but the network takes "
                            f"{opened.input_size}; the checkpoint is damaged: rerun the training")
        return opened
    network = obj.model_.cpu().eval()
    return OpenedModel(network, obj, getattr(obj, "train_error_quantiles_", None), str(path),
                       neighbors=getattr(obj, "neighbors_", None), neighbors_norm_power=getattr(obj, "knn_norm_power_", 0.0))


def _bank(model: torch.nn.Module, path) -> np.ndarray | None:
    """The run's kept training samples, checked against the network's input width; None in older checkpoints."""
    kept = getattr(model, "extra_arrays", {}).get("neighbors")
    width = (model.config.autoencoder if isinstance(model, EncoderClassifier) else model.config).input_size
    if kept is not None and (kept.ndim != 2 or kept.shape[1] != width or len(kept) == 0):
        raise DataError(f"{path}: extra.neighbors must be (rows, {width}) training samples, found shape {kept.shape}; "
                        "the checkpoint is damaged: rerun the training")
    return kept
