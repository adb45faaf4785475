"""Figures, drawn on matplotlib's object API (no pyplot state) and saved atomically as PNG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aekit.experiments.fewlabels import arm_titles
from aekit.fileio import atomic_path


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=100, layout="constrained")


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path) as part:
        fig.savefig(part, format="png")


def reconstruction_grid(originals: np.ndarray, reconstructions: np.ndarray, image_shape, path,
                        title: str | None = None, labels: list[str] | None = None) -> None:
    """The tutorial's 2 x n grid: test images above, their reconstructions below (``labels`` under each)."""
    image_rows([("input", originals), ("output", reconstructions)], image_shape, path, title, labels)


def image_rows(rows: list[tuple[str, np.ndarray]], image_shape, path, title: str | None = None,
               labels: list[str] | None = None) -> None:
    """One row of n images per (name, images), the name on the left (``labels`` under the last row's images);
    images are flat values in [0, 1], gray or color (channels last)."""
    n = len(rows[0][1])
    fig = _figure((max(n, 2) + (1.2 if max(len(name) for name, _ in rows) > 8 else 0), 1.05 * len(rows) + (0.2 if title else 0)))
    ax = fig.subplots()
    images = [np.asarray(im, dtype=np.float32).reshape(image_shape) for _, ims in rows for im in ims[:n]]
    grid, (h, w) = _montage(images, n)
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([r * (h + PAD) + h / 2 for r in range(len(rows))], [name for name, _ in rows], fontsize=8)
    ax.set_xticks([i * (w + PAD) + w / 2 for i in range(n)] if labels else [], labels[:n] if labels else [], fontsize=7)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=9)
    _save(fig, path)


PAD = 2  # pixels of white between the images of a montage


def _montage(images: list[np.ndarray], cols: int, fill: float = 1.0) -> tuple[np.ndarray, tuple[int, int]]:
    """Images of one shape (H, W) or (H, W, C) tiled in rows of ``cols``, ``PAD`` pixels of ``fill`` between
    them: drawn as one image, a figure of a hundred images costs one axes instead of a hundred."""
    h, w = images[0].shape[:2]
    rows = -(-len(images) // cols)
    grid = np.full((rows * (h + PAD) - PAD, cols * (w + PAD) - PAD, *images[0].shape[2:]), fill, dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (h + PAD):r * (h + PAD) + h, c * (w + PAD):c * (w + PAD) + w] = image
    return grid, (h, w)


def loss_curves(curves: dict[str, list[float]], path, title: str | None = None,
                validation: dict[str, tuple[str, list[int], list[float]]] | None = None) -> None:
    """One panel per named curve (e.g. pretraining MSE, fine-tuning cross-entropy), log-scaled; where
    ``validation`` has the name, its ``(what, epochs, values)`` on a second axis (its units may differ)."""
    fig = _figure((4.2 * len(curves), 3.2))
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, values) in zip(axes, curves.items()):
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, lw=1.5, color="C0")
        _log_if_positive(ax, values)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean training loss", color="C0")
        ax.set_title(name, fontsize=10)
        ax.grid(True, alpha=0.3)
        if validation and name in validation:
            what, epochs, scores = validation[name]
            twin = ax.twinx()
            twin.plot(epochs, scores, "o-", ms=3, lw=1, color="C1")
            _log_if_positive(twin, np.asarray(scores, dtype=float))
            twin.set_ylabel(f"validation {what}", color="C1")
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _log_if_positive(ax, values: np.ndarray) -> None:
    if len(values) and np.all(values > 0):
        ax.set_yscale("log")


