"""Model-agnostic training loops.

Nothing here knows what a model is: :func:`fit` calls ``objective(model, *batch)`` and
reads back one scalar loss tensor. Losses are accumulated on the device and read at
display steps only, so the hot loop never waits for the device.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .batches import DeviceBatches, iterate_in_chunks
from .errors import ConfigError

Objective = Callable[..., torch.Tensor]


def reconstruction_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The tutorial's ``reduce_mean((x - x_hat)^2)``: mean over batch and pixels."""
    return F.mse_loss(model(x), x)


def classification_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The tutorial's ``mean(-sum(y * log(softmax)))``, computed stably from logits."""
    return F.cross_entropy(model(x), y)


@dataclass
class History:
    """Per-epoch losses: the mean over the epoch, and the last batch's (what the tutorial prints)."""

    epoch_loss: list[float] = field(default_factory=list)
    last_batch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"epoch_loss": self.epoch_loss, "last_batch_loss": self.last_batch_loss, "seconds": self.seconds}


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def fit(model: nn.Module, objective: Objective, optimizer: torch.optim.Optimizer, batches: DeviceBatches,
        epochs: int, *, display_step: int = 5, log: Callable[[str], None] | None = None, label: str = "loss",
        progress: bool | None = None, start_epoch: int = 0, precision: str = "fp32",
        on_epoch_end: Callable[[int, float], bool] | None = None) -> History:
    """Train for ``epochs`` epochs; print the last batch loss every ``display_step`` epochs.

    ``precision`` is ``fp32``, or ``bf16`` / ``fp16`` autocast (fp16 with a gradient scaler).
    ``on_epoch_end(epoch, mean_loss)`` may return True to stop early; it costs one device sync
    per epoch, so it is only called when given.
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
    model.train()
    sums, lasts = [], []
    t0 = time.perf_counter()
    bar = tqdm(range(start_epoch, start_epoch + epochs), desc=label, unit="epoch", leave=False,
               disable=None if progress is None else not progress)
    for epoch in bar:
        total = torch.zeros((), device=batches.device)
        for batch in batches.epoch(epoch):
            with autocast():
                loss = objective(model, *batch)
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            last = loss.detach().float()
            total += last  # stays on the device: no sync per step
        sums.append(total / len(batches))
        lasts.append(last)
        if display_step and epoch % display_step == 0:
            log(f"Epoch {epoch:4d}  {label} {last.item():.6f}")
        if on_epoch_end is not None and on_epoch_end(epoch, sums[-1].item()):
            break
    history = History(
        epoch_loss=torch.stack(sums).tolist(),
        last_batch_loss=torch.stack(lasts).tolist(),
        seconds=time.perf_counter() - t0,
    )
    if not np.all(np.isfinite(history.epoch_loss)):
        log(f"warning: {label} became non-finite; lower the learning rate")
    return history


@torch.inference_mode()
def predict_batches(fn: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray, device: torch.device) -> Iterable[torch.Tensor]:
    for x in iterate_in_chunks(images, device):
        yield x, fn(x)


def reconstruction_error(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    """Per-sample mean squared error (N,), computed in large batches without autograd."""
    model.eval()
    errs = [((xh - x) ** 2).mean(dim=1) for x, xh in predict_batches(model, images, device)]
    return torch.cat(errs).cpu().numpy()


def encode(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    model.eval()
    return torch.cat([z for _, z in predict_batches(model.encode, images, device)]).cpu().numpy()


def reconstruct(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    model.eval()
    return torch.cat([xh for _, xh in predict_batches(model, images, device)]).cpu().numpy()


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, device: torch.device) -> float:
    model.eval()
    pred = torch.cat([logits.argmax(dim=1) for _, logits in predict_batches(model, images, device)]).cpu().numpy()
    return float((pred == labels).mean())
