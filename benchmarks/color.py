"""Color images: reconstruction test MSE on patches of scikit-learn's two photographs, aekit against PCA.

The data: 32x32 RGB patches of ``load_sample_images()`` (a Chinese temple and a flower, 427x640 each), taken
every 8 pixels. Patches lying in the left 80% of each photograph train (a tenth of them, at random, are the
validation split); patches in the right 20% are the test set, so no test pixel was seen in training. Each
model has the same code size: PCA with that many components, aekit's convolutional autoencoder and the
modern MLP preset (a PCA-residual autoencoder), all fitted in the same run.
"""

from __future__ import annotations

import time

from benchmarks.common import finish, machine, markdown_table, positive_ints, script_main

NAME = "color"
SIZE, STRIDE, TEST_SHARE = 32, 8, 0.2
TARGET = 0.7  # the target: a network's test MSE at most this share of PCA's at the same code size


def pca_components_for(fit, test, error: float, most: int) -> int | None:
    """The fewest PCA components (at most ``most``) whose test MSE is at most ``error``, or None. Components are
    orthonormal, so a sample's error with k of them is its squared distance to the mean less its first k
    squared coordinates: one fit gives every k."""
    import numpy as np
    from sklearn.decomposition import PCA

    pca = PCA(min(most, *fit.shape), svd_solver="full").fit(fit)  # the randomized solver's first k are not PCA(k)'s
    centred = test - pca.mean_
    coords = centred @ pca.components_.T
    mse = ((centred ** 2).sum() - np.concatenate([[0.0], np.cumsum((coords ** 2).sum(axis=0))])) / centred.size
    reached = np.flatnonzero(mse <= error)
    return int(reached[0]) if len(reached) else None


def patches():
    """(train, test) uint8 patches (N, 32, 32, 3)."""
    import numpy as np
    from sklearn.datasets import load_sample_images

    def cut(photo, xs):
        return [photo[y:y + SIZE, x:x + SIZE] for y in range(0, photo.shape[0] - SIZE + 1, STRIDE) for x in xs]

    train, test = [], []
    for photo in load_sample_images().images:
        edge = int(photo.shape[1] * (1 - TEST_SHARE))
        train += cut(photo, range(0, edge - SIZE + 1, STRIDE))
        test += cut(photo, range(edge, photo.shape[1] - SIZE + 1, STRIDE))
    return np.stack(train), np.stack(test)


def recipes(code: int, epochs: int, n_train: int, image_shape) -> dict:
    import dataclasses

    from aekit.experiments import presets
    from aekit.experiments.recipe import Phase, Recipe

    modern = presets.get_preset("stacked", "modern", code, n_train, image_shape)
    return {
        "conv": Recipe(architecture="conv", hidden_sizes=(32, 64, code), activation="gelu", init="kaiming", batch_size=64,
                       display_step=0, train=Phase(epochs=epochs, optimizer="adamw", learning_rate=2e-3, weight_decay=1e-4,
                                                   schedule="onecycle", early_stopping=5)),
        "mlp (modern preset)": dataclasses.replace(modern, hidden_sizes=(*modern.hidden_sizes[:-1], code), display_step=0),
    }


def run(codes=(32,), epochs: int = 30, log=print) -> dict:
    import numpy as np
    import torch
    from sklearn.decomposition import PCA

    from aekit.data.arrays import from_arrays
    from aekit.experiments.programs import run_stacked

    x_train, x_test = patches()
    data = from_arrays("photo-patches", x_train, None, x_test, None, seed=0)
    fit = np.concatenate([data.train.images, data.validation.images]).astype(np.float32) / 255
    test = data.test.images.astype(np.float32) / 255
    rows, t0 = [], time.perf_counter()
    for code in codes:
        t = time.perf_counter()
        pca = PCA(code, random_state=0).fit(fit)
        pca_mse = float(((pca.inverse_transform(pca.transform(test)) - test) ** 2).mean())
        rows.append({"model": "PCA", "code": code, "test_mse": pca_mse, "seconds": time.perf_counter() - t,
                     "components_for_target": pca_components_for(fit, test, TARGET * pca_mse, 8 * code)})
        for name, recipe in recipes(code, epochs, len(data.train), data.image_shape).items():
            result = run_stacked(recipe, data, torch.device("cpu"), seed=0)
            m = result.metrics
            rows.append({"model": name, "code": code, "test_mse": m["test_mse"], "seconds": m["seconds"]["total"],
                         "epochs_run": len(m["history"]["train"]["epoch_loss"]), "architecture": recipe.architecture})
        for row in rows[-3:]:
            row["vs_pca"] = row["test_mse"] / pca_mse
            log(f"code {code}: {row['model']} test MSE {row['test_mse']:.5f} ({row['vs_pca']:.2f}x PCA), "
                f"{row['seconds']:.0f} s")
    return {"data": f"{SIZE}x{SIZE} RGB patches every {STRIDE} pixels of scikit-learn's two sample photographs; "
                    f"the right {int(100 * TEST_SHARE)}% of each photograph is the test set",
            "n_train": len(data.train), "n_validation": len(data.validation), "n_test": len(data.test),
            "epochs": epochs, "target": TARGET, "rows": rows, "seconds": time.perf_counter() - t0, "machine": machine()}


def to_markdown(r: dict) -> str:
    table = [[row["model"], row["code"], row["test_mse"], row["vs_pca"], row["seconds"]] for row in r["rows"]]
    head = (f"Reconstruction of color image patches: {r['n_train']:,} training, {r['n_test']:,} test patches "
            f"(32x32x3), at most {r['epochs']} epochs, {r['seconds']:.0f} s\n\n")
    needs = [f"{_components(row)} components at code {row['code']}" for row in r["rows"]
             if row["model"] == "PCA" and "components_for_target" in row]
    foot = (f"\n\nPCA itself needs {', '.join(needs)} to bring its test MSE to {r.get('target', TARGET):g}x that of "
            "PCA at the code size.") if needs else ""
    return head + markdown_table(["model", "code size", "test MSE", "vs PCA", "seconds"], table).rstrip("\n") + foot


def _components(row: dict) -> str:
    n = row["components_for_target"]
    return f"more than {8 * row['code']}" if n is None else str(n)


def add_arguments(p) -> None:
    p.add_argument("--codes", default="32", help="comma-separated code sizes")
    p.add_argument("--epochs", type=int, default=30, help="at most this many epochs (early stopping on validation)")
    p.add_argument("--json", default="benchmarks/results/color.json", help="JSON output; the .md table goes beside it")


def run_cli(args) -> int:
    from aekit.errors import ConfigError

    codes = positive_ints("--codes", args.codes, "32,64")
    if args.epochs < 1:
        raise ConfigError(f"--epochs {args.epochs} must be positive")
    result = run(codes, args.epochs)
    return finish(result, to_markdown(result), args.json)


def main(argv=None) -> int:
    import sys

    return script_main(sys.modules[__name__], argv)
