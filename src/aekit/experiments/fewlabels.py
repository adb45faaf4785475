"""Few-label learning: does pretraining on all images help when only N labels are known?

For each seed: pretrain one autoencoder on every training image (labels unused); then, for each N,
fine-tune its encoder plus a softmax head on N class-balanced labeled images, and train the *same*
network from scratch on the same N labeled images. Both get the same care: early stopping on the
validation split and the best of a few learning rates, chosen on validation accuracy.

When the recipe is semi-supervised (``finetune.pseudo_label_weight`` or ``finetune.reconstruction_weight``,
as in the modern preset), the pretrained network is also fine-tuned with the other training images,
without their labels, and that result is kept only if it beats the supervised one on validation
accuracy. Two more arms separate what pretraining brings from what the unlabeled images bring: the
pretrained network on the labels alone, and the same semi-supervised choice from the scratch network.

``run_ladder`` (``aekit fewlabels --method ladder``) fills the same four arms with a ladder network
(see ladder.py), pretrained with its denoising cost alone.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from typing import Callable

import numpy as np

from aekit.data.arrays import Dataset, Split
from aekit.data.batches import DeviceBatches, make_batches
from aekit.data.images import is_image_shape
from aekit.errors import ConfigError, DataError
from aekit.experiments.builders import build_autoencoder, train_autoencoder
from aekit.experiments.presets import get_preset
from aekit.experiments.programs import fine_tune, semi_supervised
from aekit.experiments.recipe import Finetune, Recipe
from aekit.models.ladder import LadderNetwork
from aekit.runtime import generator, seeded_global_rng
from aekit.training.evaluate import accuracy, encode
from aekit.training.ladder import train_ladder
from aekit.training.propagation import PoissonClassifier
from aekit.training.resume import ResumeStore

# The few-label protocol: how long each fine-tuning runs, whatever the recipe's finetune.epochs (every label count
# gets the same care). Recorded in each result ("protocol") and each trial's epochs.
PROTOCOL = {
    "min_updates": 500,  # small labeled sets get more epochs, so every N sees at least this many updates
    "semi_updates": 4000,  # semi-supervised fine-tuning: epochs over the unlabeled images to make about this many
    "min_patience_share": 1 / 6,  # early-stopping patience: at least this share of the epochs
    "max_validations": 100,  # validation accuracy measured at most about this often per fine-tuning (every k epochs)
}
ARM_TITLES = {"pretrained": "pretrained + fine-tuned", "scratch": "from scratch",
              "pretrained_labels_only": "pretrained, labels only", "scratch_semi_supervised": "scratch, semi-supervised"}
PROPAGATE_TITLES = {**ARM_TITLES, "pretrained": "codes (pretrained)", "scratch": "pixels (no pretraining)",
                    "pretrained_transductive": "codes, transductive"}


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


@dataclasses.dataclass
class Trial:
    learning_rate: float
    validation_accuracy: float
    accuracy: float  # on the test split
    epochs: int  # epochs run (steps, for the ladder)

    def summary(self, semi_supervised: bool) -> dict:
        return {"accuracy": self.accuracy, "learning_rate": self.learning_rate,
                "validation_accuracy": self.validation_accuracy, "epochs": self.epochs, "semi_supervised": semi_supervised}


def protocol_finetune(ft: Finetune, labeled_batches: int, unlabeled_batches: int | None) -> Finetune:
    """``ft`` with the protocol's epochs, patience and validation interval for a labeled set of
    ``labeled_batches`` batches (semi-supervised: an epoch is ``unlabeled_batches`` steps)."""
    if unlabeled_batches is not None:
        epochs = math.ceil(PROTOCOL["semi_updates"] / unlabeled_batches)
    else:
        epochs = max(ft.supervised_epochs or ft.epochs, math.ceil(PROTOCOL["min_updates"] / labeled_batches))
    patience = max(ft.early_stopping, math.ceil(epochs * PROTOCOL["min_patience_share"]))
    every = max(ft.validate_every, math.ceil(epochs / PROTOCOL["max_validations"]))
    return dataclasses.replace(ft, epochs=epochs, early_stopping=patience, validate_every=every)


def _fine_tune(cfg: Recipe, ae, data: Dataset, idx: np.ndarray, device, seed: int, lr: float,
               unlabeled: DeviceBatches | None = None, store: ResumeStore | None = None, phase: str = "finetune") -> Trial:
    """Fine-tune a copy of ``ae``'s encoder on the labeled rows ``idx``, semi-supervised when ``unlabeled``
    images are given; early-stopped on validation accuracy."""
    batch = min(cfg.batch_size, len(idx))
    finetune = protocol_finetune(cfg.finetune, len(idx) // batch, None if unlabeled is None else len(unlabeled))
    run_cfg = dataclasses.replace(cfg, finetune=dataclasses.replace(finetune, learning_rate=lr), display_step=0)
    sub = dataclasses.replace(data, train=Split(data.train.images[idx], data.train.labels[idx]))
    batches = make_batches(sub.train.images, sub.train.labels, batch_size=batch, device=device, seed=seed + 7)
    with seeded_global_rng(seed, device):  # dropout and noise: each run repeatable whatever ran before it
        clf, hist = fine_tune(run_cfg, copy.deepcopy(ae), sub, batches, device, generator(seed + 11), log=lambda s: None,
                              progress=False, unlabeled=unlabeled, store=store, phase=phase)
    val = accuracy(clf, data.validation.images, data.validation.labels, device)
    return Trial(lr, val, accuracy(clf, data.test.images, data.test.labels, device), len(hist.epoch_loss))


def unlabeled_pool(cfg: Recipe, data: Dataset, idx: np.ndarray, device, seed: int) -> DeviceBatches | None:
    """The training images outside ``idx`` (their labels unused), or None when there are too few for one batch."""
    rest = np.setdiff1d(np.arange(len(data.train)), idx)
    if len(rest) < cfg.batch_size:
        return None
    return make_batches(data.train.images[rest], batch_size=cfg.batch_size, device=device, seed=seed + 13)


def compare_arms(trial: Callable[..., Trial], pretrained, scratch, rates, recipe_rate: float, semi: bool) -> dict:
    """The arms for one label set. ``trial(start, lr, semi)`` trains a copy of ``start``.

    Supervised training, from the pretrained weights and from scratch: the best of ``rates`` on validation. A
    semi-supervised recipe also trains with the unlabeled images (at its own rate) and keeps that only if it beats
    the supervised result on validation: one more candidate for the same validation choice. The same rule from
    scratch shows what the unlabeled images bring alone."""
    supervised = {arm: max((trial(start, lr, False) for lr in rates), key=lambda t: t.validation_accuracy)
                  for arm, start in (("pretrained", pretrained), ("scratch", scratch))}
    arms = {arm: t.summary(False) for arm, t in supervised.items()}
    if semi:
        arms["pretrained_labels_only"] = arms["pretrained"]
        for arm, start, base in (("pretrained", pretrained, "pretrained"), ("scratch_semi_supervised", scratch, "scratch")):
            t = trial(start, recipe_rate, True)
            better = t.validation_accuracy > supervised[base].validation_accuracy
            arms[arm] = t.summary(True) if better else supervised[base].summary(False)
    return arms


def _row(n, idx: np.ndarray, seed: int, arms: dict, log: Callable[[str], None], titles: dict = ARM_TITLES) -> dict:
    row = {"labels": len(idx) if n != "all" else "all", "n": int(len(idx)), "seed": seed,
           **{f"{arm}_accuracy": a["accuracy"] for arm, a in arms.items()}, "details": arms}
    log(f"seed {seed}, {row['labels']} labels: " + ", ".join(
        f"{titles[arm]} {100 * a['accuracy']:.2f}%" for arm, a in arms.items()))
    return row


def _require_labels(data: Dataset) -> None:
    if data.train.labels is None or data.validation.labels is None or data.test.labels is None:
        raise DataError(f"dataset {data.name!r} needs labels for few-label learning")


def _labeled_rows(data: Dataset, n, seed: int) -> np.ndarray:
    return np.arange(len(data.train)) if n == "all" else balanced_subset(data.train.labels, n, seed)


def _result(data: Dataset, method: str, seeds: int, learning_rates, config, rows: list, t0: float) -> dict:
    return {"dataset": data.name, "method": method, "n_train": len(data.train), "n_validation": len(data.validation),
            "seeds": seeds, "learning_rates": list(learning_rates), "config": dataclasses.asdict(config),
            "protocol": PROTOCOL if method == "autoencoder" else None, "rows": rows,
            "summary": summarize(rows), "seconds": time.perf_counter() - t0, "examples": _examples(data)}


def _examples(data: Dataset) -> str:
    """What one example is called in logs and tables."""
    return "images" if is_image_shape(data.image_shape) else "rows"


def _phase(seed: int, n, start_name: str, lr: float, semi: bool) -> str:
    """The resumable phase of one trial: unique within a few-label run."""
    return f"seed{seed}-labels{n}-{start_name}-lr{lr:g}{'-semi' if semi else ''}"


def _pretrain(ae, cfg: Recipe, data: Dataset, device, seed: int, store: ResumeStore | None) -> None:
    """Train ``ae`` on every training image (labels unused): one seed's pretraining, resumable."""
    batches = make_batches(data.train.images, batch_size=cfg.batch_size, device=device, seed=seed)
    with seeded_global_rng(seed, device):  # masking noise: repeatable whatever ran before in the process
        train_autoencoder(ae, dataclasses.replace(cfg, display_step=0), data, batches, log=lambda s: None,
                          progress=False, store=store, phase=f"seed{seed}-pretrain")


