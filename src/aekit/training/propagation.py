"""Label propagation: Poisson learning (Calder et al. 2020) on a k-nearest-neighbour graph of features.

Each labeled node is a source (its one-hot label less the labels' mean) and the graph Poisson equation
``L u = b`` is solved by the random-walk iteration ``u <- D^-1 (b + W u)``, stopped once a walk started at the
labeled nodes has mixed (Calder et al.'s rule); a node's class is the argmax of its row of ``u``. Unlike Laplace
learning (labels clamped, harmonic elsewhere), whose solution flattens towards a constant with very few labels,
it stays informative at a few labels a class.

The graph: each node joined to its ``k`` nearest neighbours with weight ``exp(-4 (d / d_k)^2)``, ``d_k`` its
distance to the k-th (a bandwidth that adapts to the local density), made symmetric. Inductive use: the graph
holds the training points only, and a new point's scores are its neighbours' scores in the graph, weighted alike.
Everything is tensor arithmetic on the features' device; the mixing test reads one number back every
``CHECK_EVERY`` iterations.
"""

from __future__ import annotations

import warnings

import torch

CHECK_EVERY = 10
MAX_ITERATIONS = 5000
CHUNK_ELEMENTS = 2 ** 26  # distances held at once while searching neighbours (256 MB of fp32)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length: neighbours by angle, which suits codes whose scale varies between images."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def neighbours(queries: torch.Tensor, base: torch.Tensor, k: int, exclude_self: bool = False):
    """Distances and indices of each query's ``k`` nearest rows of ``base`` (itself excluded when the queries are
    the base)."""
    base_sq = (base ** 2).sum(1)
    rows = max(1, CHUNK_ELEMENTS // len(base))
    dist, idx = [], []
    for start in range(0, len(queries), rows):
        q = queries[start:start + rows]
        d = (q ** 2).sum(1, keepdim=True) - 2 * q @ base.T + base_sq
        if exclude_self:
            rows_here = torch.arange(len(q), device=q.device)
            d[rows_here, rows_here + start] = float("inf")
        v, j = d.topk(k, dim=1, largest=False)
        dist.append(v.clamp_min(0).sqrt())
        idx.append(j)
    return torch.cat(dist), torch.cat(idx)


def _weights(dist: torch.Tensor) -> torch.Tensor:
    return torch.exp(-4 * (dist / dist[:, -1:].clamp_min(1e-12)) ** 2)


def knn_graph(features: torch.Tensor, k: int) -> torch.Tensor:
    """The symmetric weighted kNN graph of the rows, as a sparse CSR matrix."""
    n = len(features)
    dist, idx = neighbours(features, features, k, exclude_self=True)
    rows = torch.arange(n, device=features.device).repeat_interleave(k)
    w = torch.sparse_coo_tensor(torch.stack([rows, idx.flatten()]), _weights(dist).flatten(), (n, n),
                                check_invariants=False)  # indices from topk: in range by construction
    with warnings.catch_warnings():  # CSR is marked beta, yet its matrix product is the fast one on CPU and CUDA
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return (w + w.t()).coalesce().to_sparse_csr()


def poisson(graph: torch.Tensor, labeled: torch.Tensor, labels: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, int]:
    """Scores ``(n, n_classes)`` of every node, and the iterations run."""
    n = graph.shape[0]
    ones = torch.ones(n, 1, device=graph.device)
    degree = (graph @ ones).squeeze(1)
    onehot = torch.nn.functional.one_hot(labels, n_classes).float()
    source = torch.zeros(n, n_classes, device=graph.device)
    source[labeled] = onehot - onehot.mean(0)
    u = torch.zeros_like(source)
    walk = torch.zeros(n, device=graph.device)
    walk[labeled] = 1 / len(labeled)
    stationary = degree / degree.sum()
    for t in range(1, MAX_ITERATIONS + 1):
        u = (source + graph @ u) / degree[:, None]
        walk = (graph @ (walk / degree)[:, None]).squeeze(1)
        if t % CHECK_EVERY == 0 and t >= 50 and float((walk - stationary).abs().max()) <= 1 / n:
            break
    return u, t


class PoissonClassifier:
    """Poisson learning over ``features`` (rows), ``labels`` known at rows ``labeled``; ``predict`` extends it
    to new rows by their neighbours in the graph."""

    def __init__(self, features: torch.Tensor, labeled: torch.Tensor, labels: torch.Tensor, n_classes: int, k: int = 10):
        self.features, self.k = normalize(features), k
        self.scores, self.iterations = poisson(knn_graph(self.features, k), labeled, labels, n_classes)

    def predict(self, queries: torch.Tensor) -> torch.Tensor:
        dist, idx = neighbours(normalize(queries), self.features, self.k)
        w = _weights(dist)
        return ((w[:, :, None] * self.scores[idx]).sum(1) / w.sum(1, keepdim=True)).argmax(1)
