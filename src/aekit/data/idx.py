"""Read and write IDX files, the format of MNIST, Fashion-MNIST and KMNIST.

Pure functions: bytes or a path in, a NumPy array out (and back). Every reader checks
the magic number, the dtype code, the number of dimensions and that the byte count
matches the header, and says which of them failed.

Format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a dtype code, the number
of dimensions ``d``; then ``d`` big-endian uint32 sizes; then the data, big-endian.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from aekit.errors import DataError
from aekit.fileio import atomic_open

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
MAX_DEFLATE_RATIO = 1032  # DEFLATE expands at most 1032:1, so a gzip file cannot hold more


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
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: a damaged header cannot overflow
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(
            f"{name}: IDX file {what}: header says shape {shape} of {dtype.name} "
            f"({expected} bytes), file has {len(data)} bytes; delete it and re-download or re-copy it"
        )
    try:
        arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    except ValueError:  # an empty array whose other sizes NumPy cannot index, e.g. (0, 2**32 - 1, 2**32 - 1, ...)
        raise DataError(f"{name}: IDX header shape {shape} is not an array NumPy can hold; the file is damaged: "
                        "re-download or re-copy it") from None
    return arr.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def read_bytes(path: str | os.PathLike) -> bytes:
    """Read an IDX file, decompressing it when it is gzip (by content, not by name).

    A gzip file is decompressed only as far as its IDX header says (plus one byte, to detect trailing
    data), so a damaged header or a decompression bomb cannot fill the memory; where the header itself
    is unusable, only its bytes come back and :func:`parse_idx` says what is wrong with them.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e}); check that it is a readable file") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            head = _read_up_to(f, 4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in DTYPES or head[3] == 0:
                return head
            head += _read_up_to(f, 4 * head[3])
            if len(head) < 4 + 4 * head[3]:
                return head
            claimed = math.prod(struct.unpack(f">{head[3]}I", head[4:])) * DTYPES[head[2]].itemsize
            if claimed > MAX_DEFLATE_RATIO * len(raw):
                raise DataError(
                    f"{path}: damaged IDX header: it claims {len(head) + claimed} bytes, more than a gzip file of "
                    f"{len(raw)} bytes can hold; delete it and re-download or re-copy it"
                )
            return head + _read_up_to(f, claimed + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip file ({e}); delete it and re-download or re-copy it") from None


def _read_up_to(f, n: int) -> bytes:
    """At most ``n`` bytes of ``f``: fewer only at its end."""
    chunks, left = [], n
    while left > 0:
        chunk = f.read(min(left, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


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
