"""Turn a :class:`~aekit.experiments.recipe.Recipe` into a model, an objective and a training run: optimizer,
schedule, greedy layer-wise stage and early stopping."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import torch
from torch import nn

from aekit.data.arrays import Dataset
from aekit.data.batches import DeviceBatches
from aekit.errors import ConfigError
from aekit.experiments.recipe import LADDER, Recipe
from aekit.models.registry import ARCHITECTURES
from aekit.training.evaluate import reconstruction_error
from aekit.training.greedy import greedy_pretrain
from aekit.training.loop import EarlyStopping, History, autocast, fit
from aekit.training.objectives import ReconstructionObjective, reconstruction_loss
from aekit.training.optim import build_optimizer, build_schedule
from aekit.training.resume import ResumeStore


def build_autoencoder(r: Recipe, data: Dataset, gen: torch.Generator, device) -> nn.Module:
    """The recipe's architecture (see ``models.registry.ARCHITECTURES``), built for ``data``, on ``device``."""
    if r.architecture in LADDER:
        raise ConfigError(f"architecture='ladder' is a classifier, not an autoencoder: it trains with {LADDER['ladder']}")
    return ARCHITECTURES[r.architecture].model.from_recipe(r, data, gen).to(device)


def training_bytes(r: Recipe, n_features: int, n_classes: int = 0) -> int:
    """An estimate of the memory a training run of recipe ``r`` needs, known before anything is allocated:
    weights, gradients and two optimizer moments (4 float32 copies of every parameter; mirrored decoder,
    plus a linear map of the input to the code as PCA-residual and the conv code layer have), and one
    batch's activations on the way forward and back."""
    widths = [n_features, *r.hidden_sizes]
    params = 2 * sum(a * b for a, b in zip(widths, widths[1:])) + 2 * n_features * r.hidden_sizes[-1]
    params += r.hidden_sizes[-1] * n_classes
    activations = 4 * r.batch_size * sum(widths)
    return 4 * (4 * params + activations)


def available_bytes(device: torch.device) -> int:
    """Memory the run may use: the accelerator's, or the host's physical memory."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this platform: do not refuse
        return 1 << 62


def build_objective(r: Recipe, image_shape: tuple[int, ...] = (), bounded: bool = True):
    own = ARCHITECTURES[r.architecture].objective
    if own is not None:  # the architecture's own loss (the VAE's ELBO); recipe.check refused noise for it
        return own
    shifted = r.noise_shift or r.augment_shift
    objective = ReconstructionObjective(loss=r.loss, noise=r.noise, noise_level=r.noise_level, sparsity=r.sparsity,
                                        sparsity_weight=r.sparsity_weight, sparsity_target=r.sparsity_target,
                                        shift=r.noise_shift, augment_shift=r.augment_shift,
                                        image_shape=tuple(image_shape) if shifted else (), bounded=bounded)
    return reconstruction_loss if objective == ReconstructionObjective() else objective


def validation_mse(model: nn.Module, data: Dataset, device, precision: str = "fp32") -> Callable[[], float]:
    """The validation MSE, computed in the training's ``precision`` (early stopping compares epochs with it; a
    bf16 pass cost a third of an fp32 one on a CPU with AMX, and moved the MSE by 4e-5 of itself)."""
    def score() -> float:
        with autocast(torch.device(device).type, precision):
            return float(reconstruction_error(model, data.validation.images, device).mean())
    return score


def combine(*callbacks):
    """One on_epoch_end from several: stop when any of them says so."""
    active = [c for c in callbacks if c is not None]
    if not active:
        return None
    return lambda epoch, loss: any([c(epoch, loss) for c in active])


def train_autoencoder(model: nn.Module, r: Recipe, data: Dataset, batches: DeviceBatches, *, log=None,
                      progress=None, label="loss", on_epoch_end=None, train_module: nn.Module | None = None,
                      store: ResumeStore | None = None, phase: str = "train") -> History:
    """The recipe's ``train`` phase: greedy layer-wise stage (if asked), then end-to-end training with early
    stopping on validation MSE.

    With a ``store``, every stage saves its state as it goes (phases ``layer-1``, ... and ``phase``) and
    continues a saved run."""
    device, p = batches.device, r.train
    if r.layerwise_epochs:  # recipe.check allows it for the plain MLP only
        greedy_pretrain(model, batches, r.layerwise_epochs,
                        lambda params: build_optimizer(p.optimizer, params, p.learning_rate, p.weight_decay),
                        log=log, progress=progress,
                        phase=None if store is None else (lambda i: store.phase(f"{phase}-layer-{i + 1}")))
    opt = build_optimizer(p.optimizer, model.parameters(), p.learning_rate, p.weight_decay)
    schedule = build_schedule(p.schedule, opt, p.epochs * len(batches))
    early = None
    if p.early_stopping and len(data.validation):
        early = EarlyStopping(model, validation_mse(model, data, device, r.precision),
                              patience=p.early_stopping, every=p.validate_every, epochs=p.epochs).start()
    objective = build_objective(r, data.image_shape, data.bounded)

    def loss_fn(m, x, *rest):  # labels (if any) are not used for reconstruction
        return objective(m, x)

    state = None if store is None else store.phase(phase).track(early=early)
    hist = fit(train_module or model, loss_fn, opt, batches, p.epochs, display_step=r.display_step, log=log,
               label=label, progress=progress, precision=r.precision, scheduler=schedule,
               on_epoch_end=combine(on_epoch_end, early), state=state)
    if early is not None:
        early.restore()
        hist.parts["validation_mse"] = early.history
        hist.parts["validation_epochs"] = early.measured
    return hist


def first_layer_images(model: nn.Module, image_shape) -> np.ndarray | None:
    """First-layer weights as images: (n, H, W) for a dense first layer over the pixels, or conv kernels."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.weight.detach().cpu().numpy()[:, 0]  # (C, k, k)
        if isinstance(m, nn.Linear):
            w = m.weight.detach().cpu().numpy()
            if len(image_shape) == 2 and w.shape[1] == image_shape[0] * image_shape[1]:
                return w.reshape(-1, *image_shape)
            return None
    return None
