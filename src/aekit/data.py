"""In-memory datasets: uint8 images, optional int64 labels, and the tutorial's splits.

Images stay ``uint8`` (N, D) in memory (a quarter of float32) and are scaled to [0, 1]
one batch at a time on the training device (see :mod:`aekit.batches`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError

VALIDATION_MAX = 5000  # the tutorial's input_data keeps the first 5,000 training images for validation


@dataclass
class Split:
    images: np.ndarray  # (N, D) uint8
    labels: np.ndarray | None  # (N,) int64, or None for unlabeled data

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class Dataset:
    name: str
    train: Split
    validation: Split
    test: Split
    image_shape: tuple[int, ...]  # e.g. (28, 28); prod == D
    classes: tuple[str, ...] = ()
    source: str = ""  # where it was read from
    extra: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return self.train.images.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> str:
        return (
            f"{self.name}: {len(self.train)} train, {len(self.validation)} validation, {len(self.test)} test, "
            f"{self.n_features} features, from {self.source}"
        )


def as_uint8_images(x: np.ndarray, what: str) -> np.ndarray:
    """(N, ...) images as (N, D) uint8; floats must lie in [0, 1] and are rounded to 1/255 steps."""
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0:
        raise DataError(f"{what}: expected a non-empty array of images (N, H, W) or (N, D), got shape {x.shape}")
    x = x.reshape(len(x), -1)
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise DataError(f"{what}: float images must lie in [0, 1]; found min {np.nanmin(x):g}, max {np.nanmax(x):g}")
        return np.rint(x * 255).astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer):
        if x.min() < 0 or x.max() > 255:
            raise DataError(f"{what}: integer images must lie in [0, 255]; found min {x.min()}, max {x.max()}")
        return x.astype(np.uint8)
    raise DataError(f"{what}: images must be uint8 or float in [0, 1], got dtype {x.dtype}")


def as_labels(y, n: int, what: str) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or (n and y.min() < 0):
        raise DataError(f"{what}: expected {n} non-negative integer labels of shape ({n},), got {y.dtype} {y.shape}")
    return y.astype(np.int64)


def validation_size(n_train: int) -> int:
    """The tutorial's 5,000 for the 60k datasets; 10% of smaller training sets."""
    return min(VALIDATION_MAX, n_train // 10)


def from_arrays(name, x_train, y_train, x_test, y_test, classes=(), source="", image_shape=None) -> Dataset:
    """Validate raw arrays and split off the validation set (the first images, as in ``input_data``)."""
    shape = image_shape or tuple(np.asarray(x_train).shape[1:])
    xtr = as_uint8_images(x_train, f"{name} training images")
    xte = as_uint8_images(x_test, f"{name} test images")
    if xtr.shape[1] != xte.shape[1]:
        raise DataError(f"{name}: training images have {xtr.shape[1]} features but test images have {xte.shape[1]}")
    if math.prod(shape) != xtr.shape[1] or len(shape) == 1:
        side = math.isqrt(xtr.shape[1])  # flat square images, e.g. 784 -> 28 x 28
        shape = (side, side) if side * side == xtr.shape[1] else (xtr.shape[1],)
    ytr = as_labels(y_train, len(xtr), f"{name} training labels")
    yte = as_labels(y_test, len(xte), f"{name} test labels")
    if not classes and ytr is not None:
        n_classes = int(max(ytr.max(), yte.max() if yte is not None else 0)) + 1
        classes = tuple(str(i) for i in range(n_classes))
    n_val = validation_size(len(xtr))
    take = (lambda y, s: None if y is None else y[s])
    return Dataset(
        name=name,
        train=Split(xtr[n_val:], take(ytr, slice(n_val, None))),
        validation=Split(xtr[:n_val], take(ytr, slice(None, n_val))),
        test=Split(xte, yte),
        image_shape=tuple(shape),
        classes=tuple(classes),
        source=source,
    )
