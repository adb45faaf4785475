"""Model-agnostic training loops.

Nothing here knows what a model is: :func:`fit` calls ``objective(model, *batch)`` and
reads back one scalar loss tensor. Losses are accumulated on the device and read at
display steps only, so the hot loop never waits for the device.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from aekit.data.batches import DeviceBatches
from aekit.errors import ConfigError, TrainingDiverged
from aekit.runtime import step_flops, threads_for_step, world
from aekit.training.resume import PhaseState

Objective = Callable[..., torch.Tensor]


@dataclass
class History:
    """Per-epoch losses: the mean over the epoch, and the last batch's (what the tutorial prints)."""

    epoch_loss: list[float] = field(default_factory=list)
    last_batch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    parts: dict[str, list[float]] = field(default_factory=dict)  # named loss terms, per-epoch means
    epoch_seconds: list[float] = field(default_factory=list)  # each epoch's wall time (the first one warms up)

    def as_dict(self) -> dict:
        return {"epoch_loss": self.epoch_loss, "last_batch_loss": self.last_batch_loss, "seconds": self.seconds,
                **({"parts": self.parts} if self.parts else {}),
                **({"epoch_seconds": self.epoch_seconds} if self.epoch_seconds else {})}

    def validation(self) -> tuple[str, list[int], list[float]] | None:
        """The early-stopping score as ``(name, epochs, values)``: each value measured after that (1-based) epoch;
        None where the phase kept no validation score."""
        name = next((k for k in self.parts if k.startswith("validation_") and k != "validation_epochs"), None)
        if name is None or not self.parts[name]:
            return None
        return name.removeprefix("validation_").replace("_", " "), self.parts["validation_epochs"], self.parts[name]


# auto: bf16 autocast where the device multiplies bf16 in hardware (runtime.hardware_bf16), else fp32.
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16, "auto": None}


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``precision`` with ``auto`` made concrete for ``device``; an unknown name is refused, naming the choices."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r} is not allowed; choose one of: {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    from aekit.runtime import hardware_bf16

    return "bf16" if hardware_bf16(torch.device(device)) else "fp32"


def autocast(device_type: str, precision: str):
    """The autocast context of ``precision`` (a no-op for fp32), for training steps and the checks between them."""
    amp = PRECISIONS[resolve_precision(precision, device_type)]
    return torch.autocast(device_type, dtype=amp) if amp else contextlib.nullcontext()


class Step(nn.Module):
    """``objective(model, *batch)`` as a module, so that DistributedDataParallel sees the whole forward pass
    (an objective may call ``model.encode`` and ``model.decode`` rather than ``model(x)``)."""

    def __init__(self, model: nn.Module, objective: Objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, *batch):
        return self.objective(self.model, *batch)


def data_parallel(model: nn.Module, objective: Objective, device: torch.device) -> Objective:
    """Under torchrun, the objective through DistributedDataParallel: gradients are averaged over the ranks
    during the backward pass. BatchNorm becomes SyncBatchNorm on NCCL; gloo has no SyncBatchNorm."""
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        if device.type != "cuda":
            raise ConfigError("batch_norm=true cannot train data-parallel on the CPU (gloo has no SyncBatchNorm); "
                              "run it in one process, on GPUs, or with batch_norm=false")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = nn.parallel.DistributedDataParallel(
        Step(model, objective), device_ids=[device.index] if device.type == "cuda" else None)
    return lambda _, *batch: ddp(*batch)


# A test seam: each function here is called as ``hook(label, epoch, step, state)`` before every training step
# (``step`` its index in the epoch) and once after each epoch's state is saved (``step == "end"``; ``state`` the
# phase's :class:`aekit.training.resume.PhaseState`, or None). Empty in production, where it costs one check per step;
# the resume tests put here a function that kills the process at an exact moment (tests/scripts/killed_run.py).
STEP_HOOKS: list[Callable[[str, int, int | str, PhaseState | None], None]] = []