def run(data: Dataset, labels: list, seeds: int, device, cfg: Recipe | None = None,
        learning_rates=(3e-4, 1e-3, 3e-3), log: Callable[[str], None] = print, store: ResumeStore | None = None) -> dict:
    """Every arm for every label count and seed; with a ``store`` each training saves its state and a resumed
    run continues where it stopped (see :mod:`aekit.training.resume`)."""
    _require_labels(data)
    cfg = cfg or get_preset("pretrain", "modern")
    if cfg.finetune is None:
        raise ConfigError("few-label learning needs a pretrain recipe (with a finetune phase)")
    labels_only = dataclasses.replace(cfg, finetune=dataclasses.replace(cfg.finetune, reconstruction_weight=0.0,
                                                                        pseudo_label_weight=0.0, cutout=0.0))
    rows, t0 = [], time.perf_counter()
    for seed in range(seeds):
        ae = build_autoencoder(cfg, data, generator(seed), device)
        scratch = copy.deepcopy(ae)  # the same network, untrained
        _pretrain(ae, cfg, data, device, seed, store)
        for n in labels:
            idx = _labeled_rows(data, n, seed)
            pool = unlabeled_pool(cfg, data, idx, device, seed)

            def trial(start, lr, semi, idx=idx, pool=pool, n=n):
                return _fine_tune(cfg if semi else labels_only, start, data, idx, device, seed, lr, pool if semi else None,
                                  store, _phase(seed, n, "pretrained" if start is ae else "scratch", lr, semi))

            # with every label, the recipe's own rate: tuning there costs the most and matters least
            rates = (cfg.finetune.learning_rate,) if n == "all" else learning_rates
            arms = compare_arms(trial, ae, scratch, rates, cfg.finetune.learning_rate, semi_supervised(cfg, pool))
            rows.append(_row(n, idx, seed, arms, log))
    return _result(data, "autoencoder", seeds, learning_rates, cfg, rows, t0)


