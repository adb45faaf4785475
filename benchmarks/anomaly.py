"""One-class anomaly detection: train on one class, score a test set of all classes, report ROC AUC.

The standard protocol (Ruff et al., Deep SVDD, ICML 2018): for each class c, fit on the training
images of c only; score every test image by reconstruction error; the AUC says how well the
score separates class c (normal) from the other nine (anomalies). PCA reconstruction error with
the same code size is the baseline, fitted in the same run.
"""

from __future__ import annotations

import time

from benchmarks.common import finish, machine, markdown_table, positive_ints, script_main

NAME = "anomaly"


def run(dataset: str = "mnist-5k", hidden_sizes=(128, 32), epochs: int = 100, seed: int = 0, log=print) -> dict:
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.metrics import roc_auc_score

    from aekit.data.catalog import load_dataset
    from aekit.errors import DataError
    from aekit.estimators import AutoencoderTransformer

    data = load_dataset(dataset)
    if data.train.labels is None or data.test.labels is None:
        raise DataError(f"dataset {data.name!r} has no labels; the anomaly benchmark needs them")
    X = np.concatenate([data.validation.images, data.train.images])
    y = np.concatenate([data.validation.labels, data.train.labels])
    Xt, yt = data.test.images, data.test.labels
    rows, t0 = [], time.perf_counter()
    for c in np.unique(y):
        normal = X[y == c]
        est = AutoencoderTransformer(hidden_sizes=tuple(hidden_sizes), max_epochs=epochs, batch_size=32,
                                     random_state=seed, device="cpu").fit(normal)
        ae_auc = roc_auc_score(yt == c, est.score_samples(Xt))
        pca = PCA(n_components=min(hidden_sizes[-1], len(normal) - 1), random_state=seed).fit(normal / 255.0)
        recon = pca.inverse_transform(pca.transform(Xt / 255.0))
        pca_auc = roc_auc_score(yt == c, -((recon - Xt / 255.0) ** 2).mean(axis=1))
        name = data.classes[c] if c < len(data.classes) else str(c)
        rows.append({"class": name, "n_train": int(len(normal)), "autoencoder_auc": ae_auc, "pca_auc": pca_auc})
        log(f"class {name}: {len(normal)} training images, AUC autoencoder {ae_auc:.4f}, PCA {pca_auc:.4f}")
    return {
        "dataset": data.name, "protocol": "one-class: train on one class, score all test images",
        "model": {"hidden_sizes": list(hidden_sizes), "epochs": epochs, "optimizer": "adamw", "activation": "gelu"},
        "rows": rows, "mean_autoencoder_auc": float(np.mean([r["autoencoder_auc"] for r in rows])),
        "mean_pca_auc": float(np.mean([r["pca_auc"] for r in rows])), "seconds": time.perf_counter() - t0,
        "machine": machine(),
    }


def to_markdown(r: dict) -> str:
    rows = [[row["class"], row["n_train"], row["autoencoder_auc"], row["pca_auc"]] for row in r["rows"]]
    rows.append(["**mean**", "", r["mean_autoencoder_auc"], r["mean_pca_auc"]])
    code = r["model"]["hidden_sizes"][-1]
    head = (f"One-class ROC AUC on {r['dataset']} (autoencoder {r['model']['hidden_sizes']}, {r['model']['epochs']} epochs; "
            f"PCA with {code} components), {r['seconds']:.0f} s\n\n")
    return head + markdown_table(["normal class", "training images", "autoencoder AUC", "PCA AUC"], rows)


def add_arguments(p) -> None:
    p.add_argument("--dataset", default="mnist-5k", help="labeled dataset")
    p.add_argument("--epochs", type=int, default=100, help="autoencoder epochs per class")
    p.add_argument("--hidden-sizes", default="128,32", help="encoder widths; the last is the code size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="benchmarks/results/anomaly.json", help="JSON output; the .md table goes beside it")


def run_cli(args) -> int:
    from aekit.errors import ConfigError

    hidden = positive_ints("--hidden-sizes", args.hidden_sizes, "128,32")
    if args.epochs < 1:
        raise ConfigError(f"--epochs {args.epochs} must be positive")
    result = run(args.dataset, hidden, args.epochs, args.seed)
    return finish(result, to_markdown(result), args.json)


def main(argv=None) -> int:
    import sys

    return script_main(sys.modules[__name__], argv)
