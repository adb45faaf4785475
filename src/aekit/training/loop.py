"""Model-agnostic training loops.

Nothing here knows what a model is: :func:`fit` calls ``objective(model, *batch)`` and
reads back one scalar loss tensor. Losses are accumulated on the device and read at
display steps only, so the hot loop never waits for the device.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from aekit.data.batches import DeviceBatches
from aekit.errors import ConfigError, TrainingDiverged

Objective = Callable[..., torch.Tensor]


@dataclass
class History:
    """Per-epoch losses: the mean over the epoch, and the last batch's (what the tutorial prints)."""

    epoch_loss: list[float] = field(default_factory=list)
    last_batch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    parts: dict[str, list[float]] = field(default_factory=dict)  # named loss terms, per-epoch means

    def as_dict(self) -> dict:
        return {"epoch_loss": self.epoch_loss, "last_batch_loss": self.last_batch_loss, "seconds": self.seconds,
                **({"parts": self.parts} if self.parts else {})}


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def fit(model: nn.Module, objective: Objective, optimizer: torch.optim.Optimizer, batches: DeviceBatches,
        epochs: int, *, display_step: int = 5, log: Callable[[str], None] | None = None, label: str = "loss",
        progress: bool | None = None, start_epoch: int = 0, precision: str = "fp32",
        on_epoch_end: Callable[[int, float], bool] | None = None, scheduler=None) -> History:
    """Train for ``epochs`` epochs; print the last batch loss every ``display_step`` epochs.

    ``precision`` is ``fp32``, or ``bf16`` / ``fp16`` autocast (fp16 with a gradient scaler).
    ``on_epoch_end(epoch, mean_loss)`` may return True to stop early; it costs one device sync
    per epoch, so it is only called when given. ``scheduler`` (a torch LR scheduler) steps every batch.
    The objective returns the loss, or ``(loss, parts)`` with named terms to report per epoch.
    """
    from tqdm.auto import tqdm

    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r} is not allowed; choose one of: {', '.join(PRECISIONS)}")
    log = log or tqdm.write  # prints above the progress bar, or plainly when there is none
    torch.set_flush_denormal(True)  # this thread at least; runtime.setup() before any op covers the workers
    device_type = batches.device.type
    amp = PRECISIONS[precision]
    autocast = (lambda: torch.autocast(device_type, dtype=amp)) if amp else contextlib.nullcontext
    scaler = torch.amp.GradScaler(device_type) if precision == "fp16" else None
    guard = DivergenceGuard(batches.device, label)
    model.train()
    sums, lasts, part_sums = [], [], {}
    t0 = time.perf_counter()
    bar = tqdm(range(start_epoch, start_epoch + epochs), desc=label, unit="epoch", leave=False,
               disable=None if progress is None else not progress)
    for epoch in bar:
        total = torch.zeros((), device=batches.device)
        parts_total: dict[str, torch.Tensor] = {}
        steps = 0  # counted: the last epoch of step-counted data (the ladder's) may be shorter than len(batches)
        for step, batch in enumerate(batches.epoch(epoch)):
            steps += 1
            with autocast():
                loss = objective(model, *batch)
            if isinstance(loss, tuple):
                loss, parts = loss
                for name, value in parts.items():
                    parts_total[name] = parts_total.get(name, 0) + value.float()
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            if scheduler is not None:
                scheduler.step()
            last = loss.detach().float()
            total += last  # stays on the device: no sync per step
            guard.update(last, step, epoch)
        guard.check(epoch)
        sums.append(total / max(1, steps))
        for name, value in parts_total.items():
            part_sums.setdefault(name, []).append(value / max(1, steps))
        lasts.append(last)
        if display_step and epoch % display_step == 0:
            log(f"Epoch {epoch:4d}  {label} {last.item():.6f}")
        if on_epoch_end is not None and on_epoch_end(epoch, sums[-1].item()):
            break
    if not sums:  # epochs=0: nothing trained
        return History(seconds=time.perf_counter() - t0)
    history = History(
        epoch_loss=torch.stack(sums).tolist(),
        last_batch_loss=torch.stack(lasts).tolist(),
        seconds=time.perf_counter() - t0,
        parts={name: torch.stack(values).tolist() for name, values in part_sums.items()},
    )
    return history


class DivergenceGuard:
    """Stops training at the first non-finite loss with :class:`TrainingDiverged` naming the step and epoch.

    Reading a loss costs nothing on the CPU (ops run in order), so there every step is checked; on an
    accelerator a read is a sync, so the device keeps the first bad step and it is read every
    ``check_every`` steps and at :meth:`check` (the end of each epoch)."""

    def __init__(self, device: torch.device, label: str = "loss", check_every: int = 50):
        self.label, self.check_every = label, 1 if device.type == "cpu" else check_every
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)  # (step) of the current epoch

    def update(self, loss: torch.Tensor, step: int, epoch: int) -> None:
        if self.check_every == 1:
            if not torch.isfinite(loss):
                self._raise(step, epoch)
            return
        self.first_bad = torch.where((self.first_bad < 0) & ~torch.isfinite(loss), step, self.first_bad)
        if step % self.check_every == self.check_every - 1:
            self.check(epoch)

    def check(self, epoch: int) -> None:
        step = int(self.first_bad)
        if step >= 0:
            self._raise(step, epoch)

    def _raise(self, step: int, epoch: int):
        raise TrainingDiverged(
            f"{self.label} became NaN or infinite at step {step} of epoch {epoch}; training stopped and no "
            "results were written. Lower the learning rate (or use a schedule with warm-up)")


class EarlyStopping:
    """``on_epoch_end`` callback: track a validation score, keep the best weights, stop after ``patience``
    epochs without improvement; :meth:`restore` puts the best weights back."""

    def __init__(self, model: nn.Module, validation_loss: Callable[[], float], patience: int = 10,
                 min_delta: float = 0.0):
        self.model, self.validation_loss, self.patience, self.min_delta = model, validation_loss, patience, min_delta
        self.best, self.best_epoch, self.best_state, self.history = float("inf"), -1, None, []

    def start(self) -> "EarlyStopping":
        """Score the weights before training too, so the result is never worse on validation than the start."""
        self(-1, float("nan"))
        self.history.clear()
        return self

    def __call__(self, epoch: int, train_loss: float) -> bool:
        was_training = self.model.training
        self.model.eval()
        score = float(self.validation_loss())
        self.model.train(was_training)
        self.history.append(score)
        if score < self.best - self.min_delta:
            self.best, self.best_epoch = score, epoch
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return epoch - self.best_epoch >= self.patience

    def restore(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