def fit(model: nn.Module, objective: Objective, optimizer: torch.optim.Optimizer, batches: DeviceBatches,
        epochs: int, *, display_step: int = 5, log: Callable[[str], None] | None = None, label: str = "loss",
        progress: bool | None = None, precision: str = "fp32",
        on_epoch_end: Callable[[int, float], bool] | None = None, scheduler=None, state: PhaseState | None = None) -> History:
    """Train for ``epochs`` epochs; print the last batch loss every ``display_step`` epochs.

    ``precision`` is ``fp32``, ``bf16`` / ``fp16`` autocast (fp16 with a gradient scaler), or ``auto`` (bf16
    where the device multiplies bf16 in hardware, else fp32).
    ``on_epoch_end(epoch, mean_loss)`` may return True to stop early; it costs one device sync
    per epoch, so it is only called when given. ``scheduler`` (a torch LR scheduler) steps every batch.
    The objective returns the loss, or ``(loss, parts)`` with named terms to report per epoch.
    ``state`` (a :class:`aekit.training.resume.PhaseState`) is saved after every epoch and, when the run
    resumes, restored first: the loop then continues after the last saved epoch, or returns at once if
    the phase had finished. Under torchrun the objective runs through DistributedDataParallel; losses are
    averaged over the ranks once per epoch, and only rank 0 prints.
    Call :func:`aekit.runtime.setup` before the first op (flush-to-zero, threads), as the CLI and the estimators do.
    """
    from tqdm.auto import tqdm

    precision = resolve_precision(precision, batches.device)  # refuses an unknown one before anything runs
    w = world()
    log = (log or tqdm.write) if w.is_main else (lambda _: None)  # tqdm.write prints above the progress bar
    device_type = batches.device.type
    scaler = torch.amp.GradScaler(device_type) if precision == "fp16" else None
    guard = DivergenceGuard(batches.device, label)
    step_fn = data_parallel(model, objective, batches.device) if w.size > 1 else objective
    hooks = tuple(STEP_HOOKS)
    model.train()
    sums, lasts, part_sums, seconds, first, times = [], [], {}, 0.0, 0, []
    saved = state.restore(model, optimizer, scheduler, scaler) if state is not None else None
    if saved is not None:
        old = saved["history"]
        as_tensors = lambda values: [torch.tensor(v, device=batches.device) for v in values]  # noqa: E731
        sums, lasts, seconds = as_tensors(old["epoch_loss"]), as_tensors(old["last_batch_loss"]), old["seconds"]
        part_sums = {k: as_tensors(v) for k, v in old.get("parts", {}).items()}
        times = list(old.get("epoch_seconds", []))
        first = epochs if saved["done"] else saved["next_epoch"]
    t0 = time.perf_counter()
    bar = tqdm(range(first, epochs), desc=label, unit="epoch", leave=False,
               disable=(None if progress is None else not progress) if w.is_main else True)
    rows = getattr(batches, "local_batch", None) or getattr(batches, "batch_size", None)  # rows per step, where known
    with threads_for_step(rows and step_flops(model, rows), batches.device):  # small networks: one thread
        for epoch in bar:
            t_epoch = time.perf_counter()
            total = torch.zeros((), device=batches.device)
            parts_total: dict[str, torch.Tensor] = {}
            steps = 0  # counted: the last epoch of step-counted data (the ladder's) may be shorter than len(batches)
            for step, batch in enumerate(batches.epoch(epoch)):
                for hook in hooks:
                    hook(label, epoch, step, state)
                steps += 1
                with autocast(device_type, precision):
                    loss = step_fn(model, *batch)
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
            mean, last, parts_mean = total / max(1, steps), last, {k: v / max(1, steps) for k, v in parts_total.items()}
            if w.size > 1:  # every rank reports the mean over all ranks
                mean, last, parts_mean = _all_mean(mean, last, parts_mean)
            sums.append(mean)
            for name, value in parts_mean.items():
                part_sums.setdefault(name, []).append(value)
            lasts.append(last)
            if display_step and epoch % display_step == 0:
                log(f"Epoch {epoch:4d}  {label} {last.item():.6f}")
            times.append(time.perf_counter() - t_epoch)  # training only: before the callback (validation) runs
            stop = on_epoch_end is not None and on_epoch_end(epoch, sums[-1].item())
            if w.size > 1:  # rank 0 decides, so that no rank stops alone
                stop = bool(w.broadcast(stop))
            if state is not None:
                state.save(model, optimizer, scheduler, scaler, next_epoch=epoch + 1, done=stop or epoch == epochs - 1,
                           history=_history(sums, lasts, part_sums, seconds + time.perf_counter() - t0, times).as_dict())
            for hook in hooks:
                hook(label, epoch, "end", state)
            if stop:
                break
    return _history(sums, lasts, part_sums, seconds + time.perf_counter() - t0, times)


