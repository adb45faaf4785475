"""Read the arrays that ``aekit encode / reconstruct / score`` take: .npy, .npz, IDX, or a folder of images.

Every reader returns (N, D) data (uint8 images, or floats used as they are) and the image shape.
"""

from __future__ import annotations

import math
import tokenize
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import IO, Callable

import numpy as np

from aekit.data.idx import MAX_DEFLATE_RATIO, read_idx
from aekit.data.images import SUFFIXES, folder_mode, is_image, read_image
from aekit.errors import DataError

NPZ_KEYS = ("x", "x_test", "x_train", "X", "images")
# What zipfile and zlib raise on a damaged archive (RuntimeError: an encrypted member).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError, ValueError)


def _flat(x: np.ndarray, what: str) -> tuple[np.ndarray, tuple[int, ...]]:
    if x.ndim == 1:
        x = x[None, :]
    numeric = (np.issubdtype(x.dtype, np.number) and not np.issubdtype(x.dtype, np.complexfloating)) or x.dtype == bool
    if x.ndim < 2 or len(x) == 0 or not numeric:
        raise DataError(f"{what}: expected a non-empty numeric array (N, D) or (N, H, W), got {x.dtype} {x.shape}")
    shape = tuple(x.shape[1:])
    flat = x.reshape(len(x), -1)
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        shape = (side, side) if side * side == shape[0] else shape
    if flat.dtype != np.uint8:
        with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 become inf, refused below
            flat = flat.astype(np.float32)
        bad = ~np.isfinite(flat)
        if bad.any():
            raise DataError(f"{what}: {int(bad.sum())} NaN or infinite values, the first in row "
                            f"{int(bad.any(axis=1).argmax())}; expected finite numbers")
    return flat, shape


def load_input(path: str | Path, key: str | None = None) -> tuple[np.ndarray, tuple[int, ...]]:
    """(N, D) data and its image shape from ``path``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"INPUT {path}: no such file or folder; expected .npy, .npz, an IDX file or a folder of images")
    if path.is_dir():
        return _load_images(path)
    if path.suffix == ".npy":
        return _flat(read_npy(path), str(path))
    if path.suffix == ".npz":
        def choose(names: list[str]) -> list[str]:
            chosen = key or next((k for k in NPZ_KEYS if k in names), names[0] if len(names) == 1 else None)
            if chosen is None or chosen not in names:
                raise DataError(f"{path}: choose an array with --key; it has {names}, "
                                f"and none is named {', '.join(NPZ_KEYS)}")
            return [chosen]

        chosen, x = next(iter(read_npz(path, choose).items()))  # the one array chosen
        return _flat(x, f"{path}[{chosen}]")
    x = read_idx(path)  # anything else must be IDX (raw or gzipped); read_idx names what is wrong
    return _flat(x, str(path))


def read_npy(path: Path) -> np.ndarray:
    """The array in an .npy file; a damaged one is a DataError that names it."""
    try:
        with open(path, "rb") as f:
            return _read_array(f, path.stat().st_size, str(path))
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e}); check that it is a readable .npy file") from None


def read_npz(path: Path, choose: Callable[[list[str]], list[str]] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz file (those ``choose(names)`` picks, else all); a damaged one is a DataError."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {m.removesuffix(".npy"): m for m in archive.namelist()}
            arrays = {}
            for name in (choose(list(members)) if choose else members):
                info = archive.getinfo(members[name])
                ratio = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: MAX_DEFLATE_RATIO}.get(info.compress_type)
                if ratio is None:  # what numpy never writes cannot be bounded below, so it is not read
                    raise DataError(f"{path}[{name}]: compression method {info.compress_type} is not one numpy.savez "
                                    "writes (stored or deflated); re-create the file with numpy.savez")
                if info.file_size > ratio * max(info.compress_size, 1):
                    raise DataError(f"{path}[{name}]: damaged .npz: the archive says {info.file_size} bytes, more than "
                                    f"{info.compress_size} stored bytes can hold; re-create or re-copy the file")
                with archive.open(info) as f:
                    arrays[name] = _read_array(f, info.file_size, f"{path}[{name}]")
            return arrays
    except DataError:
        raise
    except ZIP_ERRORS as e:
        raise DataError(f"{path}: not a readable .npz archive ({type(e).__name__}: {e}); it may be truncated "
                        "(a partial download or copy): re-create or re-copy it, e.g. with numpy.savez") from None


def _read_array(f: IO[bytes], size: int, what: str) -> np.ndarray:
    """One .npy stream of ``size`` bytes; its header is checked against ``size`` before any array is allocated."""
    read_npy_header(f, size, what)
    try:
        with warnings.catch_warnings():  # read_array parses the header again: no warnings about it either
            warnings.simplefilter("ignore")
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)
    except (ValueError, TypeError, EOFError, OverflowError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{what}: damaged .npy array ({e}); re-create or re-copy the file") from None


def read_npy_header(f: IO[bytes], size: int, what: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, data offset) of the .npy stream ``f`` of ``size`` bytes, reading only its
    header; a damaged or truncated one is a DataError naming ``what``. ``f`` is left at the data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
    except ValueError:
        raise DataError(f"{what}: not a NumPy .npy array (it does not start with \\x93NUMPY); "
                        "save arrays with numpy.save or numpy.savez") from None
    if version not in ((1, 0), (2, 0)):
        raise DataError(f"{what}: .npy format version {version[0]}.{version[1]} is not one numpy writes for numeric "
                        "arrays (1.0 or 2.0); the file is damaged")
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    try:
        with warnings.catch_warnings():  # numpy evaluates the header as a Python literal: no warnings about it
            warnings.simplefilter("ignore")
            shape, fortran, dtype = read_header(f)
    except (ValueError, TypeError, EOFError, OverflowError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile,
            zlib.error) as e:  # numpy parses the header with tokenize and ast: a damaged one can raise their errors
        raise DataError(f"{what}: damaged .npy array ({e}); re-create or re-copy the file") from None
    if dtype.hasobject:  # pickled Python objects (np.save of a list of arrays, say): never unpickled
        raise DataError(f"{what}: the array holds Python objects (dtype {dtype}), not numbers; aekit reads numeric "
                        "arrays only: save one numeric array (numpy.stack of the images, numpy.asarray(y, dtype=int) "
                        "of the labels)")
    offset = f.tell()
    needed = offset + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if needed > size:
        raise DataError(f"{what}: truncated .npy array: its header says {dtype} {shape}, {needed} bytes, but "
                        f"there are {size}; re-create or re-copy the file (a partial download?)")
    return shape, fortran, dtype, offset


def _load_images(folder: Path) -> tuple[np.ndarray, tuple[int, ...]]:
    files = sorted(p for p in folder.iterdir() if is_image(p))
    if not files:
        raise DataError(f"{folder}: folder holds no images ({', '.join(SUFFIXES)})")
    mode, _ = folder_mode(files)  # one size for all, checked from the headers
    return _flat(np.stack([read_image(f, mode) for f in files]), str(folder))
