"""Figures, drawn on matplotlib's object API (no pyplot state) and saved atomically as PNG."""

from __future__ import annotations

import os

import numpy as np

from .fileio import atomic_path


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=100, layout="constrained")


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path) as part:
        fig.savefig(part, format="png")


def reconstruction_grid(originals: np.ndarray, reconstructions: np.ndarray, image_shape, path,
                        title: str | None = None) -> None:
    """The tutorial's 2 x n grid: test images above, their reconstructions below."""
    n = len(originals)
    fig = _figure((max(n, 2), 2.3 if title else 2.1))
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        for row, images in enumerate((originals, reconstructions)):
            ax = axes[row][i]
            ax.imshow(np.asarray(images[i], dtype=np.float32).reshape(image_shape), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0][0].set_ylabel("input", fontsize=8)
    axes[1][0].set_ylabel("output", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    _save(fig, path)


def loss_curves(curves: dict[str, list[float]], path, title: str | None = None) -> None:
    """One panel per named curve (e.g. pretraining MSE, fine-tuning cross-entropy), log-scaled."""
    fig = _figure((4.2 * len(curves), 3.2))
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, values) in zip(axes, curves.items()):
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(len(values)), values, lw=1.5)
        if len(values) and np.all(values > 0):
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean training loss")
        ax.set_title(name, fontsize=10)
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)
