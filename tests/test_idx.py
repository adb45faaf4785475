import gzip
import struct

import numpy as np
import pytest

from aekit.data.idx import encode_idx, parse_idx, read_idx, write_idx
from aekit.errors import DataError


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path, dtype, suffix):
    arr = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    if dtype == "uint8":
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / f"a-idx3-ubyte{suffix}"
    write_idx(path, arr)
    back = read_idx(path)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    assert not list(tmp_path.glob("*.part"))


def test_gzip_detected_by_content_not_name(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    path = tmp_path / "labels-idx1-ubyte"  # no .gz suffix, but gzipped bytes
    path.write_bytes(gzip.compress(encode_idx(arr)))
    np.testing.assert_array_equal(read_idx(path), arr)


def test_header_is_big_endian():
    data = encode_idx(np.zeros((2, 3), dtype=np.int32))
    assert data[:4] == b"\x00\x00\x0c\x02"
    assert struct.unpack(">2I", data[4:12]) == (2, 3)


def test_bad_magic():
    data = b"\x01\x02" + encode_idx(np.zeros(3, np.uint8))[2:]
    with pytest.raises(DataError, match=r"x\.idx: bad IDX magic number 0x0102.*first two bytes must be zero"):
        parse_idx(data, "x.idx")


def test_unknown_dtype_code():
    data = bytearray(encode_idx(np.zeros(3, np.uint8)))
    data[2] = 0x42
    with pytest.raises(DataError, match=r"unknown IDX dtype code 0x42; allowed: 0x08, 0x09"):
        parse_idx(bytes(data), "x.idx")


def test_truncated_data():
    data = encode_idx(np.zeros((4, 5), np.uint8))[:-3]
    with pytest.raises(DataError, match=r"IDX file truncated: header says shape \(4, 5\) of uint8 \(32 bytes\), file has 29 bytes"):
        parse_idx(data, "x.idx")


def test_trailing_bytes():
    with pytest.raises(DataError, match="IDX file has trailing bytes"):
        parse_idx(encode_idx(np.zeros(4, np.uint8)) + b"\x00", "x.idx")


def test_truncated_header():
    data = encode_idx(np.zeros((4, 5), np.uint8))[:9]
    with pytest.raises(DataError, match=r"truncated IDX header: 2 dimensions need 12 bytes, file has 9"):
        parse_idx(data, "x.idx")


def test_too_short_and_zero_dims():
    with pytest.raises(DataError, match="shorter than the 4-byte header"):
        parse_idx(b"\x00\x00", "x.idx")
    with pytest.raises(DataError, match="declares 0 dimensions"):
        parse_idx(b"\x00\x00\x08\x00", "x.idx")


def test_wrong_number_of_dims(tmp_path):
    path = tmp_path / "labels.idx"
    write_idx(path, np.zeros((3, 2), np.uint8))
    with pytest.raises(DataError, match=r"labels\.idx: IDX file has 2 dimensions \(3, 2\); expected 1"):
        read_idx(path, ndim=1)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "a.gz"
    good = gzip.compress(encode_idx(np.arange(100, dtype=np.uint8)))
    path.write_bytes(good[:-6])
    with pytest.raises(DataError, match=r"a\.gz: corrupt gzip file .*delete it and re-download"):
        read_idx(path)


def test_write_refuses_unsupported_dtype(tmp_path):
    with pytest.raises(DataError, match="cannot write dtype uint16 as IDX"):
        write_idx(tmp_path / "a.idx", np.zeros(3, np.uint16))
    assert not list(tmp_path.iterdir())
