"""``aekit data convert SRC DIR``: write a dataset folder of ``.npy`` files (:mod:`aekit.data.npyfolder`).

SRC is a dataset name aekit knows, a folder of IDX files, an ``.npz`` with ``x_train`` / ``x_test``
(and optional ``y_train`` / ``y_test``), or a folder of images (PNG, JPEG, ...) with ``train/`` and ``test/``
subfolders (images directly inside, or in one subfolder per class, whose sorted names become labels 0..K-1;
grayscale, or RGB for all when any image has colour).
Images are written a chunk at a time (:mod:`aekit.data.sources`), so a source bigger than memory
converts; labels are small and read whole. A named dataset keeps its validation split (``x_val.npy``).
The folder is built beside DIR and renamed into place at the end: a failed conversion leaves no
half-written dataset, and DIR is replaced only when it is empty or an earlier dataset of this format.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from aekit.data.arrays import as_labels, as_uint8_images
from aekit.data.catalog import IDX_DATASETS, MNIST_5K, find_idx_files, load_dataset
from aekit.data.idx import read_idx
from aekit.data.images import check_resizable, is_image_folder, is_image_shape
from aekit.data.inputs import ZIP_ERRORS, read_npz
from aekit.data.npyfolder import is_npy_folder
from aekit.data.sources import Source, array_source, idx_source, image_folder, npz_source
from aekit.data.tables import is_table
from aekit.errors import DataError
from aekit.fileio import check_parent_writable, temporary_name
from aekit.rundir import locked_beside

Parts = dict[str, "Source | np.ndarray | None"]  # file name in DIR -> images (streamed) or labels


def convert(src: str, dest: str | os.PathLike, data_dir=None, download: bool | None = None,
            image_size: tuple[int, int] | None = None) -> str:
    """Write SRC as a dataset folder at ``dest`` (an image folder's images resized to ``image_size``, width and
    height, when given); returns a one-line summary."""
    dest = Path(dest)
    check_target(dest)  # before any work
    check_resizable(src, image_size)
    with locked_beside(dest, "DIR"):  # a second convert into DIR fails at once
        parts = {name: part for name, part in open_parts(src, data_dir, download, image_size).items() if part is not None}
        check_parts(parts)
        with staged_folder(dest) as tmp:
            for name, part in parts.items():
                if isinstance(part, Source):
                    write_images(tmp / name, part)
                else:
                    np.save(tmp / name, part)
    sizes = ", ".join(f"{name} {' x '.join(map(str, part.shape))}" for name, part in parts.items())
    return f"wrote {dest}: {sizes}"


def check_target(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise DataError(f"DIR {dest}: is a file; give a folder to write the dataset into")
    check_parent_writable(dest, f"DIR {dest}")
    if dest.is_dir() and any(dest.iterdir()) and not is_npy_folder(dest):
        raise DataError(f"DIR {dest}: holds files that are not a dataset of .npy files (no x_train.npy); the "
                        "conversion replaces the whole folder, so move them or choose another DIR")


def open_parts(src: str, data_dir=None, download: bool | None = None, image_size=None) -> Parts:
    """What goes into the folder, opened (headers read) but not read."""
    if src in IDX_DATASETS or src == MNIST_5K:
        data = load_dataset(src, data_dir=data_dir, download=download)
        shaped = lambda x: x.reshape(len(x), *data.image_shape)  # noqa: E731
        return {"x_train.npy": array_source(shaped(data.train.images), f"{src} train"), "y_train.npy": data.train.labels,
                "x_val.npy": array_source(shaped(data.validation.images), f"{src} validation"),
                "y_val.npy": data.validation.labels,
                "x_test.npy": array_source(shaped(data.test.images), f"{src} test"), "y_test.npy": data.test.labels}
    path = Path(src)
    if not path.exists():
        raise DataError(f"SRC {src!r}: no such dataset, file or folder; give a known name ({', '.join((*IDX_DATASETS, MNIST_5K))}), "
                        "an .npz file, a folder of IDX files or a folder of images with train/ and test/")
    if is_npy_folder(path):
        raise DataError(f"SRC {path}: is already a dataset folder of .npy files; pass it to --dataset as it is")
    if is_table(path) or path.is_dir() and ((path / "train.csv").is_file() or (path / "train.parquet").is_file()):
        raise DataError(f"SRC {path}: a table trains as it is, read into memory: pass it to --dataset (tables are not "
                        "converted to .npy folders)")
    if path.suffix == ".npz":
        return _npz_parts(path)
    if is_image_folder(path):
        parts, _, note = image_folder(path, image_size)
        if note:
            print(f"note: {note}")
        return {f"{name}.npy": part for name, part in parts.items()}
    if path.is_dir() and ((path / "train").is_dir() or (path / "test").is_dir()):
        have, lack = ("train", "test") if (path / "train").is_dir() else ("test", "train")
        raise DataError(f"SRC {path}: has a {have}/ folder but no {lack}/; a folder of images needs both train/ and "
                        "test/ (images directly inside, or in one subfolder per class)")
    if path.is_dir():
        found = find_idx_files(path)
        return {"x_train.npy": idx_source(found["train-images"]), "x_test.npy": idx_source(found["test-images"]),
                "y_train.npy": None if found["train-labels"] is None else read_idx(found["train-labels"]),
                "y_test.npy": None if found["test-labels"] is None else read_idx(found["test-labels"])}
    raise DataError(f"SRC {path}: not a source aekit converts; expected a dataset name, an .npz file, a folder of "
                    "IDX files or a folder of images with train/ and test/ subfolders")


def _npz_parts(path: Path) -> Parts:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [m.removesuffix(".npy") for m in archive.namelist()]
    except ZIP_ERRORS as e:
        raise DataError(f"{path}: not a readable .npz archive ({type(e).__name__}: {e}); re-create or re-copy it") from None
    missing = [k for k in ("x_train", "x_test") if k not in names]
    if missing:
        raise DataError(f"{path}: .npz lacks {', '.join(missing)}; it has {sorted(names)}; expected x_train, x_test "
                        "and optionally y_train, y_test")
    labels = read_npz(path, lambda have: [k for k in ("y_train", "y_test") if k in have])
    return {"x_train.npy": npz_source(path, "x_train"), "y_train.npy": labels.get("y_train"),
            "x_test.npy": npz_source(path, "x_test"), "y_test.npy": labels.get("y_test")}


def check_parts(parts: Parts) -> None:
    """Shapes that belong together, checked from the headers before anything is written."""
    images = {name: part for name, part in parts.items() if isinstance(part, Source)}
    for name, part in images.items():
        if len(part.shape) < 2 or part.shape[0] == 0 or math.prod(part.shape[1:]) == 0:
            raise DataError(f"{part.what}: expected non-empty images (N, H, W) or (N, D), got shape {part.shape}")
    width = {name: math.prod(part.shape[1:]) for name, part in images.items()}
    if len(set(width.values())) > 1:
        raise DataError(f"images differ in size between splits ({', '.join(f'{n}: {w} values' for n, w in width.items())}); "
                        "all splits must have the same image size")
    for name in [n for n in parts if n.startswith("y_")]:
        x = images[f"x{name[1:]}"]
        parts[name] = as_labels(parts[name], x.shape[0], f"{x.what} labels ({name})")


def write_images(path: Path, src: Source) -> None:
    """``src`` as a uint8 .npy file, (N, H, W), (N, H, W, C) for colour (C of 1, 3 or 4) or (N, D), written a chunk
    at a time."""
    tail = tuple(src.shape[1:]) if len(src.shape) <= 3 or is_image_shape(src.shape[1:]) else (math.prod(src.shape[1:]),)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
              "shape": (src.shape[0], *tail)}
    written = 0
    with open(path, "wb") as f:
        np.lib.format.write_array_header_2_0(f, header)
        for chunk in src.chunks():
            rows = as_uint8_images(chunk, f"{src.what} rows {written}..{written + len(chunk) - 1}")
            f.write(np.ascontiguousarray(rows).data)
            written += len(chunk)
    if written != src.shape[0]:
        raise DataError(f"{src.what}: {written} rows read, but its header says {src.shape[0]}; re-create or re-copy it")


@contextlib.contextmanager
def staged_folder(dest: Path) -> Iterator[Path]:
    """An empty folder beside ``dest`` that replaces it whole on success, and is removed on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(temporary_name(dest.name, "tmp"))
    tmp.mkdir()
    try:
        yield tmp
        check_target(dest)  # again: the folder may have changed meanwhile
        old = dest.with_name(temporary_name(dest.name, "old")) if dest.exists() else None
        if old is not None:
            os.replace(dest, old)
        try:
            os.replace(tmp, dest)
        except BaseException:
            if old is not None:
                os.replace(old, dest)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
