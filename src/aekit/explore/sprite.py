"""Images for the page: one grayscale PNG sprite (a grid of tiles), as a data URI.

Why one sprite rather than an array in the JSON: PNG's deflate with per-row filters packs 10,000
Fashion-MNIST images into a few MB, the browser decodes it natively (no JavaScript inflate), and each
thumbnail is then one ``drawImage`` from a rectangle of it.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib

import numpy as np


def as_pixels(x: np.ndarray) -> np.ndarray:
    """(N, D) uint8 pixels from the network's [0, 1] space (uint8 stays as it is)."""
    if x.dtype == np.uint8:
        return x
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def tile_shape(image_shape: tuple[int, ...], n_features: int) -> tuple[int, int]:
    """(height, width) of one image; data that are not 2-D images are drawn as one row of pixels."""
    if len(image_shape) == 2 and image_shape[0] * image_shape[1] == n_features:
        return int(image_shape[0]), int(image_shape[1])
    return 1, int(n_features)


def sprite(pixels: np.ndarray, tile: tuple[int, int]) -> tuple[str, int]:
    """A PNG data URI of ``pixels`` (N, h*w) laid out row by row in a near-square grid, and its column count."""
    n = len(pixels)
    h, w = tile
    cols = max(1, math.ceil(math.sqrt(n * h / w)))  # near-square in pixels
    rows = max(1, math.ceil(n / cols))
    grid = np.zeros((rows * cols, h, w), dtype=np.uint8)
    grid[:n] = pixels.reshape(n, h, w)
    sheet = grid.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)
    return "data:image/png;base64," + base64.b64encode(png_gray(sheet)).decode("ascii"), cols


def png_gray(image: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG of a (H, W) uint8 array; every row uses the 'up' filter (row minus the row
    above), which suits stacked tiles of mostly dark backgrounds better than no filter."""
    h, w = image.shape
    up = np.diff(image.astype(np.int16), axis=0, prepend=np.zeros((1, w), np.int16)).astype(np.uint8)
    raw = np.concatenate([np.full((h, 1), 2, np.uint8), up], axis=1).tobytes()  # filter byte 2: up

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit, grayscale, deflate, adaptive filters, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
