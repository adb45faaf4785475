"""Optimizers aekit adds to PyTorch's, and one factory for all of them.

``TF1RMSprop`` is ``tf.train.RMSPropOptimizer`` (TF 1.x), which differs from
``torch.optim.RMSprop`` in three ways, all of which matter for the tutorial's numbers:

* epsilon sits *inside* the square root:  ``lr * g / sqrt(ms + eps)`` (PyTorch: ``sqrt(ms) + eps``);
* epsilon defaults to 1e-10 (PyTorch: 1e-8);
* the mean-square accumulator starts at *ones* (PyTorch: zeros), so the first steps are
  small rather than ``lr / sqrt(1 - decay)`` ~ 3.2 x lr.

Update, per parameter (``training_ops.cc: ApplyRMSProp``)::

    ms  <- decay * ms + (1 - decay) * g^2
    mom <- momentum * mom + lr * g / sqrt(ms + eps)
    var <- var - mom
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from aekit.errors import ConfigError


class TF1RMSprop(Optimizer):
    """RMSProp with TF1 semantics, vectorised over all parameters with ``torch._foreach_*`` ops."""

    def __init__(self, params, lr: float = 0.001, decay: float = 0.9, momentum: float = 0.0, eps: float = 1e-10):
        if lr <= 0:
            raise ConfigError(f"learning rate lr={lr} must be positive")
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"decay={decay} must be in [0, 1)")
        if momentum < 0:
            raise ConfigError(f"momentum={momentum} must be non-negative")
        super().__init__(params, dict(lr=lr, decay=decay, momentum=momentum, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            for p in params:
                if not self.state[p]:
                    self.state[p]["ms"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    if group["momentum"] > 0:
                        self.state[p]["mom"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            ms = [self.state[p]["ms"] for p in params]
            mom = [self.state[p]["mom"] for p in params] if group["momentum"] > 0 else None
            torch._foreach_mul_(ms, group["decay"])
            torch._foreach_addcmul_(ms, grads, grads, value=1.0 - group["decay"])
            denom = torch._foreach_add(ms, group["eps"])
            torch._foreach_sqrt_(denom)
            if mom is not None:
                torch._foreach_mul_(mom, group["momentum"])
                torch._foreach_addcdiv_(mom, grads, denom, value=group["lr"])
                torch._foreach_sub_(params, mom)
            else:
                torch._foreach_addcdiv_(params, grads, denom, value=-group["lr"])
        return loss


OPTIMIZERS = ("rmsprop-tf1", "sgd", "adam", "adamw")


def build_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> Optimizer:
    """One of :data:`OPTIMIZERS`; ``sgd`` is TF1's plain ``GradientDescentOptimizer``.

    Adam and AdamW run fused (one kernel per parameter for the whole update) where torch has the kernel (CPU, CUDA):
    measured on the modern recipe's 3 M weights on a 2-core CPU, the ``foreach`` update took 7x as long
    (220 ms against 30 ms a step), more than the step's matmuls."""
    params = list(params)
    if name == "rmsprop-tf1":
        return TF1RMSprop(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, foreach=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **_fused_or_foreach(params))
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **_fused_or_foreach(params))
    raise ConfigError(f"optimizer={name!r} is not allowed; choose one of: {', '.join(OPTIMIZERS)}")


def _fused_or_foreach(params) -> dict:
    """``fused=True`` when every parameter lives where torch has the fused kernel, else ``foreach=True``."""
    tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    fused = bool(tensors) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in tensors)
    return {"fused": True} if fused else {"foreach": True}


SCHEDULES = ("constant", "cosine", "onecycle", "hold-linear")


def build_schedule(name: str, optimizer: Optimizer, total_steps: int):
    """A per-batch learning-rate schedule: constant (None), cosine decay to 0, one-cycle (Smith 2018), or
    hold-linear: constant for the first third of the steps, then linear decay to 0 (the ladder network's)."""
    if name == "constant":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    if name == "onecycle":
        lrs = [g["lr"] for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lrs, total_steps=max(2, total_steps))
    if name == "hold-linear":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: hold_linear(step, max(1, total_steps)))
    raise ConfigError(f"schedule={name!r} is not allowed; choose one of: {', '.join(SCHEDULES)}")


def hold_linear(step: int, steps: int) -> float:
    """The hold-linear schedule's multiplier: 1 for the first third of ``steps``, then linear decay to 0."""
    return min(1.0, max(0.0, 1.5 * (1 - step / steps)))  # never negative, should a run step past its end