def code_map(codes: np.ndarray, labels: np.ndarray | None, path, method: str = "pca", classes=(), title=None) -> None:
    """Test codes in 2-D (PCA, or t-SNE with ``method="tsne"``), coloured by label."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.shape[1] > 2:
        if method == "tsne":
            from sklearn.manifold import TSNE

            xy = TSNE(n_components=2, init="pca", random_state=0).fit_transform(codes)
        else:
            from sklearn.decomposition import PCA

            xy = PCA(n_components=2, random_state=0).fit_transform(codes)
    else:
        xy = np.pad(codes, ((0, 0), (0, 2 - codes.shape[1])))
    fig = _figure((6.4, 5.2))
    ax = fig.subplots()
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.6)
    else:
        cmap = __import__("matplotlib").colormaps["tab10"]
        for c in np.unique(labels):
            sel = labels == c
            name = classes[c] if c < len(classes) else str(c)
            ax.scatter(xy[sel, 0], xy[sel, 1], s=3, alpha=0.7, color=cmap(int(c) % 10), label=name)
        ax.legend(markerscale=4, fontsize=7, loc="best", frameon=False)
    ax.set_xlabel(f"{method.upper()} 1")
    ax.set_ylabel(f"{method.upper()} 2")
    ax.set_title(title or f"codes ({method.upper()})", fontsize=10)
    _save(fig, path)


def filters(weight: np.ndarray, image_shape, path, n: int = 64, title=None) -> None:
    """The first ``n`` first-layer filters, (n, H, W), as images, each scaled symmetrically around 0."""
    weight = np.asarray(weight, dtype=np.float32)[:n]
    scaled = [w / (np.abs(w).max() or 1.0) for w in weight]
    _grid_figure(scaled, int(np.ceil(np.sqrt(len(weight)))), 0.8, title, path, cmap="RdBu_r", vmin=-1, fill=0.0)


def vae_figures(vae, images: np.ndarray, image_shape, out) -> None:
    """``samples.png``: decoded draws from the prior; ``interpolation.png``: decoding along the line
    between the posterior means of pairs of test images."""
    import torch

    from aekit.data.batches import to_float

    device = next(vae.parameters()).device
    with torch.inference_mode():
        samples = vae.sample(32, generator=torch.Generator().manual_seed(0)).cpu().numpy()
        x = to_float(torch.as_tensor(images[:8]).to(device))
        z = vae.encode(x)  # (8, latent)
        steps = torch.linspace(0, 1, 10, device=device)[:, None]
        rows = [vae.decode(z[i] * (1 - steps) + z[i + 1] * steps).cpu().numpy() for i in range(0, 8, 2)]
    image_grid(samples, image_shape, Path(out) / "samples.png", cols=8, title="VAE: samples from the prior")
    image_grid(np.concatenate(rows), image_shape, Path(out) / "interpolation.png", cols=10,
               title="VAE: interpolating between test images in latent space")


def image_grid(images: np.ndarray, image_shape, path, cols: int = 10, title=None) -> None:
    _grid_figure([np.asarray(image, dtype=np.float32).reshape(image_shape) for image in images], cols, 0.9, title,
                 path, cmap="gray", vmin=0, fill=1.0)


def _grid_figure(images: list[np.ndarray], cols: int, size: float, title, path, *, cmap: str, vmin: float,
                 fill: float) -> None:
    """``images`` in rows of ``cols``, ``size`` inches a cell, with no axes (values from ``vmin`` to 1)."""
    rows = -(-len(images) // cols)
    fig = _figure((cols * size, rows * size + (0.3 if title else 0)))
    ax = fig.subplots()
    ax.imshow(_montage(images, cols, fill)[0], cmap=cmap, vmin=vmin, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    _save(fig, path)


def fewlabels_curves(result: dict, path) -> None:
    """Test accuracy against the number of labels, one line per arm of ``aekit fewlabels``."""
    fig = _figure((5.2, 3.6))
    ax = fig.subplots()
    summary = result["summary"]
    xs = [s["labels"] if s["labels"] != "all" else result["n_train"] for s in summary]
    for key, name in arm_titles(result).items():
        have = [(x, s) for x, s in zip(xs, summary) if f"{key}_mean" in s]
        if not have:
            continue
        means = np.array([100 * s[f"{key}_mean"] for _, s in have])
        stds = np.array([100 * s[f"{key}_std"] for _, s in have])
        dashed = key not in ("pretrained", "scratch")  # the ablations
        ax.errorbar([x for x, _ in have], means, yerr=stds, marker="o", capsize=3, label=name,
                    linestyle="--" if dashed else "-", alpha=0.6 if dashed else 1.0)
    ax.set_xscale("log")
    ax.set_xlabel("labeled training images")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{result['dataset']}: few-label learning", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def frontier_figure(rows: list[dict], path) -> None:
    """Validation MSE against training seconds, one panel per dataset and code size (``python -m benchmarks frontier``):
    each curve's points, a star at its end for its test MSE, PCA's test MSE as a dashed line, and a dotted line at
    half the peer's time (the target is to be below the peer's best before it)."""
    datasets = list(dict.fromkeys(row["dataset"] for row in rows))  # one row of panels per dataset
    cols = max(1, max(sum(r["dataset"] == d for r in rows) for d in datasets) if rows else 1)
    fig = _figure((4.4 * cols, 3.3 * max(1, len(datasets))))
    grid = fig.subplots(max(1, len(datasets)), cols, squeeze=False)
    axes = [grid[datasets.index(d)][i] for d in datasets for i in range(sum(r["dataset"] == d for r in rows))]
    for ax in grid.flat:
        if all(ax is not used for used in axes):  # a dataset with fewer code sizes than another
            ax.set_axis_off()
    for ax, row in zip(axes, rows):
        curves = [(name, row[name]) for name in ("peer", "aekit") if "points" in row.get(name, {})]
        for (name, curve), color in zip(curves, ("tab:gray", "tab:blue")):
            xs = [p["seconds"] for p in curve["points"]]
            ys = [p["validation_mse"] for p in curve["points"]]
            ax.plot(xs, ys, marker=".", lw=1.5, color=color, label={"peer": "pythae AE", "aekit": "aekit modern"}[name])
            ax.plot([curve["seconds"]], [curve["test_mse"]], marker="*", ms=10, color=color, linestyle="none")
            if name == "peer":
                ax.axvline(0.5 * curve["seconds"], color=color, lw=0.8, linestyle=":")
                ax.axhline(min(ys), color=color, lw=0.8, linestyle=":")
        ax.axhline(row["pca"], color="tab:red", lw=1, linestyle="--", label="PCA (test)")
        ax.set_yscale("log")
        ax.set_xlabel("seconds of training")
        ax.set_ylabel("validation MSE (stars: test)")
        ax.set_title(f"{row['dataset']}, code {row['code_size']}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    _save(fig, path)


def column_errors(mse: dict[str, float], path, title=None, show: int = 30) -> None:
    """A table's test MSE per column, the worst first (at most ``show`` of them), as horizontal bars."""
    names = sorted(mse, key=mse.get, reverse=True)[:show]
    fig = _figure((6, 0.8 + 0.25 * len(names)))
    ax = fig.subplots()
    ax.barh(range(len(names)), [mse[n] for n in names], color="tab:red")
    ax.set_yticks(range(len(names)), [n[:30] for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("mean squared error (standardized units)")
    ax.grid(True, axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    _save(fig, path)


def row_shares(shares: np.ndarray, names: list[str], rows: list[str], path, title=None, show: int = 30) -> None:
    """A heat map of rows (e.g. the worst-scored samples of a table) against the columns that carry their
    scores: each cell the column's share of its row's score (at most ``show`` columns, those with the largest
    shares, in their order)."""
    shares = np.asarray(shares, dtype=np.float64)
    keep = np.sort(np.argsort(-shares.max(axis=0, initial=0.0), kind="stable")[:show])
    fig = _figure((1.6 + 0.35 * max(len(keep), 4), 1.2 + 0.3 * max(len(rows), 1)))
    ax = fig.subplots()
    image = ax.imshow(shares[:, keep].reshape(len(rows), len(keep)), cmap="Reds", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(keep)), [names[j][:20] for j in keep], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    fig.colorbar(image, ax=ax, label="share of the score", shrink=0.8)
    if title:
        ax.set_title(title, fontsize=9)
    _save(fig, path)
