"""Why a sample scored as an anomaly: the part of it that carries most of its reconstruction error.

For a table, the columns (a one-hot block counts as its column); for an image, the cell of a 4 x 4 grid
(channels together); for other vectors, the single features. Each is given with its share of the sample's
squared error, so "area (62%)" means the model reconstructed that row's area far worse than the rest.
"""

from __future__ import annotations

import math

import numpy as np

from aekit.data.images import is_image_shape

GRID = 4  # an image is split into GRID x GRID cells


def _shares(parts: np.ndarray) -> np.ndarray:
    total = parts.sum(axis=1, keepdims=True)
    return parts / np.where(total > 0, total, 1.0)


def feature_shares(squared: np.ndarray, table=None) -> tuple[np.ndarray, list[str]]:
    """Each row's share of its squared differences (N, D) per column of a table (a one-hot block counts as its
    column) or per feature of other vectors, and the names of those parts."""
    squared = np.asarray(squared, dtype=np.float64)
    if table is not None:
        return _shares(table.column_errors(squared)), [c.name for c in table.columns]
    return _shares(squared), [f"feature {j}" for j in range(squared.shape[1])]


def explain(squared: np.ndarray, image_shape: tuple[int, ...], table=None, top: int = 3) -> list[str]:
    """One line per row of ``squared`` (N, D), the per-feature squared differences behind its score (from its
    reconstruction, or from its nearest training samples): the columns or the image region that carry most."""
    squared = np.asarray(squared, dtype=np.float64)
    if table is None and is_image_shape(image_shape):
        h, w = image_shape[:2]
        maps = squared.reshape(len(squared), h, w, -1).sum(axis=3)
        ch, cw = math.ceil(h / GRID), math.ceil(w / GRID)
        cells = [(y, x) for y in range(0, h, ch) for x in range(0, w, cw)]
        parts = np.stack([maps[:, y:y + ch, x:x + cw].sum(axis=(1, 2)) for y, x in cells], axis=1)
        lines = []
        for s in _shares(parts):
            y, x = cells[int(s.argmax())]
            lines.append(f"pixels x {x}-{min(x + cw, w) - 1}, y {y}-{min(y + ch, h) - 1} ({100 * s.max():.0f}%)")
        return lines
    shares, names = feature_shares(squared, table)
    return ["; ".join(f"{names[j]} ({100 * s[j]:.0f}%)" for j in np.argsort(-s, kind="stable")[:top]) for s in shares]
