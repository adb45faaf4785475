"""Tables: one-class anomaly detection on scikit-learn's real tables, aekit against PyOD, plus fit speed.

Tasks (the tables ship with scikit-learn, offline): breast cancer with benign rows normal and malignant ones
anomalies; wine, each of its 3 classes normal in turn; digits (8x8, as 64 columns), each of its 10 classes
normal in turn. For each task and seed, 60% of the normal rows (drawn from the seed) train every detector;
the other 40% and every anomaly are scored, and ROC AUC and average precision say how well the score
separates them. Every detector gets its defaults, and the same rows.

Speed, in the same run: a 10,000 x 30 table (standard normal numbers: speed does not depend on the values)
fitted for 100 epochs by aekit and by PyOD's AutoEncoder; and scikit-learn's GridSearchCV over aekit's
estimator on the breast-cancer table, serial and with n_jobs=2 (joblib's worker processes are started by one
search before the timed one, as they would be once in a session: the measure is of the fits, which must not
slow each other down by spinning threads).

PyOD (pip install pyod) runs in this process; without it the PyOD rows are skipped with a note.
"""

from __future__ import annotations

import time

from benchmarks.common import finish, machine, markdown_table, script_main

NAME = "tables"
# aekit's estimator scores by its nearest training rows (its default); "aekit-reconstruction" is the same
# estimator scoring by its reconstruction error, the autoencoder's own score.
DETECTORS = ("aekit", "aekit-reconstruction", "pyod-autoencoder", "pyod-iforest", "pyod-pca")


def tasks() -> list[tuple[str, object, object]]:
    """(name, X, normal mask) for every task."""
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    out = []
    cancer = load_breast_cancer()
    out.append(("breast-cancer", cancer.data, cancer.target == 1))
    for name, loader in (("wine", load_wine), ("digits", load_digits)):
        d = loader()
        out += [(f"{name}-{c}", d.data, d.target == c) for c in sorted(set(d.target))]
    return out


def detector(name: str, seed: int, n_rows: int):
    """A fresh detector with its defaults, and how it scores rows (higher = more anomalous). PyOD's AutoEncoder
    drops the last partial batch, so it would not train at all on fewer rows than its batch of 32: its batch is
    at most the number of rows (aekit's estimator clips its batch the same way)."""
    if name.startswith("aekit"):
        from aekit.estimators import AutoencoderTransformer

        scoring = "reconstruction" if name == "aekit-reconstruction" else "knn"
        est = AutoencoderTransformer(random_state=seed, device="cpu", scoring=scoring)
        return est, lambda X: -est.score_samples(X)
    if name == "pyod-autoencoder":
        from pyod.models.auto_encoder import AutoEncoder

        est = AutoEncoder(random_state=seed, verbose=0, device="cpu", batch_size=min(32, n_rows))
    elif name == "pyod-iforest":
        from pyod.models.iforest import IForest

        est = IForest(random_state=seed)
    else:
        from pyod.models.pca import PCA

        est = PCA(random_state=seed)
    return est, est.decision_function


def has_pyod() -> bool:
    try:
        import pyod  # noqa: F401
    except ImportError:
        return False
    return True


def one_class(seeds: int, detectors: tuple[str, ...], log=print) -> list[dict]:
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    rows = []
    for task, X, normal in tasks():
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            idx = rng.permutation(np.flatnonzero(normal))
            n_fit = int(0.6 * len(idx))
            fit_rows = idx[:n_fit]
            test_rows = np.concatenate([idx[n_fit:], np.flatnonzero(~normal)])
            truth = ~normal[test_rows]  # anomalies are the positives
            for name in detectors:
                est, score = detector(name, seed, n_fit)
                t0 = time.perf_counter()
                est.fit(X[fit_rows])
                seconds = time.perf_counter() - t0
                s = score(X[test_rows])
                rows.append({"task": task, "seed": seed, "detector": name, "auc": float(roc_auc_score(truth, s)),
                             "ap": float(average_precision_score(truth, s)), "fit_seconds": seconds,
                             "n_fit": int(n_fit), "n_test": int(len(test_rows))})
            line = ", ".join(f"{r['detector']} {r['auc']:.3f}" for r in rows[-len(detectors):])
            log(f"{task} seed {seed}: AUC {line}")
    return rows


