"""The tutorial's two programs, run on any dataset, with metrics and figures.

Each ``run_*`` function trains, evaluates on the test split and returns a metrics dict;
:func:`write_run` puts the figures and ``metrics.json`` (last) into the run directory.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import figures
from .batches import DeviceBatches
from .data import Dataset
from .errors import ConfigError, DataError
from .fileio import write_json
from .models import AutoencoderConfig, EncoderClassifier, StackedAutoencoder
from .optim import build_optimizer
from .presets import PretrainProgram, StackedProgram
from .runtime import generator
from .train import accuracy, classification_loss, fit, reconstruct, reconstruction_error, reconstruction_loss


@dataclasses.dataclass
class RunResult:
    metrics: dict
    model: torch.nn.Module
    examples: np.ndarray  # (k, D) uint8 test images shown in the figure
    reconstructions: np.ndarray  # (k, D) float in [0, 1]
    curves: dict[str, list[float]]


def _base_metrics(program: str, cfg, data: Dataset, device: torch.device, seed: int) -> dict:
    return {
        "program": program,
        "dataset": data.name,
        "n_train": len(data.train),
        "n_validation": len(data.validation),
        "n_test": len(data.test),
        "seed": seed,
        "device": str(device),
        "torch": torch.__version__,
        "config": dataclasses.asdict(cfg),
    }


def _autoencoder(cfg, data: Dataset, gen: torch.Generator, device) -> StackedAutoencoder:
    config = AutoencoderConfig(input_size=data.n_features, hidden_sizes=cfg.hidden_sizes,
                               activation=cfg.activation, init=cfg.init)
    return StackedAutoencoder(config, generator=gen).to(device)


def _examples(model, data: Dataset, k: int, device):
    shown = data.test.images[: min(k, len(data.test))]
    return shown, reconstruct(model, shown, device)


def check_fits(cfg, data: Dataset) -> None:
    """Raise the user's mistake before any training: labels the program needs, batch size vs data."""
    if isinstance(cfg, PretrainProgram) and (data.train.labels is None or data.test.labels is None):
        raise DataError(f"dataset {data.name!r} has no labels; the pretrain program needs y_train and y_test")
    if cfg.batch_size > len(data.train):
        raise ConfigError(f"batch_size={cfg.batch_size} is larger than the {len(data.train)} training images; "
                          f"use a batch_size of at most {len(data.train)}")


def _trainable(model: torch.nn.Module, compile: bool) -> torch.nn.Module:
    """The module the training loop calls: ``torch.compile``d on request (shares the parameters)."""
    return torch.compile(model) if compile else model


def run_stacked(cfg: StackedProgram, data: Dataset, device: torch.device, seed: int = 0,
                log: Callable[[str], None] | None = None, compile: bool = False) -> RunResult:
    """Program 1: train the stacked autoencoder and measure test MSE."""
    check_fits(cfg, data)
    t0 = time.perf_counter()
    model = _autoencoder(cfg, data, generator(seed), device)
    opt = build_optimizer(cfg.optimizer, model.parameters(), cfg.learning_rate)
    batches = DeviceBatches(data.train.images, batch_size=cfg.batch_size, device=device, seed=seed)
    hist = fit(_trainable(model, compile), reconstruction_loss, opt, batches, cfg.training_epochs,
               display_step=cfg.display_step, log=log, label="loss")
    test_mse = float(reconstruction_error(model, data.test.images, device).mean())
    metrics = _base_metrics("stacked", cfg, data, device, seed)
    metrics.update(test_mse=test_mse, seconds={"train": hist.seconds, "total": time.perf_counter() - t0},
                   seconds_per_epoch=hist.seconds / cfg.training_epochs, history={"train": hist.as_dict()})
    shown, recon = _examples(model, data, cfg.examples_to_show, device)
    return RunResult(metrics, model, shown, recon, {"reconstruction (MSE)": hist.epoch_loss})


def run_pretrain(cfg: PretrainProgram, data: Dataset, device: torch.device, seed: int = 0,
                 log: Callable[[str], None] | None = None, compile: bool = False) -> RunResult:
    """Program 2: pretrain an autoencoder, then fine-tune its encoder with a softmax head."""
    check_fits(cfg, data)
    t0 = time.perf_counter()
    gen = generator(seed)
    ae = _autoencoder(cfg, data, gen, device)
    batches = DeviceBatches(data.train.images, data.train.labels, batch_size=cfg.batch_size, device=device, seed=seed)

    def pretrain_loss(model, x, y):  # labels unused while pretraining
        return reconstruction_loss(model, x)

    opt = build_optimizer(cfg.pretrain_optimizer, ae.parameters(), cfg.learning_rate_rmsprop)
    pre = fit(_trainable(ae, compile), pretrain_loss, opt, batches, cfg.pretrain_epochs, display_step=cfg.display_step,
              log=log, label="pretraining loss")
    test_mse = float(reconstruction_error(ae, data.test.images, device).mean())
    shown, recon = _examples(ae, data, cfg.examples_to_show, device)

    clf = EncoderClassifier(ae.encoder, cfg.hidden_sizes[-1], data.n_classes, head_init=cfg.head_init,
                            generator=gen).to(device)
    opt = build_optimizer(cfg.finetune_optimizer, clf.parameters(), cfg.learning_rate_gd)
    fine = fit(_trainable(clf, compile), classification_loss, opt, batches.reseeded(seed + 1), cfg.finetune_epochs,
               display_step=cfg.display_step, log=log, label="fine-tuning loss")
    test_acc = accuracy(clf, data.test.images, data.test.labels, device)
    metrics = _base_metrics("pretrain", cfg, data, device, seed)
    metrics.update(
        test_mse=test_mse, test_accuracy=test_acc,
        seconds={"pretrain": pre.seconds, "finetune": fine.seconds, "total": time.perf_counter() - t0},
        history={"pretrain": pre.as_dict(), "finetune": fine.as_dict()},
    )
    curves = {"pretraining (MSE)": pre.epoch_loss, "fine-tuning (cross-entropy)": fine.epoch_loss}
    return RunResult(metrics, clf, shown, recon, curves)


def write_run(result: RunResult, out: Path, image_shape) -> None:
    """Figures first, ``metrics.json`` last: a run directory with metrics is complete."""
    m = result.metrics
    figures.reconstruction_grid(result.examples / 255.0, result.reconstructions, image_shape,
                                out / "reconstruction.png",
                                title=f"{m['program']} on {m['dataset']}: test MSE {m['test_mse']:.4f}")
    figures.loss_curves(result.curves, out / "loss.png", title=f"{m['program']} on {m['dataset']}")
    write_json(out / "metrics.json", m)
