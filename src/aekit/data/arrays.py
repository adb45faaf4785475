"""In-memory datasets: uint8 images, optional int64 labels, and the tutorial's splits.

Images stay ``uint8`` (N, D) in memory (a quarter of float32) and are scaled to [0, 1]
one batch at a time on the training device (see :mod:`aekit.data.batches`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from aekit.errors import DataError

MAX_CLASSES = 100_000  # a label is an index into the softmax layer
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
    split: str = "first"  # how validation was split off: first (the tutorial's), or stratified (seed N)
    extra: dict = field(default_factory=dict)
    table: object | None = None  # a table's TableSchema (aekit.data.tables): its rows are standardized features
    bounded: bool = True  # values lie in [0, 1] (pixels): a sigmoid output fits them; False for standardized data

    @property
    def n_features(self) -> int:
        return self.train.images.shape[1]

    @property
    def kind(self) -> str:
        return "table" if self.table is not None else "images" if self.bounded else "features"

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
        bad = ~np.isfinite(x)
        if bad.any():
            raise DataError(f"{what}: {int(bad.sum())} NaN or infinite values, the first in row "
                            f"{int(bad.any(axis=1).argmax())}; float images must lie in [0, 1]")
        if x.min() < 0 or x.max() > 1:
            raise DataError(f"{what}: float images must lie in [0, 1]; found min {x.min():g}, max {x.max():g}; divide "
                            "pixels by 255 or save them as uint8 (image-shaped floats, and whole numbers in 0..255, are "
                            "taken as pixels; measurements: save them as a table .csv)")
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
    if n and y.max() >= MAX_CLASSES:
        raise DataError(f"{what}: labels are class indices 0..K-1 with K at most {MAX_CLASSES:,}; found label {y.max()}; "
                        "renumber them, e.g. with np.unique(y, return_inverse=True)")
    return y.astype(np.int64)


def validation_size(n_train: int) -> int:
    """The tutorial's 5,000 for the 60k datasets; 10% of smaller training sets."""
    return min(VALIDATION_MAX, n_train // 10)


SPLITS = ("first", "stratified")


def split_indices(labels: np.ndarray | None, n: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices for a random validation split of ``n_val`` rows, stratified by label.

    Each class gets its share of the validation rows (largest remainders first), at least one where it has
    two or more rows; unlabeled data gets a plain random split. Both index arrays come back sorted, so the
    training rows keep their order (training shuffles them every epoch anyway)."""
    rng = np.random.default_rng(seed)
    if labels is None or n_val == 0:
        val = rng.permutation(n)[:n_val]
    else:
        classes, counts = np.unique(labels, return_counts=True)
        share = n_val * counts / n
        take = np.floor(share).astype(np.int64)
        for i in np.argsort(-(share - take), kind="stable")[: n_val - take.sum()]:
            take[i] += 1
        short = (take == 0) & (counts >= 2)  # a class with 2+ rows is seen on both sides
        while short.any() and (take > 1).any():
            take[np.argmax(take)] -= 1
            take[np.flatnonzero(short)[0]] += 1
            short = (take == 0) & (counts >= 2)
        val = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)])
    val = np.sort(val)
    train = np.setdiff1d(np.arange(n), val, assume_unique=True)
    return train, val


def class_counts(split: Split, classes: tuple[str, ...]) -> dict[str, int] | None:
    """Rows per class name (0 for an absent class), or None for unlabeled data."""
    if split.labels is None:
        return None
    counts = np.bincount(split.labels, minlength=len(classes))
    return {name: int(counts[i]) for i, name in enumerate(classes)}


def split_warnings(data: Dataset) -> list[str]:
    """One line per split of ``data`` that lacks a class the others have: training would never see it,
    or its score would not count it."""
    lines = []
    for name in ("train", "validation", "test"):
        split = getattr(data, name)
        counts = class_counts(split, data.classes)
        if counts is None or len(split) == 0:
            continue
        missing = [c for c, k in counts.items() if k == 0]
        if missing:
            lines.append(f"warning: {data.name} {name} split has no rows of class{'es' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)} ({len(split)} rows)")
    return lines


def infer_classes(name: str, labels: dict[str, np.ndarray | None], classes: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The class names: ``classes`` when given, else "0".."K-1" up to the largest label (when the training
    labels, the first of ``labels``, exist); every split's labels must lie within them."""
    present = {what: y for what, y in labels.items() if y is not None and len(y)}
    if not classes and next(iter(labels.values())) is not None:
        classes = tuple(str(i) for i in range(int(max((y.max() for y in present.values()), default=0)) + 1))
    for what, y in present.items():
        if classes and y.max() >= len(classes):
            raise DataError(f"{name} {what} labels: label {y.max()} is beyond the {len(classes)} classes "
                            f"({', '.join(classes[:3])}, ...); the labels file does not belong to these images")
    return tuple(classes)


def from_arrays(name, x_train, y_train, x_test, y_test, classes=(), source="", image_shape=None,
                split: str = "stratified", seed: int = 0) -> Dataset:
    """Validate raw arrays and split off the validation set.

    ``split="stratified"`` (the default, for anyone's data) draws the validation rows at random from
    ``seed``, stratified by label: data sorted by class would otherwise put whole classes in validation only.
    ``split="first"`` keeps the first rows, as the tutorial's ``input_data`` does for MNIST.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not allowed; choose one of: {', '.join(SPLITS)}")
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
    classes = infer_classes(name, {"training": ytr, "test": yte}, classes)
    return with_validation(name, xtr, ytr, Split(xte, yte), split=split, seed=seed, image_shape=tuple(shape),
                           classes=tuple(classes), source=source)


def with_validation(name: str, x: np.ndarray, y: np.ndarray | None, test: Split, *, split: str = "stratified",
                    seed: int = 0, **fields) -> Dataset:
    """A Dataset whose validation split is taken from the training rows ``x`` (labels ``y``): the first rows
    (``split="first"``), or drawn from ``seed``, stratified by label; ``fields`` are the Dataset's others."""
    n_val = validation_size(len(x))
    if split == "first":
        tr, va = slice(n_val, None), slice(None, n_val)
    else:
        tr, va = split_indices(y, len(x), n_val, seed)

    def take(rows):
        return Split(x[rows], None if y is None else y[rows])
    return Dataset(name=name, train=take(tr), validation=take(va), test=test,
                   split="first" if split == "first" else f"stratified (seed {seed})", **fields)


def data_fingerprint(data: Dataset) -> dict:
    """The dataset's name, sizes and a hash of a sample of its rows (reading every row of a memory-mapped
    dataset would cost a pass over the disk)."""
    h = hashlib.blake2b(digest_size=8)
    for split in (data.train, data.validation, data.test):
        rows = np.linspace(0, len(split) - 1, num=min(len(split), 256)).astype(np.int64) if len(split) else []
        h.update(np.ascontiguousarray(split.images[rows]).tobytes())
        if split.labels is not None:
            h.update(np.ascontiguousarray(split.labels).tobytes())
    return {"name": data.name, "sizes": [len(data.train), len(data.validation), len(data.test)],
            "sample_hash": h.hexdigest()}
