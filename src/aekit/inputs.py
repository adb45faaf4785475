"""Read the arrays that ``aekit encode / reconstruct / score`` take: .npy, .npz, IDX, or a folder of PNGs.

Every reader returns (N, D) data (uint8 images, or floats used as they are) and the image shape.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .errors import DataError
from .idx import read_idx

NPZ_KEYS = ("x", "x_test", "x_train", "X", "images")


def _flat(x: np.ndarray, what: str) -> tuple[np.ndarray, tuple[int, ...]]:
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim < 2 or len(x) == 0 or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{what}: expected a non-empty numeric array (N, D) or (N, H, W), got {x.dtype} {x.shape}")
    shape = tuple(x.shape[1:])
    flat = x.reshape(len(x), -1)
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        shape = (side, side) if side * side == shape[0] else shape
    if flat.dtype != np.uint8:
        flat = flat.astype(np.float32)
        if not np.isfinite(flat).all():
            raise DataError(f"{what}: contains NaN or infinite values")
    return flat, shape


def load_input(path: str | Path, key: str | None = None) -> tuple[np.ndarray, tuple[int, ...]]:
    """(N, D) data and its image shape from ``path``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"INPUT {path}: no such file or folder; expected .npy, .npz, an IDX file or a folder of .png images")
    if path.is_dir():
        return _load_pngs(path)
    if path.suffix == ".npy":
        try:
            return _flat(np.load(path, allow_pickle=False), str(path))
        except ValueError as e:
            raise DataError(f"{path}: cannot read as .npy ({e})") from None
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                names = list(z.files)
                chosen = key or next((k for k in NPZ_KEYS if k in names), names[0] if len(names) == 1 else None)
                if chosen is None or chosen not in names:
                    raise DataError(f"{path}: choose an array with --key; it has {names}, and none is named {', '.join(NPZ_KEYS)}")
                return _flat(z[chosen], f"{path}[{chosen}]")
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: cannot read as .npz ({e})") from None
    x = read_idx(path)  # anything else must be IDX (raw or gzipped); read_idx names what is wrong
    return _flat(x, str(path))


def _load_pngs(folder: Path) -> tuple[np.ndarray, tuple[int, ...]]:
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise DataError(f"{folder}: folder holds no .png images")
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                images.append(np.asarray(im.convert("L"), dtype=np.uint8))
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{f}: not a readable PNG image ({e})") from None
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        raise DataError(f"{folder}: images differ in size {sorted(sizes)}; all must have the model's size")
    return _flat(np.stack(images), str(folder))