def run_ladder(data: Dataset, labels: list, seeds: int, device, recipe: Recipe | None = None,
               learning_rates=(1e-3, 3e-3), log: Callable[[str], None] = print, store: ResumeStore | None = None) -> dict:
    """The same four arms with a ladder network (``architecture="ladder"``, the ``ladder`` preset): pretrained on
    every training image with its denoising cost (``train``), then fine-tuned on the labels plus the denoising cost
    on the other images (``finetune``; kept if it beats fine-tuning on the labels alone, for
    ``finetune.supervised_epochs``, on validation); from scratch, the same network on the labels alone; the
    ablations fine-tune the pretrained network on the labels alone, and train from scratch semi-supervised (the
    paper's ladder)."""
    _require_labels(data)
    recipe = recipe or get_preset("pretrain", "ladder")
    if recipe.architecture != "ladder":
        raise ConfigError(f"--method ladder trains a ladder network; the recipe has architecture={recipe.architecture!r}")
    rows, t0 = [], time.perf_counter()
    validation = (data.validation.images, data.validation.labels)
    ft = recipe.finetune
    for seed in range(seeds):
        scratch = LadderNetwork(data.n_features, data.n_classes, recipe, generator(seed)).to(device)
        pretrained = copy.deepcopy(scratch)
        with seeded_global_rng(seed, device):
            train_ladder(pretrained, recipe.train, device, generator(seed), unlabeled=data.train.images,
                         state=None if store is None else store.phase(f"seed{seed}-pretrain"))
        for n in labels:
            idx = _labeled_rows(data, n, seed)
            rest = np.setdiff1d(np.arange(len(data.train)), idx)
            pool = data.train.images[rest] if len(rest) >= recipe.batch_size else None

            def trial(start, lr, semi, idx=idx, pool=pool, n=n):
                net = copy.deepcopy(start)
                name = _phase(seed, n, "pretrained" if start is pretrained else "scratch", lr, semi)
                phase = dataclasses.replace(ft, learning_rate=lr,
                                            epochs=ft.epochs if semi else ft.supervised_epochs or ft.epochs)
                with seeded_global_rng(seed, device):  # the ladder's noise
                    result = train_ladder(net, phase, device, generator(seed + 11), unlabeled=pool if semi else None,
                                          labeled=(data.train.images[idx], data.train.labels[idx]), validation=validation,
                                          state=None if store is None else store.phase(name))
                return Trial(lr, result.validation_accuracy, accuracy(net, data.test.images, data.test.labels, device),
                             phase.epochs * recipe.steps_per_epoch)

            rates = (ft.learning_rate,) if n == "all" else learning_rates
            arms = compare_arms(trial, pretrained, scratch, rates, ft.learning_rate, pool is not None)
            rows.append(_row(n, idx, seed, arms, log))
    return _result(data, "ladder", seeds, learning_rates, recipe, rows, t0)


