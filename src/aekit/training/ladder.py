"""Training a ladder network (see :mod:`aekit.models.ladder`): Adam steps on batches drawn with
replacement from the labeled and the unlabeled images, keeping the weights with the best validation
accuracy."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from aekit.data.batches import as_device_tensor, to_float
from aekit.errors import ConfigError
from aekit.models.ladder import LadderNetwork
from aekit.training.evaluate import accuracy
from aekit.training.loop import DivergenceGuard


@dataclass
class LadderResult:
    validation_accuracy: float  # the best, whose weights were restored (-1 without validation)
    curve: list[float] = dataclasses.field(default_factory=list)  # validation accuracy at each check


def train_ladder(net: LadderNetwork, steps: int, device: torch.device, gen: torch.Generator, *,
                 labeled: tuple[np.ndarray, np.ndarray] | None = None, unlabeled: np.ndarray | None = None,
                 validation: tuple[np.ndarray, np.ndarray] | None = None) -> LadderResult:
    """``steps`` Adam steps on batches drawn with ``gen`` from the labeled and/or unlabeled images. With
    ``validation``, the weights with the best validation accuracy (checked every ``eval_every`` steps) are
    restored at the end."""
    r = net.recipe
    if labeled is None and unlabeled is None:
        raise ConfigError("train_ladder needs labeled or unlabeled images")
    xl = to_float(as_device_tensor(labeled[0], device)) if labeled else None
    yl = torch.as_tensor(labeled[1], dtype=torch.long, device=device) if labeled else None
    xu = to_float(as_device_tensor(unlabeled, device)) if unlabeled is not None else None
    empty = torch.zeros(0, net.sizes[0], device=device)
    opt = torch.optim.Adam(net.parameters(), lr=r.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, steps))
    best, best_state, curve = -1.0, None, []
    order = _draw_indices(steps, r.batch_size, gen, len(xl) if xl is not None else 0, len(xu) if xu is not None else 0)
    order = {k: v.to(device, non_blocking=True) for k, v in order.items()}  # one copy, not one per step
    guard = DivergenceGuard(device, "ladder loss")
    for step in range(1, steps + 1):
        net.train()
        if xl is None:
            x_l, y_l = empty, empty.new_zeros(0, dtype=torch.long)
        else:
            x_l, y_l = xl[order["labeled"][step - 1]], yl[order["labeled"][step - 1]]
        x_u = empty if xu is None else xu[order["unlabeled"][step - 1]]
        parts = net.losses(x_l, y_l, x_u)
        opt.zero_grad(set_to_none=True)
        loss = parts["cross_entropy"] + parts["denoising"]
        loss.backward()
        guard.update(loss.detach(), step, 0)
        opt.step()
        schedule.step()
        if validation is not None and (step % r.eval_every == 0 or step == steps):
            score = accuracy(net, validation[0], validation[1], device)
            curve.append(score)
            if score > best:
                best, best_state = score, copy.deepcopy(net.state_dict())
    guard.check(0)
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return LadderResult(best, curve)


def lr_factor(step: int, steps: int) -> float:
    """The learning rate's multiplier: 1 for the first third of the steps, then linear decay to 0."""
    return min(1.0, 1.5 * (1 - step / steps))


def _draw_indices(steps: int, size: int, gen: torch.Generator, n_labeled: int, n_unlabeled: int) -> dict:
    """Batch rows for every step, drawn with replacement from ``gen`` (labeled then unlabeled each step)."""
    out = {name: torch.empty(steps, size, dtype=torch.long) for name, n in (("labeled", n_labeled), ("unlabeled", n_unlabeled)) if n}
    for step in range(steps):
        for name, n in (("labeled", n_labeled), ("unlabeled", n_unlabeled)):
            if n:
                out[name][step] = torch.randint(n, (size,), generator=gen)
    return out
