"""One-class anomaly detection: train on one class, score a test set of all classes, report ROC AUC.

The standard protocol (Ruff et al., Deep SVDD, ICML 2018): for each class c, fit on the training images of c
only; score every test image; the AUC says how well the score separates class c (normal) from the other
classes (anomalies). Three scores, from the same run: aekit's autoencoder reconstruction error, aekit's
nearest-neighbour distance (``AutoencoderTransformer(scoring="knn")``), and PCA reconstruction error with the
code size as components. The validation split (all classes, never trained on) ranks the scores: the
``chosen`` one has the best mean validation AUC, so the test set picks nothing.
"""

from __future__ import annotations

import time

from benchmarks.common import finish, machine, markdown_table, positive_ints, script_main

NAME = "anomaly"
SCORES = {"autoencoder": "autoencoder reconstruction", "knn": "nearest neighbours (aekit)", "pca": "PCA reconstruction"}


def one_class(data, c: int, hidden_sizes, epochs: int, seed: int) -> dict:
    """Validation and test AUC of every score, trained on the training images of class ``c``."""
    from sklearn.decomposition import PCA
    from sklearn.metrics import roc_auc_score

    from aekit.estimators import AutoencoderTransformer

    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    normal = flat(data.train.images[data.train.labels == c])
    est = AutoencoderTransformer(hidden_sizes=tuple(hidden_sizes), max_epochs=epochs, batch_size=32, random_state=seed,
                                 device="cpu", scoring="knn").fit(normal)
    pca = PCA(n_components=min(hidden_sizes[-1], len(normal) - 1), random_state=seed).fit(normal / 255.0)

    def pca_error(x):
        x = flat(x) / 255.0
        return ((pca.inverse_transform(pca.transform(x)) - x) ** 2).mean(axis=1)
    scorers = {"autoencoder": lambda x: est.reconstruction_error(flat(x)), "knn": lambda x: -est.score_samples(flat(x)),
               "pca": pca_error}
    out = {"n_train": int(len(normal))}
    for split in ("validation", "test"):
        part = getattr(data, split)
        for name, anomaly_score in scorers.items():
            out[f"{name}_{split}_auc"] = float(roc_auc_score(part.labels != c, anomaly_score(part.images)))
    return out


def run(datasets=("mnist-5k",), hidden_sizes=(128, 32), epochs: int = 100, seeds: int = 3, log=print) -> dict:
    import numpy as np

    from aekit.data.catalog import load_dataset
    from aekit.errors import DataError

    results, t0 = [], time.perf_counter()
    for name in datasets:
        data = load_dataset(name)
        if data.train.labels is None or data.test.labels is None or data.validation.labels is None:
            raise DataError(f"dataset {data.name!r} has no labels; the anomaly benchmark needs them")
        rows, t1 = [], time.perf_counter()
        for c in np.unique(data.train.labels):
            runs = [one_class(data, c, hidden_sizes, epochs, seed) for seed in range(seeds)]
            row = {"class": data.classes[c] if c < len(data.classes) else str(c), "n_train": runs[0]["n_train"]}
            for key in runs[0]:
                if key.endswith("_auc"):
                    row[key] = float(np.mean([r[key] for r in runs]))
                    row[key.replace("_auc", "_std")] = float(np.std([r[key] for r in runs]))
            rows.append(row)
            log(f"{data.name} class {row['class']}: " + ", ".join(f"{s} {row[f'{s}_test_auc']:.4f}" for s in SCORES))
        mean = {f"mean_{s}_{split}_auc": float(np.mean([r[f"{s}_{split}_auc"] for r in rows]))
                for s in SCORES for split in ("validation", "test")}
        chosen = max(("autoencoder", "knn"), key=lambda s: mean[f"mean_{s}_validation_auc"])
        results.append({"dataset": data.name, "rows": rows, **mean, "chosen": chosen,
                        "seconds": time.perf_counter() - t1})
    return {
        "protocol": "one-class: train on one class's training images, score all validation and test images; "
                    "mean over seeds of each class's ROC AUC",
        "model": {"hidden_sizes": list(hidden_sizes), "epochs": epochs, "optimizer": "adamw", "activation": "gelu",
                  "batch_size": 32, "n_neighbors": 5},
        "seeds": seeds, "datasets": results, "seconds": time.perf_counter() - t0, "machine": machine(),
    }


def to_markdown(r: dict) -> str:
    parts = []
    for d in r["datasets"]:
        rows = [[row["class"], row["n_train"], *(row[f"{s}_test_auc"] for s in SCORES)] for row in d["rows"]]
        rows.append(["**mean (test)**", "", *(d[f"mean_{s}_test_auc"] for s in SCORES)])
        rows.append(["mean (validation)", "", *(d[f"mean_{s}_validation_auc"] for s in SCORES)])
        code = r["model"]["hidden_sizes"][-1]
        parts.append(
            f"One-class ROC AUC on {d['dataset']} (mean over {r['seeds']} seeds; autoencoder {r['model']['hidden_sizes']}, "
            f"{r['model']['epochs']} epochs; nearest neighbours: the mean distance to the {r['model']['n_neighbors']} "
            f"nearest training images; PCA with {code} components), {d['seconds']:.0f} s. Best on validation: "
            f"{SCORES[d['chosen']]}.\n\n"
            + markdown_table(["normal class", "training images", *SCORES.values()], rows))
    return "\n".join(parts)


def add_arguments(p) -> None:
    p.add_argument("--datasets", default="mnist-5k", help="comma-separated labeled datasets")
    p.add_argument("--epochs", type=int, default=100, help="autoencoder epochs per class")
    p.add_argument("--hidden-sizes", default="128,32", help="encoder widths; the last is the code size")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--json", default="benchmarks/results/anomaly.json", help="JSON output; the .md table goes beside it")


def run_cli(args) -> int:
    from aekit.errors import ConfigError

    hidden = positive_ints("--hidden-sizes", args.hidden_sizes, "128,32")
    if args.epochs < 1 or args.seeds < 1:
        raise ConfigError(f"--epochs {args.epochs} and --seeds {args.seeds} must be positive")
    datasets = tuple(d.strip() for d in args.datasets.split(",") if d.strip())
    result = run(datasets, hidden, args.epochs, args.seeds)
    return finish(result, to_markdown(result), args.json)


def main(argv=None) -> int:
    import sys

    return script_main(sys.modules[__name__], argv)
