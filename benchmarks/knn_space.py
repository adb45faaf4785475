"""The space of the nearest-neighbour anomaly score: how far toward comparing directions only.

aekit's default anomaly score is the mean distance to the 5 nearest training images in square-rooted pixels,
each image divided by its norm to the power ``NORM_POWER`` (``aekit.training.neighbors``): 0 compares pixels
as they are, 1 directions only (a thicker or brighter copy of a normal image is then no farther than the image
itself). This benchmark measures the one-class ROC AUC (each class normal in turn, as the anomaly benchmark:
training images of that class are the bank, every validation and test image is scored) for a range of powers,
so the power is chosen on validation AUC; no training, so it runs in minutes.
"""

from __future__ import annotations

import time

from benchmarks.common import finish, machine, markdown_table, script_main

NAME = "knn-space"
POWERS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)


def run(datasets=("mnist-5k", "fashion-mnist"), powers=POWERS, log=print) -> dict:
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from aekit.data.catalog import load_dataset
    from aekit.training.neighbors import N_NEIGHBORS, NORM_POWER, knn_distance

    cpu, results, t0 = torch.device("cpu"), [], time.perf_counter()
    for name in datasets:
        data, t1 = load_dataset(name), time.perf_counter()
        flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
        auc = {(split, p): [] for split in ("validation", "test") for p in powers}
        for c in np.unique(data.train.labels):
            bank = flat(data.train.images[data.train.labels == c])
            for split in ("validation", "test"):
                part = getattr(data, split)
                for p in powers:
                    scores = knn_distance(bank, flat(part.images), N_NEIGHBORS, True, cpu, norm_power=p)
                    auc[split, p].append(float(roc_auc_score(part.labels != c, scores)))
        rows = [{"norm_power": p, **{f"{split}_auc": float(np.mean(auc[split, p])) for split in ("validation", "test")}}
                for p in powers]
        for row in rows:
            log(f"{data.name} power {row['norm_power']}: validation {row['validation_auc']:.4f}, "
                f"test {row['test_auc']:.4f}")
        results.append({"dataset": data.name, "rows": rows, "seconds": time.perf_counter() - t1})
    return {"protocol": "one-class: each class's training images are the bank; every validation and test image is "
                        f"scored by its mean distance to the {N_NEIGHBORS} nearest; mean ROC AUC over the classes",
            "default_norm_power": NORM_POWER, "datasets": results, "seconds": time.perf_counter() - t0,
            "machine": machine()}


def to_markdown(r: dict) -> str:
    names = [d["dataset"] for d in r["datasets"]]
    header = ["norm power", *(f"{n} {split} AUC" for split in ("validation", "test") for n in names)]
    rows = []
    for i, row in enumerate(r["datasets"][0]["rows"]):
        power = row["norm_power"]
        rows.append([f"**{power:g}** (default)" if power == r["default_norm_power"] else f"{power:g}",
                     *(d["rows"][i][f"{split}_auc"] for split in ("validation", "test") for d in r["datasets"])])
    return (f"Nearest-neighbour one-class ROC AUC by the norm power of the distance space (mean over the classes; "
            f"no training), {r['seconds']:.0f} s\n\n" + markdown_table(header, rows))


def add_arguments(p) -> None:
    p.add_argument("--datasets", default="mnist-5k,fashion-mnist", help="comma-separated labeled image datasets")
    p.add_argument("--json", default="benchmarks/results/knn-space.json", help="JSON output; the .md table goes beside it")


def run_cli(args) -> int:
    from aekit.errors import ConfigError

    datasets = tuple(d.strip() for d in args.datasets.split(",") if d.strip())
    if not datasets:
        raise ConfigError("--datasets is empty; give labeled image datasets, e.g. mnist-5k,fashion-mnist")
    result = run(datasets)
    return finish(result, to_markdown(result), args.json)


def main(argv=None) -> int:
    import sys

    return script_main(sys.modules[__name__], argv)