def run_propagate(data: Dataset, labels: list, seeds: int, device, cfg: Recipe | None = None,
                  log: Callable[[str], None] = print, store: ResumeStore | None = None) -> dict:
    """Label propagation instead of fine-tuning (:mod:`aekit.training.propagation`): the autoencoder pretrained as in
    :func:`run`, then Poisson learning on a kNN graph of its codes of the training images (inductive: validation
    and test images are classified by their neighbours in that graph). From scratch is the same on the pixels;
    the transductive arm puts the test images in the graph too (it sees them, unlabeled, as Calder et al. did)."""
    import torch

    _require_labels(data)
    cfg = cfg or get_preset("pretrain", "modern")
    rows, t0 = [], time.perf_counter()
    titles = arm_titles({"method": "propagate", "examples": _examples(data)})
    splits = (data.train, data.validation, data.test)
    pixels = [torch.as_tensor(s.images.reshape(len(s.images), -1), device=device).float() for s in splits]
    for seed in range(seeds):
        ae = build_autoencoder(cfg, data, generator(seed), device)
        _pretrain(ae, cfg, data, device, seed, store)
        codes = [torch.as_tensor(encode(ae, s.images, device), device=device).float() for s in splits]
        for n in labels:
            idx = _labeled_rows(data, n, seed)
            labeled = torch.as_tensor(idx, device=device)
            y = torch.as_tensor(data.train.labels[idx], device=device).long()

            def trial(features, transductive=False):
                train, validation, test = features
                if transductive:
                    clf = PoissonClassifier(torch.cat([train, test]), labeled, y, data.n_classes)
                    test_pred = clf.scores[len(train):].argmax(1)
                else:
                    clf = PoissonClassifier(train, labeled, y, data.n_classes)
                    test_pred = clf.predict(test)
                val = float((clf.predict(validation).cpu().numpy() == data.validation.labels).mean())
                return Trial(0.0, val, float((test_pred.cpu().numpy() == data.test.labels).mean()), clf.iterations)

            arms = {"pretrained": trial(codes).summary(False), "scratch": trial(pixels).summary(False),
                    "pretrained_transductive": trial(codes, transductive=True).summary(False)}
            rows.append(_row(n, idx, seed, arms, log, titles))
    return _result(data, "propagate", seeds, (), cfg, rows, t0)


