"""Pretraining with every label: the conv preset's pretrained network against the same network from scratch.

For each seed, ``aekit reproduce pretrain --preset conv`` twice on the same data: as the preset runs
(a convolutional autoencoder pretrained on the training images, then its encoder fine-tuned with a softmax
head on every label), and with ``finetune.mode=scratch`` (the same network and fine-tuning, no pretraining).
Test accuracy on the official test split, validation accuracy beside it; mean and std over seeds, and the
gain in units of the larger std.
"""

from __future__ import annotations

import time

from benchmarks.common import finish, machine, markdown_table, script_main

NAME = "pretrain-gain"
ARMS = {"full": "pretrained + fine-tuned", "scratch": "from scratch"}


def run(dataset: str = "fashion-mnist", seeds: int = 5, flip: bool = True, log=print) -> dict:
    import dataclasses

    import numpy as np
    import torch

    from aekit.data.catalog import load_dataset
    from aekit.experiments.presets import get_preset
    from aekit.experiments.programs import run_pretrain
    from aekit.training.evaluate import accuracy

    data = load_dataset(dataset)
    preset = get_preset("pretrain", "conv")
    preset = dataclasses.replace(preset, display_step=0, finetune=dataclasses.replace(preset.finetune, augment_flip=flip))
    cpu = torch.device("cpu")
    rows, t0 = [], time.perf_counter()
    for seed in range(seeds):
        for arm in ARMS:
            cfg = dataclasses.replace(preset, finetune=dataclasses.replace(preset.finetune, mode=arm))
            t1 = time.perf_counter()
            result = run_pretrain(cfg, data, cpu, seed=seed, log=lambda s: None, progress=False)
            rows.append({"seed": seed, "arm": arm, "test_accuracy": result.metrics["test_accuracy"],
                         "validation_accuracy": accuracy(result.classifier, data.validation.images,
                                                         data.validation.labels, cpu),
                         "seconds": time.perf_counter() - t1})
            log(f"seed {seed} {ARMS[arm]}: test {100 * rows[-1]['test_accuracy']:.2f}%, "
                f"validation {100 * rows[-1]['validation_accuracy']:.2f}%, {rows[-1]['seconds']:.0f} s")
    summary = {}
    for arm in ARMS:
        acc = np.array([r["test_accuracy"] for r in rows if r["arm"] == arm])
        summary[arm] = {"mean": float(acc.mean()), "std": float(acc.std())}
    gain = summary["full"]["mean"] - summary["scratch"]["mean"]
    spread = max(summary["full"]["std"], summary["scratch"]["std"])
    return {"dataset": data.name, "seeds": seeds, "recipe": dataclasses.asdict(preset), "rows": rows, "summary": summary,
            "gain_points": 100 * gain, "gain_in_stds": gain / spread if spread > 0 else None,
            "seconds": time.perf_counter() - t0, "machine": machine()}


def to_markdown(r: dict) -> str:
    flip = " and mirrored" if r["recipe"]["finetune"]["augment_flip"] else ""
    head = (f"All {r['dataset']} labels, the conv preset (`--preset conv`, fine-tuning on views shifted{flip}) pretrained "
            f"and from scratch, mean ± std over {r['seeds']} seeds, {r['seconds']:.0f} s\n\n")
    rows = [[ARMS[a], f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f}"] for a, s in r["summary"].items()]
    stds = "" if r["gain_in_stds"] is None else f" ({r['gain_in_stds']:+.1f} std)"
    rows.append(["gain (points)", f"{r['gain_points']:+.2f}{stds}"])
    return head + markdown_table(["arm", "test accuracy (%)"], rows)


def add_arguments(p) -> None:
    p.add_argument("--dataset", default="fashion-mnist", help="labeled image dataset")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--no-flip", action="store_true", help="leave finetune.augment_flip off (digits, letters)")
    p.add_argument("--json", default="benchmarks/results/pretrain-gain.json", help="JSON output; the .md goes beside it")


def run_cli(args) -> int:
    from aekit.errors import ConfigError

    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds} must be positive")
    result = run(args.dataset, args.seeds, not args.no_flip)
    return finish(result, to_markdown(result), args.json)


def main(argv=None) -> int:
    import sys

    return script_main(sys.modules[__name__], argv)