def speed(with_pyod: bool, epochs: int = 100, log=print) -> dict:
    """Seconds to fit a 10,000 x 30 table for ``epochs`` epochs; GridSearchCV serial and with n_jobs=2."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import GridSearchCV

    from aekit.estimators import AutoencoderTransformer

    X = np.random.default_rng(0).standard_normal((10_000, 30)).astype(np.float32)
    out = {}
    t0 = time.perf_counter()
    AutoencoderTransformer(max_epochs=epochs, random_state=0, device="cpu").fit(X)
    out["aekit_10k_seconds"] = time.perf_counter() - t0
    if with_pyod:
        from pyod.models.auto_encoder import AutoEncoder

        t0 = time.perf_counter()
        AutoEncoder(epoch_num=epochs, random_state=0, verbose=0, device="cpu").fit(X)
        out["pyod_autoencoder_10k_seconds"] = time.perf_counter() - t0
        # its default batch is 32, aekit's 128: the same number of steps too
        t0 = time.perf_counter()
        AutoEncoder(epoch_num=epochs, random_state=0, verbose=0, device="cpu", batch_size=128).fit(X)
        out["pyod_autoencoder_10k_batch_128_seconds"] = time.perf_counter() - t0
    log(f"10,000 x 30 for {epochs} epochs: " + ", ".join(f"{k} {v:.1f}" for k, v in out.items()))
    cancer = load_breast_cancer().data
    grid = {"hidden_sizes": [(16, 4), (32, 8)], "learning_rate": [1e-3, 3e-3], "max_epochs": [100]}
    GridSearchCV(AutoencoderTransformer(random_state=0, device="cpu"), grid, cv=3, n_jobs=2).fit(cancer)  # workers up
    for jobs in (1, 2):
        t0 = time.perf_counter()
        GridSearchCV(AutoencoderTransformer(random_state=0, device="cpu"), grid, cv=3, n_jobs=jobs).fit(cancer)
        out[f"grid_search_n_jobs_{jobs}_seconds"] = time.perf_counter() - t0
    out["grid_search_fits"] = 3 * 4
    out["grid_search_epochs"] = grid["max_epochs"][0]
    log(f"GridSearchCV (12 fits): serial {out['grid_search_n_jobs_1_seconds']:.1f} s, "
        f"n_jobs=2 {out['grid_search_n_jobs_2_seconds']:.1f} s")
    return out


def summarize(rows: list[dict], detectors: tuple[str, ...]) -> dict:
    import numpy as np

    out = {}
    for name in detectors:
        mine = [r for r in rows if r["detector"] == name]
        by_seed = {}
        for r in mine:
            by_seed.setdefault(r["seed"], []).append(r["auc"])
        per_seed = [np.mean(v) for v in by_seed.values()]  # the mean over tasks, once per seed
        out[name] = {"mean_auc": float(np.mean([r["auc"] for r in mine])), "std_auc_over_seeds": float(np.std(per_seed)),
                     "mean_ap": float(np.mean([r["ap"] for r in mine])),
                     "fit_seconds": float(sum(r["fit_seconds"] for r in mine))}
    return out


def run(seeds: int = 5, log=print) -> dict:
    with_pyod = has_pyod()
    detectors = DETECTORS if with_pyod else DETECTORS[:2]
    t0 = time.perf_counter()
    rows = one_class(seeds, detectors, log)
    return {"protocol": "one-class: fit on 60% of one class's rows, score the rest of them and every other row",
            "seeds": seeds, "detectors": list(detectors), "rows": rows, "summary": summarize(rows, detectors),
            "speed": speed(with_pyod, log=log), "note": "" if with_pyod else "pyod is not installed: pip install pyod",
            "seconds": time.perf_counter() - t0, "machine": machine()}


def to_markdown(r: dict) -> str:
    names = r["detectors"]
    groups = {}
    for row in r["rows"]:
        groups.setdefault(row["task"].split("-")[0] if row["task"] != "breast-cancer" else "breast-cancer", []).append(row)
    table = []
    for group, rows in groups.items():
        tasks = len({row["task"] for row in rows})
        cells = [sum(x["auc"] for x in rows if x["detector"] == n) / max(1, sum(x["detector"] == n for x in rows))
                 for n in names]
        table.append([f"{group} ({tasks} task{'s' if tasks > 1 else ''})", *cells])
    s = r["summary"]
    table.append(["**mean AUC over all tasks and seeds**", *[s[n]["mean_auc"] for n in names]])
    table.append(["std of the mean over seeds", *[s[n]["std_auc_over_seeds"] for n in names]])
    table.append(["mean average precision", *[s[n]["mean_ap"] for n in names]])
    table.append(["fit seconds, all fits", *[s[n]["fit_seconds"] for n in names]])
    head = (f"One-class ROC AUC on scikit-learn's tables ({r['seeds']} seeds; each detector with its defaults), "
            f"{r['seconds']:.0f} s\n\n")
    sp = r["speed"]
    lines = [f"- a 10,000 x 30 table, 100 epochs: aekit {sp['aekit_10k_seconds']:.1f} s"]
    if "pyod_autoencoder_10k_seconds" in sp:
        lines[0] += f", PyOD AutoEncoder {sp['pyod_autoencoder_10k_seconds']:.1f} s (its batch of 32)"
    if "pyod_autoencoder_10k_batch_128_seconds" in sp:
        lines[0] += f", {sp['pyod_autoencoder_10k_batch_128_seconds']:.1f} s in aekit's batch of 128"
    lines.append(f"- GridSearchCV over aekit's estimator ({sp['grid_search_fits']} fits of {sp['grid_search_epochs']} epochs "
                 "on breast cancer, joblib's workers already started): serial "
                 f"{sp['grid_search_n_jobs_1_seconds']:.1f} s, n_jobs=2 {sp['grid_search_n_jobs_2_seconds']:.1f} s")
    note = f"\n{r['note']}\n" if r.get("note") else ""
    return head + markdown_table(["task", *names], table) + "\n" + "\n".join(lines) + "\n" + note


def add_arguments(p) -> None:
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..SEEDS-1: each draws its own training rows")
    p.add_argument("--json", default="benchmarks/results/tables.json", help="JSON output; the .md table goes beside it")


def run_cli(args) -> int:
    from aekit.errors import ConfigError

    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds} must be at least 1")
    result = run(args.seeds)
    return finish(result, to_markdown(result), args.json)


def main(argv=None) -> int:
    import sys

    return script_main(sys.modules[__name__], argv)
