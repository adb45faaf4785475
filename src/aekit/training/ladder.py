"""Training a ladder network (see :mod:`aekit.models.ladder`): Adam steps on batches drawn with
replacement from the labeled and the unlabeled images, keeping the weights with the best validation
accuracy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from aekit.data.batches import as_device_tensor, to_float
from aekit.errors import ConfigError
from aekit.models.ladder import LadderNetwork
from aekit.training.evaluate import accuracy
from aekit.training.loop import EarlyStopping, fit
from aekit.training.optim import build_optimizer, build_schedule
from aekit.training.resume import PhaseState


@dataclass
class LadderResult:
    validation_accuracy: float  # the best, whose weights were restored (-1 without validation)
    curve: list[float] = dataclasses.field(default_factory=list)  # validation accuracy at each check


class StepBatches:
    """``steps`` batches drawn up front with replacement (labeled and unlabeled rows each step), cut into
    "epochs" of ``per_epoch`` steps so that the one training loop (:func:`aekit.training.loop.fit`) runs
    step-counted training: its end-of-epoch callbacks are then the validation checks."""

    def __init__(self, order: dict[str, torch.Tensor], labeled, unlabeled, empty: torch.Tensor, steps: int,
                 per_epoch: int):
        self.order, self.labeled, self.unlabeled, self.empty = order, labeled, unlabeled, empty
        self.steps, self.per_epoch, self.device = steps, per_epoch, empty.device

    def __len__(self) -> int:
        return self.per_epoch

    @property
    def epochs(self) -> int:
        return -(-self.steps // self.per_epoch)

    def epoch(self, epoch: int):
        for step in range(epoch * self.per_epoch, min(self.steps, (epoch + 1) * self.per_epoch)):
            if self.labeled is None:
                x_l, y_l = self.empty, self.empty.new_zeros(0, dtype=torch.long)
            else:
                rows = self.order["labeled"][step]
                x_l, y_l = self.labeled[0][rows], self.labeled[1][rows]
            x_u = self.empty if self.unlabeled is None else self.unlabeled[self.order["unlabeled"][step]]
            yield x_l, y_l, x_u


def ladder_objective(net: LadderNetwork, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor):
    """Cross-entropy on the corrupted pass of the labeled rows plus the denoising cost of the unlabeled ones."""
    parts = net.losses(x_l, y_l, x_u)
    return parts["cross_entropy"] + parts["denoising"], {k: v.detach() for k, v in parts.items()}


def train_ladder(net: LadderNetwork, phase, device: torch.device, gen: torch.Generator, *,
                 labeled: tuple[np.ndarray, np.ndarray] | None = None, unlabeled: np.ndarray | None = None,
                 validation: tuple[np.ndarray, np.ndarray] | None = None, progress: bool | None = None,
                 state: PhaseState | None = None) -> LadderResult:
    """``phase`` (a recipe's :class:`~aekit.experiments.recipe.Phase`: epochs, optimizer, learning rate, schedule)
    over epochs of the recipe's ``steps_per_epoch`` batches drawn with ``gen`` from the labeled and/or unlabeled
    images, through the one training loop. With ``validation``, the weights with the best validation accuracy
    (checked at the end of every epoch) are restored at the end."""
    r = net.recipe
    if labeled is None and unlabeled is None:
        raise ConfigError("train_ladder needs labeled or unlabeled images")
    steps = phase.epochs * r.steps_per_epoch
    xl = to_float(as_device_tensor(labeled[0], device)) if labeled else None
    yl = torch.as_tensor(labeled[1], dtype=torch.long, device=device) if labeled else None
    xu = to_float(as_device_tensor(unlabeled, device)) if unlabeled is not None else None
    order = _draw_indices(steps, r.batch_size, gen, len(xl) if xl is not None else 0, len(xu) if xu is not None else 0)
    order = {k: v.to(device, non_blocking=True) for k, v in order.items()}  # one copy, not one per step
    batches = StepBatches(order, (xl, yl) if xl is not None else None, xu, torch.zeros(0, net.sizes[0], device=device),
                          steps, r.steps_per_epoch)
    opt = build_optimizer(phase.optimizer, net.parameters(), phase.learning_rate, phase.weight_decay)
    schedule = build_schedule(phase.schedule, opt, steps)
    best = None
    if validation is not None:  # 1 - accuracy, so that lower is better; patience never runs out
        best = EarlyStopping(net, lambda: 1.0 - accuracy(net, validation[0], validation[1], device), patience=steps + 1)
    fit(net, ladder_objective, opt, batches, batches.epochs, display_step=0, label="ladder loss", progress=progress,
        scheduler=schedule, on_epoch_end=best, state=None if state is None else state.track(best=best))
    net.eval()
    if best is None:
        return LadderResult(-1.0)
    best.restore()
    return LadderResult(1.0 - best.best, [1.0 - s for s in best.history])


def _draw_indices(steps: int, size: int, gen: torch.Generator, n_labeled: int, n_unlabeled: int) -> dict:
    """Batch rows for every step, drawn with replacement from ``gen`` (labeled then unlabeled each step)."""
    out = {name: torch.empty(steps, size, dtype=torch.long) for name, n in (("labeled", n_labeled), ("unlabeled", n_unlabeled)) if n}
    for step in range(steps):
        for name, n in (("labeled", n_labeled), ("unlabeled", n_unlabeled)):
            if n:
                out[name][step] = torch.randint(n, (size,), generator=gen)
    return out
