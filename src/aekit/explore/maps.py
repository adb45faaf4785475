"""The 2-D map of the codes: PCA (fast, linear, the default) or scikit-learn's t-SNE (slower, local structure)."""

from __future__ import annotations

import numpy as np

METHODS = ("pca", "tsne")


def project(codes: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(N, code) -> (N, 2) float32; a 1-D code gets a zero second axis."""
    x = np.asarray(codes, dtype=np.float64)
    if method == "tsne" and len(x) > 3:
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(x) - 1) / 3)
        xy = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(x)
    else:
        centred = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)  # rows of vt: principal directions
        xy = centred @ vt[:2].T
        if xy.shape[1] < 2:
            xy = np.concatenate([xy, np.zeros((len(xy), 2 - xy.shape[1]))], axis=1)
    return xy.astype(np.float32)
