"""Images for the page: one PNG sprite (a grid of tiles, gray or RGB), as a data URI.

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


def tile_shape(image_shape: tuple[int, ...], n_features: int) -> tuple[int, int, int]:
    """(height, width, channels) of one image; data that are not images are drawn as one row of gray pixels."""
    if len(image_shape) in (2, 3) and math.prod(image_shape) == n_features:
        return int(image_shape[0]), int(image_shape[1]), int(image_shape[2]) if len(image_shape) == 3 else 1
    return 1, int(n_features), 1


def sprite(pixels: np.ndarray, tile: tuple[int, int, int]) -> tuple[str, int]:
    """A PNG data URI of ``pixels`` (N, h*w*c, channels last) laid out row by row in a near-square grid, and its
    column count. Gray stays gray; color is RGB (an alpha channel is left out: the page shows the colors)."""
    n = len(pixels)
    h, w, c = tile
    cols = max(1, math.ceil(math.sqrt(n * h / w)))  # near-square in pixels
    rows = max(1, math.ceil(n / cols))
    grid = np.zeros((rows * cols, h, w, c), dtype=np.uint8)
    grid[:n] = pixels.reshape(n, h, w, c)
    sheet = grid.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)
    return "data:image/png;base64," + base64.b64encode(png(sheet[..., :3] if c > 1 else sheet[..., 0])).decode("ascii"), cols


def png(image: np.ndarray) -> bytes:
    """An 8-bit PNG of a (H, W) gray or (H, W, 3) RGB uint8 array; every row uses the 'up' filter (row minus the
    row above), which suits stacked tiles of mostly dark backgrounds better than no filter."""
    h, w = image.shape[:2]
    flat = image.reshape(h, -1)
    up = np.diff(flat.astype(np.int16), axis=0, prepend=np.zeros((1, flat.shape[1]), np.int16)).astype(np.uint8)
    raw = np.concatenate([np.full((h, 1), 2, np.uint8), up], axis=1).tobytes()  # filter byte 2: up

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    colour = 2 if image.ndim == 3 else 0  # PNG colour types: 0 gray, 2 RGB
    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)  # 8-bit, deflate, adaptive filters, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
