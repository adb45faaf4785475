"""Build the page: codes, errors and a 2-D map of a :class:`PageSource`, its images as a sprite, its decoder
as ops, all inlined into ``template.html`` with ``page.css``, ``decoder.js`` and ``page.js``."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from importlib import resources

import numpy as np
import torch

from aekit.errors import ConfigError
from aekit.explore.decoder import decoder_program
from aekit.explore.maps import project
from aekit.explore.pack import Packer
from aekit.explore.source import PageSource
from aekit.explore.sprite import as_pixels, sprite, tile_shape
from aekit.training.evaluate import encode, reconstruction_error

FLOAT32_CODES_MAX_BYTES = 2_000_000  # above this, codes are stored as float16 (half the size; rel. error 5e-4)
PAGE_BUDGET_BYTES = 10_000_000  # the page for 10,000 points stays under this: decoder weights go float16 past it
PAGE_OVERHEAD_BYTES = 40_000  # template, CSS, JS and the JSON around the data
WEIGHTS = ("auto", "float32", "float16")


def as_in_page(model: torch.nn.Module, weights: str) -> torch.nn.Module:
    """The model whose decoder the page runs: ``model`` itself, or with float16 weights a copy whose
    weights and buffers are rounded to float16 (and computed in float32, as the page does)."""
    if weights != "float16":
        return model
    import copy

    rounded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for t in [*rounded.parameters(), *rounded.buffers()]:
            if t.is_floating_point():
                t.copy_(t.half().float())
    return rounded


def float16_weights_error(model: torch.nn.Module, codes: np.ndarray) -> float:
    """The largest change in a decoded pixel when the decoder's weights are rounded to float16, on ``codes``
    (what the page shows is then that far from torch's reconstruction)."""
    z = torch.as_tensor(codes[:256], dtype=torch.float32)
    rounded = as_in_page(model, "float16")
    model.eval()
    with torch.no_grad():
        return float((rounded.decode(z) - model.decode(z)).abs().max())


def choose_points(n: int, max_points: int | None, seed: int) -> np.ndarray:
    """All indices, or ``max_points`` of them drawn at random (sorted), reproducibly from ``seed``."""
    if max_points is not None and max_points < 1:
        raise ConfigError(f"--max-points {max_points} must be at least 1 (or left out for every image)")
    if max_points is None or max_points >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def page_data(src: PageSource, max_points: int | None = None, method: str = "pca", seed: int = 0,
              weights: str = "auto") -> dict:
    """Everything ``page.js`` reads, as one JSON-ready dict.

    ``weights``: the decoder's weights in float32, in float16 (half the bytes), or ``auto``: float16 only
    when float32 would take the page over :data:`PAGE_BUDGET_BYTES` (the largest decoded-pixel change
    that costs is measured and recorded as ``weights_error``)."""
    if weights not in WEIGHTS:
        raise ConfigError(f"--weights {weights!r} is not allowed; choose one of: {', '.join(WEIGHTS)}")
    if len(src.images) == 0:
        raise ConfigError(f"{src.title}: there are no images to show")
    idx = choose_points(len(src.images), max_points, seed)
    x = src.images[idx]
    cpu = torch.device("cpu")
    codes = encode(src.autoencoder, x, cpu)  # (N, code)
    errors = reconstruction_error(src.autoencoder, x, cpu)  # (N,) per-image MSE, as `aekit score`
    program = decoder_program(src.autoencoder, codes.shape[1])
    tile = tile_shape(src.image_shape, x.shape[1])
    uri, cols = ("", 0) if src.table is not None else sprite(as_pixels(x), tile)
    small = codes.size * 4 <= FLOAT32_CODES_MAX_BYTES
    labels = None if src.labels is None else np.asarray(src.labels)[idx]
    xy = project(codes, method, seed)

    def pack(dtype: str) -> tuple[str, list[list], dict]:
        packer = Packer()
        for a in program.arrays:  # decoder weights first: the ops index them from 0
            packer.add(a.astype(np.float16) if dtype == "float16" else a)
        arrays = {"xy": packer.add(xy), "errors": packer.add(errors.astype(np.float32)),
                  "codes": packer.add(codes.astype(np.float32 if small else np.float16)),
                  "index": packer.add(idx.astype(np.int32))}
        if labels is not None:
            arrays["labels"] = packer.add(labels.astype(np.int32))
        if src.table is not None:  # a row is shown as its values: its features travel with it
            arrays["features"] = packer.add(np.asarray(x, dtype=np.float32))
        return (*packer.encode(), arrays)

    blob, table, arrays = pack("float16" if weights == "float16" else "float32")
    if weights == "auto":  # measured, not estimated: deflate shrinks saturated codes a lot and weights hardly
        weights = "float32"
        if len(uri) + len(blob) + PAGE_OVERHEAD_BYTES > PAGE_BUDGET_BYTES:
            weights = "float16"
            blob, table, arrays = pack(weights)
    n_classes = int(labels.max()) + 1 if labels is not None and len(labels) else 0
    classes = list(src.classes) if len(src.classes) >= n_classes else [str(c) for c in range(n_classes)]
    return {"title": src.title, "architecture": type(src.autoencoder).__name__, "n": len(idx), "n_total": len(src.images),
            "map": method, "code_size": int(codes.shape[1]), "codes_dtype": "float32" if small else "float16",
            "weights_dtype": weights,
            "weights_error": float16_weights_error(src.autoencoder, codes) if weights == "float16" else 0.0,
            "mean_error": float(errors.mean()), "classes": classes, "tile": list(tile), "cols": cols, "sprite": uri,
            "kind": "image" if src.table is None else "table",
            "columns": [] if src.table is None else [dataclasses.asdict(c) for c in src.table.columns],
            "blob": blob, "table": table, "arrays": arrays, "decoder": {"ops": program.ops, "out": program.out.id}}


def render(data: dict) -> str:
    """The self-contained HTML page: one pass over the template, so nothing inserted is read as a placeholder."""
    files = resources.files("aekit.explore")
    parts = {
        "title": html.escape(f"aekit explore: {data['title']}"),
        "css": files.joinpath("page.css").read_text(),
        "js": files.joinpath("decoder.js").read_text() + "\n" + files.joinpath("page.js").read_text(),
        "data": json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/"),
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], files.joinpath("template.html").read_text())
