"""Quality benchmark: reconstruction against PCA, classification against the tutorial, few labels.

For each dataset and code size it reports the test MSE of PCA (scikit-learn, same run), of the
seed preset, and of each member of the autoencoder family built on the modern recipe; then the
test accuracy of the seed and modern pretrain programs; then the few-label table. ``--quick``
shrinks everything (mnist-5k, one code size, a fraction of the epochs) to a few minutes.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from .report import finish, machine, markdown_table, script_main

NAME = "quality"
# Each family member: the modern MLP recipe (presets.MODERN_MLP) plus these changes; "modern preset" is
# the modern-stacked preset itself.
FAMILY = {
    "mlp": {},
    "tied": {"tied": True},
    "denoising": {"noise": "mask", "noise_level": 0.25},
    "sparse (L1)": {"sparsity": "l1", "sparsity_weight": 1e-3},
    "greedy layer-wise": {"layerwise_epochs": 3},
    "convolutional": {"architecture": "conv", "hidden_sizes": (16, 32, 0)},
    "variational": {"architecture": "vae", "hidden_sizes": (512, 256, 0)},
    "modern preset (pca-residual)": None,
}


def pca_mse(data, k: int, seed: int = 0) -> float:
    from sklearn.decomposition import PCA

    x, xt = data.train.images / 255.0, data.test.images / 255.0
    pca = PCA(n_components=min(k, len(x) - 1), random_state=seed).fit(x)
    return float(((pca.inverse_transform(pca.transform(xt)) - xt) ** 2).mean())


def run(datasets=("mnist-5k", "fashion-mnist"), codes=(32, 128), epochs_scale: float = 1.0, few_labels="100,300,1000,all",
        seeds: int = 3, members=None, family_epochs_scale: float = 1.0, log=print, on_progress=None) -> dict:
    """``family_epochs_scale`` shortens the family variants (not the seed and modern presets) to fit the time."""
    from .. import fewlabels
    from ..datasets import load_dataset
    from ..presets import MODERN_MLP, get_preset, scale_epochs, with_code_size
    from ..programs import run_pretrain, run_stacked
    from ..runtime import setup

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    setup(device)
    quiet = dict(log=lambda s: None, progress=False)
    result: dict = {"reconstruction": [], "classification": [], "fewlabels": {}, "epochs_scale": epochs_scale,
                    "family_epochs_scale_large_datasets": family_epochs_scale, "machine": machine()}
    t_all = time.perf_counter()
    for name in datasets:
        data = load_dataset(name)
        family_scale = family_epochs_scale if len(data.train) > 10000 else 1.0
        log(data.summary())
        for k in codes:
            row = {"dataset": data.name, "code_size": k, "pca": pca_mse(data, k)}
            seed_cfg = scale_epochs(with_code_size(get_preset("stacked", "seed"), k), epochs_scale)
            row["seed preset"] = run_stacked(seed_cfg, data, device, **quiet).metrics["test_mse"]
            for member, changes in FAMILY.items():
                if members and member not in members:
                    continue
                if changes is None:
                    cfg = scale_epochs(with_code_size(get_preset("stacked", "modern"), k), epochs_scale)
                else:
                    changes = dict(changes)
                    if "hidden_sizes" in changes:
                        changes["hidden_sizes"] = (*changes["hidden_sizes"][:-1], k)
                    base = with_code_size(MODERN_MLP, k)
                    cfg = scale_epochs(dataclasses.replace(base, **changes), epochs_scale * family_scale)
                t0 = time.perf_counter()
                row[member] = run_stacked(cfg, data, device, **quiet).metrics["test_mse"]
                log(f"  {data.name} code {k} {member}: test MSE {row[member]:.5f} (PCA {row['pca']:.5f}), "
                    f"{time.perf_counter() - t0:.0f} s")
            family = {m: v for m, v in row.items() if m in FAMILY}
            best = min(family, key=family.get) if family else None
            row["best"] = best
            row["best_over_pca"] = family[best] / row["pca"] if best else None
            result["reconstruction"].append(row)
        for preset in ("seed", "modern"):
            cfg = scale_epochs(get_preset("pretrain", preset), epochs_scale)
            m = run_pretrain(cfg, data, device, **quiet).metrics
            result["classification"].append({"dataset": data.name, "preset": preset, "test_accuracy": m["test_accuracy"],
                                             "seconds": m["seconds"]["total"]})
            log(f"  {data.name} pretrain {preset}: test accuracy {100 * m['test_accuracy']:.2f}%")
        if few_labels:
            cfg = scale_epochs(get_preset("pretrain", "modern"), epochs_scale)
            labels = fewlabels.parse_labels(few_labels, len(data.train))
            result["fewlabels"][data.name] = fewlabels.run(data, labels, seeds, device, cfg, log=log)
        result["seconds"] = time.perf_counter() - t_all
        if on_progress is not None:  # e.g. write what is done so far
            on_progress(result)
    result["seconds"] = time.perf_counter() - t_all
    result["complete"] = True
    return result


def to_markdown(r: dict) -> str:
    from .. import fewlabels

    members = [m for m in FAMILY if any(m in row for row in r["reconstruction"])]
    header = ["dataset", "code", "PCA", "seed preset", *members, "best / PCA"]
    rows = [[row["dataset"], row["code_size"], row["pca"], row["seed preset"], *[row.get(m, "") for m in members],
             f"{row['best_over_pca']:.2f} ({row['best']})" if row["best"] else ""] for row in r["reconstruction"]]
    status = "" if r.get("complete") else ", PARTIAL: still running or stopped early"
    out = [f"Quality benchmark ({r['seconds'] / 60:.0f} min{status}; epochs x{r['epochs_scale']}; family variants on "
           f"datasets over 10k images x{r['family_epochs_scale_large_datasets']})\n\n",
           "Test MSE (lower is better):\n", markdown_table(header, rows),
           "\nTest accuracy of the pretrain program:\n",
           markdown_table(["dataset", "preset", "test accuracy"],
                          [[c["dataset"], c["preset"], f"{100 * c['test_accuracy']:.2f}%"] for c in r["classification"]])]
    for res in r["fewlabels"].values():
        out += ["\n", fewlabels.to_markdown(res)]
    return "".join(out)


def add_arguments(p) -> None:
    p.add_argument("--quick", action="store_true", help="mnist-5k, code 32, a fifth of the epochs, 1 seed: a few minutes")
    p.add_argument("--datasets", default="mnist-5k,fashion-mnist", help="comma-separated datasets (ignored with --quick)")
    p.add_argument("--family-epochs-scale", type=float, default=0.5,
                   help="epochs of the family variants on datasets over 10k images, relative to their recipe")
    p.add_argument("--seeds", type=int, default=3, help="seeds for the few-label table")
    p.add_argument("--json", default="benchmarks/results/quality.json", help="JSON output; the .md table goes beside it")


def run_cli(args) -> int:
    from .report import write_report

    def partial(result):
        write_report(result, to_markdown(result), args.json)

    if args.quick:
        result = run(datasets=("mnist-5k",), codes=(32,), epochs_scale=0.2, few_labels="100,all", seeds=1)
    else:
        result = run(datasets=tuple(d for d in args.datasets.split(",") if d), seeds=args.seeds,
                     family_epochs_scale=args.family_epochs_scale, on_progress=partial)
    return finish(result, to_markdown(result), args.json)


def main(argv=None) -> int:
    import sys

    return script_main(sys.modules[__name__], argv)


