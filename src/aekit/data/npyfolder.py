"""A dataset folder of ``.npy`` files, opened memory-mapped: datasets bigger than memory.

The folder holds ``x_train.npy`` and ``x_test.npy`` (uint8, (N, D) or (N, H, W)), optionally
``y_train.npy`` / ``y_test.npy`` (integer labels) and ``x_val.npy`` / ``y_val.npy`` (a given
validation split). Only headers and labels are read when it is opened: the training split is a
:class:`~aekit.data.rows.RowView` of the memory-mapped ``x_train.npy``, which training streams
(:mod:`aekit.data.stream`). Validation and test are read into memory; they are small.
Without ``x_val.npy`` the validation split is the one every user's dataset gets
(:func:`~aekit.data.arrays.split_indices`: seeded, stratified by label).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from aekit.data.arrays import Dataset, Split, as_labels, infer_classes, split_indices, validation_size
from aekit.data.images import is_image_shape
from aekit.data.inputs import read_npy, read_npy_header
from aekit.data.rows import RowView, read_rows
from aekit.errors import DataError

REQUIRED = ("x_train.npy", "x_test.npy")  # a folder holding either is meant as a dataset of this format


def is_npy_folder(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in REQUIRED)


def open_images(path: Path) -> tuple[np.memmap, tuple[int, ...]]:
    """``path`` as a read-only (N, D) uint8 memmap and its image shape; only the header is read."""
    try:
        with open(path, "rb") as f:
            shape, fortran, dtype, offset = read_npy_header(f, path.stat().st_size, str(path))
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e}); check that it is a readable .npy file") from None
    if dtype != np.uint8 or not (len(shape) == 2 or is_image_shape(shape[1:])) or shape[0] == 0 or math.prod(shape[1:]) == 0:
        raise DataError(f"{path}: images are {dtype} {shape}; expected non-empty uint8 (N, D), (N, H, W) or (N, H, W, C) "
                        "(write the folder with `aekit data convert`)")
    if fortran and len(shape) > 1 and math.prod(shape[1:]) > 1:
        raise DataError(f"{path}: the array is stored in Fortran order, so its rows are not contiguous; "
                        "save it with numpy.save(path, numpy.ascontiguousarray(x))")
    n, d = shape[0], math.prod(shape[1:])
    image_shape = tuple(shape[1:]) if len(shape) >= 3 else _square(d)
    return np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=(n, d)), image_shape


def _square(d: int) -> tuple[int, ...]:
    side = math.isqrt(d)
    return (side, side) if side * side == d else (d,)


def read_labels(folder: Path, name: str, n: int) -> np.ndarray | None:
    """``folder/name`` as (n,) int64 labels, or None when the file is absent."""
    path = folder / name
    if not path.is_file():
        return None
    y = read_npy(path)
    if y.ndim == 1 and len(y) != n:
        raise DataError(f"{path}: {len(y)} labels but x{name[1:]} has {n} rows; the two files must belong together")
    return as_labels(y, n, str(path))


def load_npy_folder(folder: Path, seed: int = 0) -> Dataset:
    """Open the dataset in ``folder`` without reading its training images."""
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{folder}: no {' or '.join(missing)}; a dataset folder holds x_train.npy and x_test.npy "
                        "(and optionally y_train.npy, y_test.npy, x_val.npy, y_val.npy); write one with `aekit data convert`")
    x_train, shape = open_images(folder / "x_train.npy")
    x_test, _ = open_images(folder / "x_test.npy")
    for other in (x_test, *([open_images(folder / "x_val.npy")[0]] if (folder / "x_val.npy").is_file() else [])):
        if other.shape[1] != x_train.shape[1]:
            raise DataError(f"{other.filename}: images have {other.shape[1]} features but x_train.npy has "
                            f"{x_train.shape[1]}; all splits must have the same image size")
    y_train = read_labels(folder, "y_train.npy", len(x_train))
    y_test = read_labels(folder, "y_test.npy", len(x_test))
    has_x_val, has_y_val = (folder / "x_val.npy").is_file(), (folder / "y_val.npy").is_file()
    if has_y_val and not has_x_val:
        raise DataError(f"{folder}: y_val.npy without x_val.npy; add the validation images as x_val.npy, or remove "
                        "y_val.npy (aekit then holds out a stratified validation split of x_train.npy)")
    if has_x_val and y_train is not None and not has_y_val:
        # Early stopping and model choice on validation accuracy would silently be skipped without them.
        raise DataError(f"{folder}: x_val.npy has no y_val.npy, but the training images are labeled; add the "
                        "validation labels as y_val.npy, or remove x_val.npy (aekit then holds out a stratified "
                        "validation split of x_train.npy)")
    if has_x_val:
        x_val = open_images(folder / "x_val.npy")[0]
        train, validation = Split(RowView(x_train), y_train), Split(read_rows(x_val, np.arange(len(x_val))),
                                                                    read_labels(folder, "y_val.npy", len(x_val)))
        how = "given (x_val.npy)"
    else:
        tr, va = split_indices(y_train, len(x_train), validation_size(len(x_train)), seed)
        train = Split(RowView(x_train, tr), None if y_train is None else y_train[tr])
        validation = Split(read_rows(x_train, va), None if y_train is None else y_train[va])
        how = f"stratified (seed {seed})"
    classes = infer_classes(folder.name, {"training": train.labels, "validation": validation.labels, "test": y_test})
    return Dataset(name=folder.name, train=train, validation=validation,
                   test=Split(read_rows(x_test, np.arange(len(x_test))), y_test),
                   image_shape=shape, classes=classes, source=str(folder), split=how)
