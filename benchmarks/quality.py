"""Quality benchmark: reconstruction against PCA, classification against the tutorial, few labels.

For each dataset and code size it reports the test MSE of PCA (scikit-learn, same run), of the
seed preset, and of each member of the autoencoder family built on the modern recipe; then the
test accuracy of the seed and modern pretrain programs; then the few-label tables (the autoencoder
recipe, and the ladder network at 100 labels: ``aekit fewlabels --method ladder``). ``--quick``
shrinks everything (mnist-5k, one code size, a fraction of the epochs) to a few minutes.
"""

from __future__ import annotations

import dataclasses
import time

from aekit.errors import ConfigError
from benchmarks.common import finish, machine, markdown_table, script_main

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


SECTIONS = ("reconstruction", "classification", "fewlabels", "ladder")


def run(datasets=("mnist-5k", "fashion-mnist"), codes=(32, 128), epochs_scale: float = 1.0, few_labels="100,300,1000,all",
        seeds: int = 3, members=None, family_epochs_scale: float = 1.0, log=print, on_progress=None,
        sections=SECTIONS, ladder_labels="100") -> dict:
    """``family_epochs_scale`` shortens the family variants (not the seed and modern presets) to fit the time;
    ``sections`` picks what to measure (see :func:`merge` to refresh some sections of an earlier report)."""
    import torch

    from aekit.data.catalog import load_dataset
    from aekit.experiments import fewlabels
    from aekit.experiments.overrides import scale_epochs, with_code_size
    from aekit.experiments.presets import MODERN_MLP, get_preset
    from aekit.experiments.programs import run_pretrain, run_stacked
    from aekit.runtime import setup

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    setup(device)
    quiet = dict(log=lambda s: None, progress=False)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"--sections {','.join(sorted(unknown))}: unknown; choose from {', '.join(SECTIONS)}")
    result: dict = {"reconstruction": [], "classification": [], "fewlabels": {}, "ladder": {}, "epochs_scale": epochs_scale,
                    "family_epochs_scale_large_datasets": family_epochs_scale, "machine": machine(),
                    "sections": {name: {"date": time.strftime("%Y-%m-%d"), "seconds": 0.0} for name in sections}}
    t_all = time.perf_counter()
    for name in datasets:
        data = load_dataset(name)
        family_scale = family_epochs_scale if len(data.train) > 10000 else 1.0
        log(data.summary())
        t0 = time.perf_counter()
        for k in (codes if "reconstruction" in sections else ()):
            row = {"dataset": data.name, "code_size": k, "pca": pca_mse(data, k)}
            seed_cfg = scale_epochs(with_code_size(get_preset("stacked", "tutorial"), k), epochs_scale)
            row["seed preset"] = run_stacked(seed_cfg, data, device, **quiet).metrics["test_mse"]
            for member, changes in FAMILY.items():
                if members and member not in members:
                    continue
                if changes is None:
                    cfg = get_preset("stacked", "modern", code_size=k, n_train=len(data.train),
                                     image_shape=data.image_shape)
                    cfg = scale_epochs(with_code_size(cfg, k), epochs_scale)
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
        _timed(result, "reconstruction", t0)
        t0 = time.perf_counter()
        for preset in (("seed", "modern") if "classification" in sections else ()):  # "seed": the tutorial preset
            cfg = scale_epochs(get_preset("pretrain", "tutorial" if preset == "seed" else preset), epochs_scale)
            m = run_pretrain(cfg, data, device, **quiet).metrics
            result["classification"].append({"dataset": data.name, "preset": preset, "test_accuracy": m["test_accuracy"],
                                             "seconds": m["seconds"]["total"]})
            log(f"  {data.name} pretrain {preset}: test accuracy {100 * m['test_accuracy']:.2f}%")
        _timed(result, "classification", t0)
        t0 = time.perf_counter()
        if few_labels and "fewlabels" in sections:
            cfg = scale_epochs(get_preset("pretrain", "modern"), epochs_scale)
            labels = fewlabels.parse_labels(few_labels, len(data.train))
            result["fewlabels"][data.name] = fewlabels.run(data, labels, seeds, device, cfg, log=log)
        _timed(result, "fewlabels", t0)
        t0 = time.perf_counter()
        if ladder_labels and "ladder" in sections:
            labels = fewlabels.parse_labels(ladder_labels, len(data.train))
            ladder = scale_epochs(get_preset("pretrain", "ladder"), epochs_scale)
            result["ladder"][data.name] = fewlabels.run_ladder(data, labels, seeds, device, ladder, log=log)
        _timed(result, "ladder", t0)
        result["seconds"] = time.perf_counter() - t_all
        if on_progress is not None:  # e.g. write what is done so far
            on_progress(result)
    result["seconds"] = time.perf_counter() - t_all
    result["complete"] = True
    return result


def _timed(result: dict, section: str, t0: float) -> None:
    if section in result["sections"]:
        result["sections"][section]["seconds"] += time.perf_counter() - t0