def arm_titles(result: dict) -> dict:
    """The arms' names in tables and figures for a result of ``run``, ``run_ladder`` or ``run_propagate``."""
    if result.get("method") != "propagate":
        return ARM_TITLES
    if result.get("examples", "images") == "images":
        return PROPAGATE_TITLES
    return {**PROPAGATE_TITLES, "scratch": "inputs (no pretraining)"}


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and std over seeds of every arm, per label count; the gain is pretrained minus scratch."""
    out = []
    for key in dict.fromkeys(r["labels"] for r in rows):
        sel = [r for r in rows if r["labels"] == key]
        entry: dict = {"labels": key}
        for arm in dict.fromkeys(k.removesuffix("_accuracy") for r in sel for k in r if k.endswith("_accuracy")):
            values = np.array([r[f"{arm}_accuracy"] for r in sel if f"{arm}_accuracy" in r])
            entry[f"{arm}_mean"], entry[f"{arm}_std"] = float(values.mean()), float(values.std())
        entry["gain_points"] = 100 * (entry["pretrained_mean"] - entry["scratch_mean"])
        entry["pretrained_semi_supervised_runs"] = sum(r["details"]["pretrained"]["semi_supervised"] for r in sel)
        entry["runs"] = len(sel)
        out.append(entry)
    return out


def _seeds(result: dict) -> str:
    n = result["seeds"]
    return f"mean ± std over {n} seeds" if n != 1 else "one seed"


def to_markdown(result: dict) -> str:
    cfg = result["config"]
    ladder = result.get("method") == "ladder"
    ft = cfg.get("finetune") or {k.removeprefix("finetune_"): v for k, v in cfg.items()}  # results of older runs: flat
    semi = ladder or ft.get("pseudo_label_weight", 0) or ft.get("reconstruction_weight", 0)
    how = (": the better on validation of fine-tuning on the labels alone and fine-tuning with the other training "
           f"{result.get('examples', 'images')} too, without their labels ((k/n semi) says how many runs chose the latter)"
           if semi else "")
    if ladder:
        steps = cfg["pretrain_steps"] if "pretrain_steps" in cfg else cfg["train"]["epochs"] * cfg["steps_per_epoch"]
        how = (f" with a ladder network ({'-'.join(str(s) for s in cfg['hidden_sizes'])}, pretrained with its denoising "
               f"cost alone for {steps} steps)" + how)
    ex = result.get("examples", "images")  # rows of a table, or images
    head = (f"Few-label accuracy on {result['dataset']} ({_seeds(result)}; pretraining on all "
            f"{result['n_train']} training {ex}; every arm early-stopped on {result['n_validation']} validation "
            f"{ex}, the supervised ones also tuned there), {result['seconds']:.0f} s. Pretrained + fine-tuned is the "
            f"recipe{how}; from scratch is the same network trained on the labeled {ex} alone.\n\n")
    if result.get("method") == "propagate":
        raw = "the pixels" if ex == "images" else "the inputs"
        head = (f"Few-label accuracy on {result['dataset']} by label propagation (Poisson learning on a 10-nearest-"
                f"neighbour graph of the {result['n_train']} training {ex}; {_seeds(result)}), "
                f"{result['seconds']:.0f} s. Pretrained: on the codes of the autoencoder pretrained on every training "
                f"{ex[:-1]}; from scratch: on {raw}; validation and test {ex} are classified by their neighbours in "
                f"the graph. Transductive: the test {ex} are in the graph too (seen, unlabeled).\n\n")
    titles = arm_titles(result)
    arms = [a for a in titles if any(f"{a}_mean" in s for s in result["summary"])]
    lines = ["| labels | " + " | ".join(titles[a] for a in arms) + " | gain (points) |",
             "|---|" + "---|" * len(arms) + "---|"]
    for s in result["summary"]:
        cells = [f"{100 * s[f'{a}_mean']:.2f} ± {100 * s[f'{a}_std']:.2f}" if f"{a}_mean" in s else "" for a in arms]
        if "scratch_semi_supervised_mean" in s:  # unlabeled images were there to use
            cells[0] += f" ({s['pretrained_semi_supervised_runs']}/{s['runs']} semi)"
        lines.append(f"| {s['labels']} | " + " | ".join(cells) + f" | {s['gain_points']:+.2f} |")
    return head + "\n".join(lines) + "\n"