def _history(sums, lasts, part_sums, seconds: float, times: list[float] = ()) -> History:
    if not sums:  # epochs=0: nothing trained
        return History(seconds=seconds)
    return History(
        epoch_loss=torch.stack(sums).tolist(),
        last_batch_loss=torch.stack(lasts).tolist(),
        seconds=seconds,
        parts={name: torch.stack(values).tolist() for name, values in part_sums.items()},
        epoch_seconds=list(times),
    )


def _all_mean(mean: torch.Tensor, last: torch.Tensor, parts: dict[str, torch.Tensor]):
    """The mean over the ranks of each value, in one all-reduce."""
    import torch.distributed as dist

    names = sorted(parts)
    packed = torch.stack([mean, last, *(parts[k] for k in names)])
    dist.all_reduce(packed)
    packed /= dist.get_world_size()
    return packed[0], packed[1], {k: packed[2 + i] for i, k in enumerate(names)}


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
            if not math.isfinite(loss.item()):  # a CPU scalar: a read, cheaper than an isfinite op
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
    epochs without improvement; :meth:`restore` puts the best weights back. With ``every`` > 1 the score is
    measured after every ``every``-th epoch and the last of ``epochs`` only (where an epoch is a step or two,
    measuring each one would cost more than the training)."""

    def __init__(self, model: nn.Module, validation_loss: Callable[[], float], patience: int = 10,
                 min_delta: float = 0.0, every: int = 1, epochs: int | None = None):
        self.model, self.validation_loss, self.patience, self.min_delta = model, validation_loss, patience, min_delta
        self.every, self.last = max(1, every), None if epochs is None else epochs - 1
        self.best, self.best_epoch, self.best_state, self.history = float("inf"), -1, None, []
        self.measured: list[int] = []  # the epoch (1-based) after which each score of history was measured

    def start(self) -> "EarlyStopping":
        """Score the weights before training too, so the result is never worse on validation than the start."""
        self(-1, float("nan"))
        self.history.clear()
        self.measured.clear()
        return self

    def __call__(self, epoch: int, train_loss: float) -> bool:
        if epoch >= 0 and (epoch + 1) % self.every and epoch != self.last:
            return False
        was_training = self.model.training
        self.model.eval()
        score = float(self.validation_loss())
        self.model.train(was_training)
        self.history.append(score)
        self.measured.append(epoch + 1)
        if score < self.best - self.min_delta:
            self.best, self.best_epoch = score, epoch
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return epoch - self.best_epoch >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "best_state": self.best_state,
                "history": list(self.history), "measured": list(self.measured)}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.history = state["best"], state["best_epoch"], list(state["history"])
        self.best_state = state["best_state"]
        # states saved before it was recorded measured after every epoch
        self.measured = list(state.get("measured", range(1, len(self.history) + 1)))

    def restore(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
