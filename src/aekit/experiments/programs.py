"""The tutorial's two programs, run on any dataset, with metrics, figures and a checkpoint.

Each ``run_*`` function trains, evaluates on the test split and returns a :class:`RunResult`;
``aekit.outputs.write_run`` writes it as a run directory.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
from typing import Callable

import numpy as np
import torch

from aekit.data.arrays import Dataset, class_counts
from aekit.data.batches import DeviceBatches, check_shard, make_batches
from aekit.data.images import is_image_shape, shift_fits
from aekit.errors import ConfigError, DataError
from aekit.experiments.builders import (
    available_bytes,
    build_autoencoder,
    build_objective,
    combine,
    train_autoencoder,
    training_bytes,
)
from aekit.experiments.recipe import Recipe
from aekit.models.classifier import EncoderClassifier
from aekit.runtime import generator, seeded_global_rng, world
from aekit.training import neighbors
from aekit.training.evaluate import (
    accuracy,
    encode,
    error_quantiles,
    reconstruct,
    reconstruction_error,
)
from aekit.training.loop import EarlyStopping, History, fit, resolve_precision
from aekit.training.objectives import ClassificationObjective, SemiSupervisedObjective, Views, classification_loss
from aekit.training.optim import build_optimizer, build_schedule
from aekit.training.resume import ResumeStore

EpochHook = Callable[[str, int, float], None]  # (phase, epoch, mean loss)
MAP_SAMPLES = 3000  # test codes kept for the 2-D map


@dataclasses.dataclass
class RunResult:
    metrics: dict
    autoencoder: torch.nn.Module
    classifier: EncoderClassifier | None
    examples: np.ndarray  # (k, D) uint8 test images shown in the figure
    reconstructions: np.ndarray  # (k, D) float in [0, 1]
    curves: dict[str, History]  # each phase's losses (and validation scores), by the name its figure shows
    test_errors: np.ndarray  # (n_test,) per-sample reconstruction MSE
    train_error_quantiles: np.ndarray  # see inference.QUANTILE_LEVELS
    test_codes: np.ndarray  # (<= MAP_SAMPLES, code_size)
    test_labels: np.ndarray | None
    worst: np.ndarray  # indices of the 10 worst-reconstructed test images, worst first
    worst_reconstructions: np.ndarray  # (10, D) float in [0, 1]
    validation_error_quantiles: np.ndarray | None = None  # as train_error_quantiles; None without a validation split
    column_mse: dict[str, float] | None = None  # a table's test MSE per column (a one-hot block counts as its column)
    neighbors: np.ndarray | None = None  # training samples kept for nearest-neighbour scores (see aekit.training.neighbors)
    validation_neighbor_quantiles: np.ndarray | None = None  # of the validation samples' nearest-neighbour scores
    neighbors_norm_power: float = 0.0  # the space those scores were measured in (see aekit.training.neighbors)


def arithmetic(device: torch.device | str, precision: str = "fp32", compile: bool = False) -> dict:
    """What decides a run's arithmetic beside its recipe and data: the torch version, the kind of device, the
    precision training runs in (``auto`` made concrete for the device) and whether it runs through torch.compile.
    ``metrics.json`` records it, and it is part of the resume fingerprint: a run is continued only under the same."""
    return {"torch": torch.__version__, "device": torch.device(device).type,
            "precision": resolve_precision(precision, device), "compile": bool(compile)}


def _base_metrics(program: str, cfg, data: Dataset, device: torch.device, seed: int, compile: bool) -> dict:
    return {
        "program": program, "dataset": data.name, "n_train": len(data.train), "n_validation": len(data.validation),
        "n_test": len(data.test), "seed": seed,
        **arithmetic(device, cfg.precision, compile), "device": str(device),  # the device itself: cuda:1, ...
        "world_size": world().size,
        "validation_split": data.split,
        "class_counts": {name: class_counts(getattr(data, name), data.classes)
                         for name in ("train", "validation", "test")},
        "config": dataclasses.asdict(cfg),
    }


def check_fits(cfg, data: Dataset, device: torch.device | None = None) -> None:
    """Raise the user's mistake before any training: labels the program needs, batch size vs data, and
    (given the ``device``) a network too large for its memory."""
    if cfg.finetune is not None and (data.train.labels is None or data.test.labels is None):
        raise DataError(f"dataset {data.name!r} has no labels; the pretrain program needs y_train and y_test")
    if cfg.finetune is not None and len(np.unique(data.train.labels)) < 2:
        raise DataError(f"dataset {data.name!r}: its training labels are all one class; the pretrain program's classifier "
                        "needs at least two")
    if cfg.finetune is not None and cfg.finetune.early_stopping and (
            data.validation.labels is None or len(data.validation) == 0):
        raise DataError(f"finetune.early_stopping={cfg.finetune.early_stopping} needs a labeled validation split, and "
                        f"dataset {data.name!r} has none; give one, or --set finetune.early_stopping=0")
    ft = cfg.finetune
    shifts = {"noise_shift": cfg.noise_shift, "augment_shift": cfg.augment_shift,
              "finetune.augment_shift": ft.augment_shift if ft else 0}
    for name, shift in shifts.items():
        if shift and not shift_fits(data.image_shape, shift):
            raise ConfigError(f"{name}={shift} needs images larger than the shift; dataset {data.name!r} has "
                              f"image shape {data.image_shape}")
    if ft is not None and ft.augment_flip and not is_image_shape(data.image_shape):
        raise ConfigError(f"finetune.augment_flip=true mirrors images; dataset {data.name!r} has shape {data.image_shape}: "
                          "set finetune.augment_flip=false")
    if ft is not None and ft.cutout and not is_image_shape(data.image_shape):
        raise ConfigError(f"finetune.cutout={ft.cutout} blanks a square of each image; dataset {data.name!r} has shape "
                          f"{data.image_shape}: set finetune.cutout=0")
    if cfg.architecture in ("conv", "conv-vae") and not is_image_shape(data.image_shape):
        raise ConfigError(f"architecture={cfg.architecture!r} needs images (H, W) or (H, W, C) with 1 to 4 channels; dataset "
                          f"{data.name!r} has shape {data.image_shape}")
    if not data.bounded:
        if cfg.architecture not in ("mlp", "pca-residual"):
            raise ConfigError(f"architecture={cfg.architecture!r} models pixels in [0, 1]; {data.name!r} is a {data.kind} "
                              "of standardized values: use architecture=mlp or pca-residual")
        if cfg.loss == "bce":
            raise ConfigError(f"loss='bce' treats values as probabilities in [0, 1]; {data.name!r} is a {data.kind} of "
                              "standardized values: use loss=mse")
    if cfg.architecture == "pca-residual" and cfg.hidden_sizes[-1] > data.n_features:
        raise ConfigError(f"architecture='pca-residual' with a code of {cfg.hidden_sizes[-1]} needs at least as many "
                          f"features, and {data.name!r} has {data.n_features}; choose --code-size {data.n_features} or less")
    if cfg.batch_size > len(data.train):
        raise ConfigError(f"batch_size={cfg.batch_size} is larger than the {len(data.train)} training images; "
                          f"use a batch_size of at most {len(data.train)}")
    check_shard(cfg.batch_size, 0, world().size)
    if device is not None:
        need, have = training_bytes(cfg, data.n_features, data.n_classes), available_bytes(device)
        if need > 0.8 * have:
            raise ConfigError(f"hidden_sizes={cfg.hidden_sizes} with batch_size={cfg.batch_size} needs about "
                              f"{need / 2**30:,.1f} GiB to train, more than the {have / 2**30:,.1f} GiB of {device}; "
                              "choose smaller layers (--code-size, --set hidden_sizes=...)")


def _trainable(model: torch.nn.Module, compile: bool) -> torch.nn.Module:
    """The module the training loop calls: ``torch.compile``d on request (shares the parameters)."""
    return torch.compile(model) if compile else model


def _hook(on_epoch: EpochHook | None, phase: str):
    if on_epoch is None:
        return None
    return lambda epoch, loss: on_epoch(phase, epoch, loss) or False


def _neighbors(data: Dataset, device) -> dict:
    """The training samples ``aekit score`` compares new ones with, and the quantiles of the validation samples'
    mean distances to them (its thresholds)."""
    kept = neighbors.bank(data.train.images)
    validation = neighbors.bank(data.validation.images, neighbors.QUANTILE_ROWS)
    scores = neighbors.knn_distance(kept, validation, neighbors.N_NEIGHBORS, data.bounded, device,
                                    norm_power=neighbors.NORM_POWER) if len(validation) >= 2 else None
    return {"neighbors": kept, "validation_neighbor_quantiles": None if scores is None else error_quantiles(scores),
            "neighbors_norm_power": neighbors.NORM_POWER}


def _evaluate(ae: torch.nn.Module, data: Dataset, k: int, device) -> dict:
    """Everything the figures and metrics need from the trained autoencoder, in large inference batches."""
    test_errors = reconstruction_error(ae, data.test.images, device)
    shown = data.test.images[: min(k, len(data.test))]
    worst = np.argsort(test_errors)[::-1][:10]
    return dict(
        worst=worst, worst_reconstructions=reconstruct(ae, data.test.images[worst], device),
        examples=shown, reconstructions=reconstruct(ae, shown, device), test_errors=test_errors,
        train_error_quantiles=error_quantiles(reconstruction_error(ae, data.train.images, device)),
        validation_error_quantiles=error_quantiles(reconstruction_error(ae, data.validation.images, device))
        if len(data.validation) >= 2 else None,
        column_mse=None if data.table is None else _column_mse(ae, data, device),
        **_neighbors(data, device),
        test_codes=encode(ae, data.test.images[:MAP_SAMPLES], device),
        test_labels=None if data.test.labels is None else data.test.labels[:MAP_SAMPLES],
    )


def _column_mse(ae: torch.nn.Module, data: Dataset, device) -> dict[str, float]:
    squared = (reconstruct(ae, data.test.images, device) - data.test.images) ** 2
    mse = data.table.column_errors(squared).mean(axis=0)
    return {c.name: float(v) for c, v in zip(data.table.columns, mse)}


def _by_column(ev: dict) -> dict:
    return {} if ev["column_mse"] is None else {"test_mse_by_column": ev["column_mse"]}


def seeded_run(run):
    """A program run with torch's global RNG (dropout, noise) seeded from its ``seed`` and given back after.
    Each data-parallel rank draws its own noise: rank ``r`` seeds with ``seed + r``."""
    @functools.wraps(run)
    def wrapper(cfg, data: Dataset, device: torch.device, seed: int = 0, **kw) -> RunResult:
        with seeded_global_rng(seed + world().rank, device):
            return run(cfg, data, device, seed, **kw)
    return wrapper


def _batches(data: Dataset, cfg, device, seed: int, labels: bool = False):
    w = world()
    return make_batches(data.train.images, data.train.labels if labels else None, batch_size=cfg.batch_size,
                        device=device, seed=seed, rank=w.rank, world_size=w.size)


@seeded_run
def run_stacked(cfg: Recipe, data: Dataset, device: torch.device, seed: int = 0,
                log: Callable[[str], None] | None = None, compile: bool = False,
                on_epoch: EpochHook | None = None, progress: bool | None = None,
                store: ResumeStore | None = None) -> RunResult:
    """Program 1: train an autoencoder and measure test MSE. With a ``store``, training saves its state every
    epoch and continues the state saved there (see :mod:`aekit.training.resume`)."""
    check_fits(cfg, data)
    t0 = time.perf_counter()
    model = build_autoencoder(cfg, data, generator(seed), device)
    batches = _batches(data, cfg, device, seed)
    hist = train_autoencoder(model, cfg, data, batches, log=log, progress=progress, label="loss",
                             on_epoch_end=_hook(on_epoch, "train"),
                             train_module=_trainable(model, compile), store=store, phase="train")
    ev = _evaluate(model, data, cfg.examples_to_show, device)
    metrics = _base_metrics("stacked", cfg, data, device, seed, compile)
    metrics.update(test_mse=float(ev["test_errors"].mean()), **_by_column(ev),
                   seconds={"train": hist.seconds, "total": time.perf_counter() - t0},
                   seconds_per_epoch=hist.seconds / max(1, len(hist.epoch_loss)), history={"train": hist.as_dict()})
    return RunResult(metrics, model, None, curves={"reconstruction": hist}, **ev)


def fine_tune(cfg: Recipe, ae: torch.nn.Module, data: Dataset, batches: DeviceBatches, device, gen,
              log=None, progress=None, on_epoch_end=None, compile: bool = False, unlabeled: DeviceBatches | None = None,
              store: ResumeStore | None = None, phase: str = "finetune"):
    """Encoder + softmax head on the labeled batches, in ``cfg.finetune.mode``; early stopping on validation accuracy.

    With ``unlabeled`` images (whose labels are not used) and ``finetune.reconstruction_weight`` or
    ``finetune.pseudo_label_weight``, fine-tuning is semi-supervised (see SemiSupervisedObjective): an
    epoch is then one pass over the unlabeled images, each step with a labeled batch beside it."""
    ft = cfg.finetune
    clf = EncoderClassifier.from_autoencoder(ae, data.n_classes, head_init=ft.head_init, generator=gen).to(device)
    params = list(clf.head.parameters() if ft.mode == "frozen" else clf.parameters())
    views = Views(data.image_shape, ft.augment_shift, ft.augment_flip)
    objective, loop = ClassificationObjective(views) if views.active else classification_loss, batches
    if semi_supervised(cfg, unlabeled):
        objective = SemiSupervisedObjective(batches, autoencoder=ae, reconstruction=build_objective(cfg, data.image_shape, data.bounded),
                                            reconstruction_weight=ft.reconstruction_weight,
                                            pseudo_label_weight=ft.pseudo_label_weight,
                                            threshold=ft.pseudo_label_threshold, noise=cfg.noise,
                                            noise_level=cfg.noise_level, views=views, cutout=ft.cutout)
        loop = unlabeled
        if ft.reconstruction_weight:
            params += [p for p in ae.parameters() if all(p is not q for q in params)]  # the decoder too
    opt = build_optimizer(ft.optimizer, params, ft.learning_rate, ft.weight_decay)
    schedule = build_schedule(ft.schedule, opt, ft.epochs * len(loop))
    early = None
    if ft.early_stopping and data.validation.labels is not None and len(data.validation):
        early = EarlyStopping(clf, lambda: 1.0 - accuracy(clf, data.validation.images, data.validation.labels, device),
                              patience=ft.early_stopping, every=ft.validate_every, epochs=ft.epochs)
    if ft.mode == "frozen":
        clf.encoder.requires_grad_(False)
    state = None if store is None else store.phase(phase, autoencoder=ae).track(early=early, objective=(
        objective if hasattr(objective, "state_dict") else None))
    hist = fit(_trainable(clf, compile), objective, opt, loop, ft.epochs,
               display_step=cfg.display_step, log=log, label="fine-tuning loss", progress=progress,
               precision=cfg.precision, scheduler=schedule, on_epoch_end=combine(on_epoch_end, early), state=state)
    clf.encoder.requires_grad_(True)
    if early is not None:
        early.restore()
        hist.parts["validation_error"] = early.history
        hist.parts["validation_epochs"] = early.measured
    return clf, hist


def semi_supervised(cfg: Recipe, unlabeled: DeviceBatches | None) -> bool:
    """Whether fine-tuning uses the ``unlabeled`` images: the recipe asks for it and there are some."""
    ft = cfg.finetune
    wanted = ft.reconstruction_weight > 0 or ft.pseudo_label_weight > 0
    return wanted and unlabeled is not None and ft.mode != "frozen"  # DeviceBatches holds >= 1 batch


@seeded_run
def run_pretrain(cfg: Recipe, data: Dataset, device: torch.device, seed: int = 0,
                 log: Callable[[str], None] | None = None, compile: bool = False,
                 on_epoch: EpochHook | None = None, progress: bool | None = None,
                 store: ResumeStore | None = None) -> RunResult:
    """Program 2: pretrain an autoencoder, then fine-tune its encoder with a softmax head (phases ``pretrain``
    and ``finetune`` of a ``store``, as in :func:`run_stacked`)."""
    check_fits(cfg, data)
    t0 = time.perf_counter()
    gen = generator(seed)
    ae = build_autoencoder(cfg, data, gen, device)
    batches = _batches(data, cfg, device, seed, labels=True)
    if cfg.finetune.mode == "scratch":  # the baseline: the same network, no pretraining
        pre = History()
    else:
        pre = train_autoencoder(ae, cfg, data, batches, log=log, progress=progress, label="pretraining loss",
                                on_epoch_end=_hook(on_epoch, "pretrain"), train_module=_trainable(ae, compile),
                                store=store, phase="pretrain")
    ev = _evaluate(ae, data, cfg.examples_to_show, device)  # before fine-tuning changes the shared encoder
    pretrained = copy.deepcopy(ae)  # the classifier shares the encoder: keep the pretrained autoencoder intact
    clf, fine = fine_tune(cfg, ae, data, batches.reseeded(seed + 1), device, gen, log=log, progress=progress,
                          on_epoch_end=_hook(on_epoch, "finetune"), compile=compile, store=store)  # all labeled
    test_acc = accuracy(clf, data.test.images, data.test.labels, device)
    metrics = _base_metrics("pretrain", cfg, data, device, seed, compile)
    metrics.update(
        test_mse=float(ev["test_errors"].mean()), **_by_column(ev), test_accuracy=test_acc,
        seconds={"pretrain": pre.seconds, "finetune": fine.seconds, "total": time.perf_counter() - t0},
        history={"pretrain": pre.as_dict(), "finetune": fine.as_dict()},
    )
    curves = {"pretraining": pre, "fine-tuning (cross-entropy)": fine}
    return RunResult(metrics, pretrained, clf, curves={k: v for k, v in curves.items() if v.epoch_loss}, **ev)
