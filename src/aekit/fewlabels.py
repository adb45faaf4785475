"""Few-label learning: does pretraining on all images help when only N labels are known?

For each seed: pretrain one autoencoder on every training image (labels unused); then for each N,
fine-tune its encoder plus a softmax head on N class-balanced labeled images, and train the *same*
network from scratch on the same N images. Both arms get the same care: early stopping on the
validation split and the best of a few learning rates, chosen on validation accuracy.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .batches import DeviceBatches
from .data import Dataset, Split
from .errors import ConfigError, DataError
from .fileio import write_json
from .presets import PretrainProgram, get_preset
from .programs import fine_tune
from .recipes import build_autoencoder, train_autoencoder
from .runtime import generator
from .train import accuracy

MIN_UPDATES = 500  # small labeled sets get more epochs, so every N sees at least this many updates


def balanced_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` indices, as equal a share of each class as ``n`` allows, drawn with ``seed``."""
    classes = np.unique(labels)
    if n < len(classes):
        raise ConfigError(f"--labels {n}: need at least one label per class ({len(classes)} classes)")
    rng = np.random.default_rng(seed)
    per = [n // len(classes) + (1 if i < n % len(classes) else 0) for i in range(len(classes))]
    picked = []
    for c, k in zip(classes, per):
        pool = np.flatnonzero(labels == c)
        if k > len(pool):
            raise ConfigError(f"--labels {n}: class {c} has only {len(pool)} training images")
        picked.append(rng.choice(pool, size=k, replace=False))
    return rng.permutation(np.concatenate(picked))


def parse_labels(text: str, n_train: int) -> list[int | str]:
    out: list[int | str] = []
    for part in text.split(","):
        part = part.strip()
        if part == "all":
            out.append("all")
        elif part.isdigit() and 0 < int(part) <= n_train:
            out.append(int(part))
        else:
            raise ConfigError(f"--labels {text!r}: each entry must be 'all' or an integer in [1, {n_train}]; got {part!r}")
    return out


def _classifier_accuracy(cfg: PretrainProgram, ae, data: Dataset, idx: np.ndarray, device, seed: int, lr: float, log,
                         unlabeled: DeviceBatches | None = None):
    """Fine-tune ``ae``'s encoder (a copy) on the rows ``idx``; (validation accuracy, test accuracy, epochs run)."""
    n = len(idx)
    batch = min(cfg.batch_size, n)
    steps = n // batch
    epochs = max(cfg.finetune_epochs, math.ceil(MIN_UPDATES / steps))
    patience = max(cfg.finetune_early_stopping, math.ceil(epochs / 6))
    run_cfg = dataclasses.replace(cfg, finetune_learning_rate=lr, finetune_epochs=epochs, finetune_early_stopping=patience,
                                  display_step=0)
    sub = dataclasses.replace(data, train=Split(data.train.images[idx], data.train.labels[idx]))
    batches = DeviceBatches(sub.train.images, sub.train.labels, batch_size=batch, device=device, seed=seed + 7)
    clf, hist = fine_tune(run_cfg, copy.deepcopy(ae), sub, batches, device, generator(seed + 11), log=log, progress=False,
                          unlabeled=unlabeled)
    val = accuracy(clf, data.validation.images, data.validation.labels, device)
    return val, accuracy(clf, data.test.images, data.test.labels, device), len(hist.epoch_loss)


def run(data: Dataset, labels: list, seeds: int, device, cfg: PretrainProgram | None = None,
        learning_rates=(3e-4, 1e-3, 3e-3), log: Callable[[str], None] = print) -> dict:
    if data.train.labels is None or data.validation.labels is None or data.test.labels is None:
        raise DataError(f"dataset {data.name!r} needs labels for few-label learning")
    cfg = cfg or get_preset("pretrain", "modern")
    rows, t0 = [], time.perf_counter()
    quiet = lambda s: None  # noqa: E731
    for seed in range(seeds):
        ae = build_autoencoder(cfg, data, generator(seed), device)
        scratch = copy.deepcopy(ae)  # the same network, untrained
        batches = DeviceBatches(data.train.images, batch_size=cfg.batch_size, device=device, seed=seed)
        train_autoencoder(ae, dataclasses.replace(cfg, display_step=0), data, batches, cfg.pretrain_epochs,
                          cfg.pretrain_optimizer, cfg.pretrain_learning_rate, log=quiet, progress=False)
        for n in labels:
            idx = np.arange(len(data.train)) if n == "all" else balanced_subset(data.train.labels, n, seed)
            arms = {}
            # With every label the recipe's own learning rate is used: tuning it there costs the most and matters least.
            rates = (cfg.finetune_learning_rate,) if n == "all" else learning_rates
            # Only the pretrained arm may keep reconstructing the unlabeled images (if the recipe says so);
            # the scratch arm is the same network on the labels alone.
            for arm, start, pool in (("pretrained", ae, batches), ("scratch", scratch, None)):
                tried = [(lr, *_classifier_accuracy(cfg, start, data, idx, device, seed, lr, quiet, pool)) for lr in rates]
                best = max(tried, key=lambda t: t[1])  # chosen on validation accuracy
                arms[arm] = {"accuracy": best[2], "learning_rate": best[0], "validation_accuracy": best[1], "epochs": best[3]}
            row = {"labels": len(idx) if n != "all" else "all", "n": int(len(idx)), "seed": seed,
                   "pretrained_accuracy": arms["pretrained"]["accuracy"], "scratch_accuracy": arms["scratch"]["accuracy"],
                   "details": arms}
            rows.append(row)
            log(f"seed {seed}, {row['labels']} labels: pretrained {100 * row['pretrained_accuracy']:.2f}%, "
                f"scratch {100 * row['scratch_accuracy']:.2f}%")
    return {"dataset": data.name, "n_train": len(data.train), "n_validation": len(data.validation), "seeds": seeds,
            "learning_rates": list(learning_rates), "config": dataclasses.asdict(cfg), "rows": rows,
            "summary": summarize(rows), "seconds": time.perf_counter() - t0}


def summarize(rows: list[dict]) -> list[dict]:
    out = []
    for key in dict.fromkeys(r["labels"] for r in rows):
        sel = [r for r in rows if r["labels"] == key]
        pre = np.array([r["pretrained_accuracy"] for r in sel])
        scr = np.array([r["scratch_accuracy"] for r in sel])
        out.append({"labels": key, "pretrained_mean": float(pre.mean()), "pretrained_std": float(pre.std()),
                    "scratch_mean": float(scr.mean()), "scratch_std": float(scr.std()),
                    "gain_points": float(100 * (pre.mean() - scr.mean()))})
    return out


def to_markdown(result: dict) -> str:
    head = (f"Few-label accuracy on {result['dataset']} (mean ± std over {result['seeds']} seeds; pretraining on all "
            f"{result['n_train']} training images; both arms early-stopped and tuned on {result['n_validation']} "
            f"validation images), {result['seconds']:.0f} s\n\n")
    lines = ["| labels | pretrained + fine-tuned | from scratch | gain (points) |", "|---|---|---|---|"]
    for s in result["summary"]:
        lines.append(f"| {s['labels']} | {100 * s['pretrained_mean']:.2f} ± {100 * s['pretrained_std']:.2f} | "
                     f"{100 * s['scratch_mean']:.2f} ± {100 * s['scratch_std']:.2f} | {s['gain_points']:+.2f} |")
    return head + "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    from .figures import _figure, _save

    fig = _figure((5.2, 3.6))
    ax = fig.subplots()
    summary = result["summary"]
    xs = [s["labels"] if s["labels"] != "all" else result["n_train"] for s in summary]
    for key, name in (("pretrained", "pretrained + fine-tuned"), ("scratch", "from scratch")):
        means = np.array([100 * s[f"{key}_mean"] for s in summary])
        stds = np.array([100 * s[f"{key}_std"] for s in summary])
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labeled training images")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{result['dataset']}: few-label learning", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def write(result: dict, out: Path) -> None:
    from .fileio import atomic_open

    plot(result, out / "fewlabels.png")
    with atomic_open(out / "fewlabels.md", "w") as f:
        f.write(to_markdown(result))
    write_json(out / "fewlabels.json", result)
