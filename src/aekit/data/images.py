"""Image files (PNG, JPEG and whatever else Pillow reads), and folders of them, as uint8 arrays.

A folder of images is one split: the images directly inside it (unlabeled), or in one subfolder per class,
whose sorted names become the labels 0..K-1. Every image of a folder must have the first one's size. The
folder's colour mode is decided once from the files' headers: gray levels (H, W) when every image is
grayscale, else RGB (H, W, 3) for all of them (an alpha channel is dropped), and :func:`folder_mode` says so.
"""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import numpy as np

from aekit.errors import DataError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MAX_PIXELS = 1 << 24  # per image; a damaged header can claim 4 billion, which Pillow would allocate
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # Pillow's modes without colour


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in SUFFIXES and not path.name.startswith(".")


def _open(f: Path):
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # too large is refused by the caller
        return Image.open(f)  # the header only: size and mode are known before any pixel is decoded


def _errors():
    from PIL import Image, UnidentifiedImageError

    # Pillow reports some damaged chunks as SyntaxError, truncated JPEGs as OSError
    return (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError, zlib.error)


def header(f: Path) -> tuple[tuple[int, int], str]:
    """((width, height), mode) of an image file, reading its header only."""
    try:
        with _open(f) as im:
            size, mode = im.size, im.mode
    except _errors() as e:
        raise DataError(f"{f}: not a readable image ({e}); re-create or re-copy it") from None
    if size[0] * size[1] > MAX_PIXELS:
        raise DataError(f"{f}: a {size[0]}x{size[1]} image is larger than aekit reads ({MAX_PIXELS:,} pixels)")
    return size, mode


def read_image(f: Path, mode: str = "L", size: tuple[int, int] | None = None) -> np.ndarray:
    """One image as uint8: (H, W) gray levels for ``mode="L"``, (H, W, 3) for ``"RGB"``; resized to ``size``
    (width, height) with bilinear filtering (antialiased when shrinking) when given."""
    header(f)
    try:
        with _open(f) as im:
            im = im.convert(mode)
            if size is not None and im.size != tuple(size):
                from PIL import Image

                im = im.resize(tuple(size), Image.Resampling.BILINEAR, reducing_gap=None)
            return np.asarray(im, dtype=np.uint8)
    except _errors() as e:
        raise DataError(f"{f}: not a readable image ({e}); re-create or re-copy it") from None


def folder_mode(files: list[Path], resized: bool = False) -> tuple[str, str]:
    """The colour mode for all of ``files`` ("L" when every image is grayscale, else "RGB") and what reading them
    in it does to their colours ('' when nothing), from one pass over the headers; unless they are ``resized``,
    every size must be the first one's (the first file that differs is named)."""
    first_size, _ = header(files[0])
    modes: dict[str, int] = {}
    for f in files:
        size, mode = header(f)
        if size != first_size and not resized:
            raise DataError(f"{f}: a {size[0]}x{size[1]} image, but {files[0].name} is {first_size[0]}x{first_size[1]}; "
                            "all images must have the same size: pass --image-size WxH to resize them")
        modes[mode] = modes.get(mode, 0) + 1
    if all(m in GRAY_MODES for m in modes):
        return "L", ""
    gray = sum(n for m, n in modes.items() if m in GRAY_MODES)
    alpha = sum(n for m, n in modes.items() if m in ("RGBA", "LA", "PA"))
    parts = ([f"{gray} grayscale image(s) converted to RGB"] if gray else []) + (
        [f"the alpha channel of {alpha} image(s) dropped"] if alpha else [])
    return "RGB", "; ".join(parts)


def list_split(folder: Path) -> tuple[list[Path], np.ndarray | None, tuple[str, ...]]:
    """The image files of one split folder, their labels (None when the images are directly inside) and the
    class names (the sorted subfolder names)."""
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if is_image(p))
    if files:
        return files, None, ()
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    per_class = [sorted(p for p in c.iterdir() if is_image(p)) for c in classes]
    files = [f for group in per_class for f in group]
    if not files:
        raise DataError(f"{folder}: no images ({', '.join(SUFFIXES)}), directly or in class subfolders")
    labels = np.concatenate([np.full(len(group), k, np.int64) for k, group in enumerate(per_class)])
    return files, labels, tuple(c.name for c in classes)


def is_image_shape(shape: tuple[int, ...]) -> bool:
    """Whether ``shape`` (one image's) is (H, W) or (H, W, C) with 1 to 4 channels, channels last."""
    return len(shape) == 2 or (len(shape) == 3 and 1 <= shape[2] <= 4)


def channels(shape: tuple[int, ...]) -> int:
    """Channels of one image of ``shape``: (H, W) is one, (H, W, C) is C."""
    return shape[2] if len(shape) == 3 else 1


def shift_fits(shape: tuple[int, ...], shift: int) -> bool:
    """Whether images of ``shape`` (gray or channels last) can be moved by ``shift`` pixels."""
    return is_image_shape(tuple(shape)) and shift < min(shape[:2])


def check_resizable(source: str | Path, size: tuple[int, int] | None) -> None:
    """``--image-size`` is for folders of image files only: refuse it, before any work, for anything else."""
    if size is not None and not is_image_folder(Path(source)):
        raise DataError(f"--image-size resizes a folder of image files (train/ and test/); {str(source)!r} is not one")


def is_image_folder(path: Path) -> bool:
    """A dataset of image files: ``train/`` and ``test/`` folders."""
    return path.is_dir() and (path / "train").is_dir() and (path / "test").is_dir() and not (path / "x_train.npy").exists()


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"64x48"`` as (width, height); None stays None."""
    if text is None:
        return None
    w, sep, h = str(text).lower().partition("x")
    if not sep or not (w.strip().isdigit() and h.strip().isdigit()) or not 1 <= int(w) * int(h) <= MAX_PIXELS:
        raise DataError(f"--image-size {text!r}: expected WIDTHxHEIGHT in pixels, like 64x64")
    return int(w), int(h)
