"""The screening runs that chose the modern-stacked recipes by quality per second (docs/recipes.md).

Each trial is the modern recipe base (presets.MODERN_AE, trained by presets.modern_phase: one-cycle AdamW) plus
``--set``-style changes, trained by ``benchmarks.frontier.aekit_curve`` (validation MSE after every epoch against
seconds); the trial is appended to ``benchmarks/results/frontier-search.json``. Wall times compare only within one
invocation of the frontier benchmark; here they only rank recipes against each other.

python -m benchmarks frontier-search fashion-mnist 32 'name:architecture=pca-residual;epochs=30' ...
"""

from __future__ import annotations

import json
from pathlib import Path

NAME = "frontier-search"
OUT = Path("benchmarks/results/frontier-search.json")


def add_arguments(p) -> None:
    p.add_argument("dataset")
    p.add_argument("code_size", type=int)
    p.add_argument("trials", nargs="+", help="NAME:key=value;key=value (the changes to the modern base)")
    p.add_argument("--json", type=Path, default=OUT)


def run_cli(args) -> int:
    import torch

    from aekit.data.catalog import load_dataset
    from aekit.experiments.overrides import apply_overrides
    from aekit.experiments.presets import MODERN_AE, modern_phase
    from aekit.experiments.recipe import Recipe
    from aekit.fileio import write_json
    from aekit.runtime import setup
    from benchmarks.common import machine
    from benchmarks.frontier import aekit_curve
    from benchmarks.quality import pca_mse

    device = torch.device("cpu")
    setup(device)
    data = load_dataset(args.dataset)
    pca = pca_mse(data, args.code_size)
    base = Recipe(**MODERN_AE, display_step=1000, train=modern_phase())
    for trial in args.trials:
        name, _, changes = trial.partition(":")
        changes = dict(pair.split("=", 1) for pair in changes.split(";") if pair)
        cfg = apply_overrides(base, {**changes, "hidden_sizes": changes.get("hidden_sizes", f"1024,512,{args.code_size}")})
        curve = aekit_curve(cfg, data, device)
        print(f"{name}: test MSE {curve['test_mse']:.5f} ({curve['test_mse'] / pca:.3f} x PCA) in {curve['seconds']:.0f} s")
        results = json.loads(args.json.read_text()) if args.json.is_file() else {"trials": []}
        results["trials"].append({"dataset": data.name, "code_size": args.code_size, "name": name, "changes": changes,
                                  "pca": pca, **curve})
        results["machine"] = machine()
        write_json(args.json, results)
    return 0


def main(argv=None) -> int:
    import sys

    from benchmarks.common import script_main

    return script_main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
