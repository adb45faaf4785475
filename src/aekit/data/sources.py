"""Arrays read a chunk of rows at a time, from an IDX file, an .npz member, PNG files or memory.

``aekit data convert`` writes datasets bigger than memory, so it never holds a whole image array:
each :class:`Source` knows its shape from a header alone and yields its rows in order, in chunks.
Every reader raises :class:`~aekit.errors.DataError` naming the file when the data disagrees with
its header (truncated, trailing bytes).
"""

from __future__ import annotations

import gzip
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

import numpy as np

from aekit.data.idx import DTYPES, GZIP_MAGIC, MAX_DEFLATE_RATIO
from aekit.data.images import folder_mode, list_split, read_image
from aekit.data.inputs import ZIP_ERRORS, read_npy_header
from aekit.errors import DataError

CHUNK_BYTES = 16 << 20  # about 16 MB of rows per chunk


@dataclass
class Source:
    """``shape`` and ``dtype`` as the header says; ``chunks()`` yields consecutive rows, all of them."""

    what: str  # the file (and member), for messages
    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: Callable[[], Iterator[np.ndarray]]


def rows_per_chunk(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return max(1, CHUNK_BYTES // max(1, math.prod(shape[1:]) * dtype.itemsize))


def array_source(x: np.ndarray, what: str) -> Source:
    """An array already in memory (a named dataset's split), in chunks like the others."""
    step = rows_per_chunk(x.shape, x.dtype)
    return Source(what, tuple(x.shape), x.dtype, lambda: (x[i:i + step] for i in range(0, len(x), step)))


def _rows_from_stream(open_data: Callable[[], IO[bytes]], what: str, shape: tuple[int, ...], dtype: np.dtype,
                      check_end: bool) -> Iterator[np.ndarray]:
    """Read ``shape`` rows of ``dtype`` from the stream ``open_data()`` returns (positioned at the data)."""
    row_bytes = math.prod(shape[1:]) * dtype.itemsize
    step = rows_per_chunk(shape, dtype)
    with open_data() as f:
        for start in range(0, shape[0], step):
            rows = min(step, shape[0] - start)
            try:
                raw = f.read(rows * row_bytes)
            except (EOFError, zlib.error, OSError) as e:  # gzip: "ended before the end-of-stream marker"
                raise DataError(f"{what}: corrupt or truncated compressed data near row {start} ({e}); "
                                "re-create or re-copy the file") from None
            if len(raw) < rows * row_bytes:
                raise DataError(f"{what}: truncated: its header says {shape[0]} rows of {row_bytes} bytes, the "
                                f"data ends in row {start + len(raw) // max(1, row_bytes)}; re-create or re-copy the file")
            yield np.frombuffer(raw, dtype=dtype).reshape(rows, *shape[1:])
        if check_end and f.read(1):
            raise DataError(f"{what}: has trailing bytes after the {shape[0]} rows its header declares; "
                            "the file is damaged: re-create or re-copy it")


def idx_source(path: Path) -> Source:
    """An IDX file (raw or gzipped, by content); its header is read and checked, its data streamed."""
    try:
        with open(path, "rb") as f:
            gz = f.read(2) == GZIP_MAGIC
        size = path.stat().st_size
        opener = (lambda: gzip.open(path, "rb")) if gz else (lambda: open(path, "rb"))
        with opener() as f:
            head = f.read(4)
            ndim = head[3] if len(head) == 4 else 0
            dims = f.read(4 * ndim)
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read the IDX file ({e}); re-create or re-copy it") from None
    if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in DTYPES or ndim == 0 or len(dims) < 4 * ndim:
        raise DataError(f"{path}: not an IDX file: bad header 0x{head.hex()}; expected two zero bytes, a dtype code "
                        f"({', '.join(f'0x{c:02X}' for c in DTYPES)}) and the number of dimensions")
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = DTYPES[head[2]]
    offset, needed = 4 + 4 * ndim, math.prod(shape) * dtype.itemsize
    if gz and needed > MAX_DEFLATE_RATIO * size or not gz and offset + needed != size:
        raise DataError(f"{path}: IDX header says shape {shape} of {dtype.name} ({offset + needed} bytes), but the file "
                        f"has {size} bytes{' (gzipped)' if gz else ''}; re-create or re-copy it")

    def open_data() -> IO[bytes]:
        f = opener()
        f.read(offset)
        return f

    native = dtype.newbyteorder("=")
    return Source(str(path), shape, native,
                  lambda: (c.astype(native) for c in _rows_from_stream(open_data, str(path), shape, dtype, gz)))


def npz_source(path: Path, member: str) -> Source:
    """One array of an .npz archive, streamed from the (stored or deflated) member."""
    what = f"{path}[{member}]"

    def open_member():
        archive = zipfile.ZipFile(path)
        info = archive.getinfo(f"{member}.npy")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise DataError(f"{what}: compression method {info.compress_type} is not one numpy.savez writes; "
                            "re-create the file with numpy.savez")
        return archive, info, archive.open(info)

    try:
        archive, info, f = open_member()
        with archive, f:
            shape, fortran, dtype, offset = read_npy_header(f, info.file_size, what)
    except DataError:  # a ValueError too, but already the right message
        raise
    except ZIP_ERRORS as e:
        raise DataError(f"{path}: not a readable .npz archive ({type(e).__name__}: {e}); re-create or re-copy it") from None
    if len(shape) == 0 or dtype.hasobject:
        raise DataError(f"{what}: expected a numeric array (N, ...), got {dtype} {shape}")
    if fortran and math.prod(shape[1:]) > 1:
        raise DataError(f"{what}: the array is stored in Fortran order, so it cannot be read a row at a time; "
                        "save it with numpy.savez(..., x_train=numpy.ascontiguousarray(x_train))")

    class _Member:  # the member stream at its data, closing the archive with it
        def __enter__(self):
            self.archive, _, self.f = open_member()
            self.f.read(offset)
            return self.f

        def __exit__(self, *exc):
            self.f.close()
            self.archive.close()

    def chunks():
        try:
            yield from _rows_from_stream(_Member, what, tuple(shape), dtype, check_end=False)
        except DataError:
            raise
        except ZIP_ERRORS as e:
            raise DataError(f"{what}: damaged .npz member ({type(e).__name__}: {e}); re-create or re-copy it") from None

    return Source(what, tuple(shape), dtype, chunks)


def image_source(files: list[Path], what: str, mode: str = "L", size: tuple[int, int] | None = None) -> Source:
    """Image files as (N, H, W) gray levels (``mode="L"``) or (N, H, W, 3) RGB, decoded a chunk at a time; all must
    have the first one's size (:func:`aekit.data.images.folder_mode` checks that from the headers), or are resized
    to ``size`` (width, height)."""
    first = read_image(files[0], mode, size)
    shape = (len(files), *first.shape)
    step = rows_per_chunk(shape, first.dtype)

    def chunks():
        for i in range(0, len(files), step):
            images = [read_image(f, mode, size) for f in files[i:i + step]]
            for f, im in zip(files[i:i + step], images):
                if im.shape != first.shape:
                    raise DataError(f"{f}: a {im.shape[1]}x{im.shape[0]} image, but {files[0].name} is "
                                    f"{first.shape[1]}x{first.shape[0]}; all images must have the same size")
            yield np.stack(images)

    return Source(what, shape, first.dtype, chunks)


def image_folder(path: Path, size: tuple[int, int] | None = None) -> tuple[dict, tuple[str, ...], str]:
    """A dataset folder of image files (``train/`` and ``test/``, each flat or in class subfolders): the sources of
    its images and its labels (``x_train``, ``y_train``, ``x_test``, ``y_test``), the class names, and what was
    done to the colours (:func:`aekit.data.images.folder_mode`). Both splits get one colour mode and one size."""
    train, y_train, train_classes = list_split(path / "train")
    test, y_test, test_classes = list_split(path / "test")
    if train_classes and test_classes and train_classes != test_classes:  # one unlabeled split is allowed
        raise DataError(f"{path}: train/ and test/ hold different class subfolders ({', '.join(train_classes)} and "
                        f"{', '.join(test_classes)}); the sorted names are the labels, so they must be the same")
    mode, note = folder_mode(train + test, resized=size is not None)
    parts = {"x_train": image_source(train, str(path / "train"), mode, size), "y_train": y_train,
             "x_test": image_source(test, str(path / "test"), mode, size), "y_test": y_test}
    if size is not None:
        note = "; ".join(filter(None, [note, f"resized to {size[0]}x{size[1]}"]))
    return parts, train_classes, note