def merge(previous: dict, fresh: dict) -> dict:
    """``previous`` with the sections measured in ``fresh`` replaced (few-label tables per dataset)."""
    out = dict(previous)
    out.setdefault("sections", {name: {"date": "an earlier run", "seconds": None} for name in SECTIONS})
    for name in fresh["sections"]:
        if name in ("fewlabels", "ladder"):  # tables per dataset
            out[name] = {**previous.get(name, {}), **fresh[name]}
        else:
            keys = {(row["dataset"], row.get("code_size"), row.get("preset")) for row in fresh[name]}
            out[name] = [row for row in previous.get(name, [])
                         if (row["dataset"], row.get("code_size"), row.get("preset")) not in keys] + fresh[name]
        out["sections"] = {**out["sections"], name: fresh["sections"][name]}
    out["machine"], out["complete"] = fresh["machine"], previous.get("complete", False) and fresh.get("complete", False)
    return out


def reconstruction_table(r: dict) -> str:
    """Test MSE of PCA, the seed preset and each family member, per dataset and code size (also in docs/)."""
    members = [m for m in FAMILY if any(m in row for row in r["reconstruction"])]
    header = ["dataset", "code", "PCA", "seed preset", *members, "best / PCA"]
    rows = [[row["dataset"], row["code_size"], row["pca"], row["seed preset"], *[row.get(m, "") for m in members],
             f"{row['best_over_pca']:.2f} ({row['best']})" if row["best"] else ""] for row in r["reconstruction"]]
    return markdown_table(header, rows)


def classification_table(r: dict) -> str:
    """Test accuracy of the seed and modern pretrain programs (also in docs/)."""
    return markdown_table(["dataset", "preset", "test accuracy"],
                          [[c["dataset"], c["preset"], f"{100 * c['test_accuracy']:.2f}%"] for c in r["classification"]])


def to_markdown(r: dict) -> str:
    from aekit.experiments import fewlabels

    status = "" if r.get("complete") else ", PARTIAL: still running or stopped early"
    took = "sections from separate runs" if _section_lines(r) else f"{r['seconds'] / 60:.0f} min"
    out = [f"Quality benchmark ({took}{status}; epochs x{r['epochs_scale']}; family variants on "
           f"datasets over 10k images x{r['family_epochs_scale_large_datasets']})\n\n",
           *_section_lines(r),
           "Test MSE (lower is better):\n", reconstruction_table(r),
           "\nTest accuracy of the pretrain program:\n", classification_table(r)]
    for res in [*r["fewlabels"].values(), *r.get("ladder", {}).values()]:
        out += ["\n", fewlabels.to_markdown(res)]
    return "".join(out)


def _section_lines(r: dict) -> list[str]:
    """When sections were measured on different days (a refresh with --sections), say which is which."""
    sections = r.get("sections", {})
    if len({v["date"] for v in sections.values()}) <= 1:
        return []
    parts = [f"{name}: {v['date']}" + (f" ({v['seconds'] / 60:.0f} min)" if v.get("seconds") else "")
             for name, v in sections.items()]
    return [f"Sections measured: {'; '.join(parts)}.\n\n"]


def add_arguments(p) -> None:
    p.add_argument("--quick", action="store_true", help="mnist-5k, code 32, a fifth of the epochs, 1 seed: a few minutes")
    p.add_argument("--datasets", default="mnist-5k,fashion-mnist", help="comma-separated datasets (ignored with --quick)")
    p.add_argument("--family-epochs-scale", type=float, default=0.5,
                   help="epochs of the family variants on datasets over 10k images, relative to their recipe")
    p.add_argument("--seeds", type=int, default=3, help="seeds for the few-label table")
    p.add_argument("--json", default="benchmarks/results/quality.json", help="JSON output; the .md table goes beside it")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help="what to measure; with fewer than all, the other sections are kept from the existing --json file")


def run_cli(args) -> int:
    import json
    from pathlib import Path

    from benchmarks.common import write_report

    sections = tuple(x.strip() for x in args.sections.split(",") if x.strip())
    previous = None
    if set(sections) != set(SECTIONS) and not args.quick:
        path = Path(args.json)
        if not path.is_file():
            raise ConfigError(f"--sections {args.sections}: keeps the other sections from --json {path}, which does not "
                              f"exist; run every section first (leave out --sections)")
        previous = json.loads(path.read_text())

    def combined(result):
        return result if previous is None else merge(previous, result)

    def partial(result):
        r = combined(result)
        write_report(r, to_markdown(r), args.json)

    if args.quick:
        result = run(datasets=("mnist-5k",), codes=(32,), epochs_scale=0.2, few_labels="100,all", seeds=1, sections=sections)
    else:
        result = run(datasets=tuple(d for d in args.datasets.split(",") if d), seeds=args.seeds,
                     family_epochs_scale=args.family_epochs_scale, on_progress=partial, sections=sections)
    result = combined(result)
    return finish(result, to_markdown(result), args.json)


def main(argv=None) -> int:
    import sys

    return script_main(sys.modules[__name__], argv)


