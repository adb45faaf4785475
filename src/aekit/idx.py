"""Read and write IDX files, the format of MNIST, Fashion-MNIST and KMNIST.

Pure functions: bytes or a path in, a NumPy array out (and back). Every reader checks
the magic number, the dtype code, the number of dimensions and that the byte count
matches the header, and says which of them failed.

Format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a dtype code, the number
of dimensions ``d``; then ``d`` big-endian uint32 sizes; then the data, big-endian.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError
from .fileio import atomic_open

# IDX dtype code -> big-endian NumPy dtype.
DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in DTYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file; ``name`` is used in error messages."""
    if len(data) < 4:
        raise DataError(f"{name}: not an IDX file: {len(data)} bytes is shorter than the 4-byte header")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise DataError(
            f"{name}: bad IDX magic number 0x{data[:4].hex()}: the first two bytes must be zero; "
            "is this an IDX file (for a .gz file, keep the .gz suffix)?"
        )
    if code not in DTYPES:
        allowed = ", ".join(f"0x{c:02X}" for c in DTYPES)
        raise DataError(f"{name}: unknown IDX dtype code 0x{code:02X}; allowed: {allowed}")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header: {ndim} dimensions need {header} bytes, file has {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = DTYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(
            f"{name}: IDX file {what}: header says shape {shape} of {dtype.name} "
            f"({expected} bytes), file has {len(data)} bytes; re-download or re-copy it"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def read_bytes(path: str | os.PathLike) -> bytes:
    """Read a file, decompressing it when it is gzip (by content, not by name)."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip file ({e}); delete it and re-download or re-copy it") from None


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a native-endian array.

    ``ndim``, when given, is the number of dimensions the caller expects
    (3 for images, 1 for labels).
    """
    arr = parse_idx(read_bytes(path), name=str(path))
    if ndim is not None and arr.ndim != ndim:
        raise DataError(f"{path}: IDX file has {arr.ndim} dimensions {arr.shape}; expected {ndim}")
    return arr


def encode_idx(arr: np.ndarray) -> bytes:
    """Encode an array as IDX bytes."""
    arr = np.asarray(arr)
    native = arr.dtype.newbyteorder("=")
    if native not in _CODES:
        allowed = ", ".join(dt.newbyteorder("=").name for dt in DTYPES.values())
        raise DataError(f"cannot write dtype {arr.dtype} as IDX; allowed: {allowed}")
    if not 1 <= arr.ndim <= 255:
        raise DataError(f"cannot write a {arr.ndim}-dimensional array as IDX; allowed: 1 to 255 dimensions")
    code = _CODES[native]
    header = struct.pack(f">HBB{arr.ndim}I", 0, code, arr.ndim, *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, arr: np.ndarray) -> None:
    """Write ``arr`` as IDX, gzipped when ``path`` ends in ``.gz``; atomic."""
    data = encode_idx(arr)
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with atomic_open(path, "wb") as f:
        f.write(data)
