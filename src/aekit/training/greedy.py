"""Greedy layer-wise pretraining (Bengio et al. 2007; Hinton & Salakhutdinov 2006).

Each encoder layer and its mirror decoder layer are trained as a shallow autoencoder on the
codes of the layers below, which stay frozen; the trained pairs form the stacked autoencoder,
which is then fine-tuned end to end by the caller.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from aekit.data.batches import DeviceBatches
from aekit.models.stacked import StackedAutoencoder
from aekit.training.loop import History, fit
from aekit.training.resume import PhaseState


def blocks(seq: nn.Sequential) -> list[nn.Sequential]:
    """Split a Sequential into one block per Linear layer (the Linear and what follows it)."""
    out: list[list[nn.Module]] = []
    for m in seq:
        if isinstance(m, nn.Linear):
            out.append([])
        out[-1].append(m)
    return [nn.Sequential(*b) for b in out]


def greedy_pretrain(model: StackedAutoencoder, batches: DeviceBatches, epochs: int,
                    make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer],
                    log: Callable[[str], None] | None = None, progress: bool | None = None,
                    on_layer_done: Callable[[int], None] | None = None,
                    phase: Callable[[int], PhaseState] | None = None) -> list[History]:
    """Train ``model`` layer by layer in place; returns one History per layer. ``phase(i)`` is layer ``i``'s
    resumable state, if any."""
    enc, dec = blocks(model.encoder), blocks(model.decoder)[::-1]  # dec[i] mirrors enc[i]
    histories = []
    for i, (e, d) in enumerate(zip(enc, dec)):
        below = nn.Sequential(*enc[:i])  # frozen: run without autograd

        def objective(_, x, *rest, e=e, d=d, below=below):
            with torch.no_grad():
                h = below(x)  # (B, width of layer i's input)
            return F.mse_loss(d(e(h)), h)

        pair = nn.ModuleList([e, d])
        hist = fit(pair, objective, make_optimizer(list(pair.parameters())), batches, epochs,
                   display_step=0, log=log, label=f"layer {i + 1}", progress=progress,
                   state=None if phase is None else phase(i))
        histories.append(hist)
        if on_layer_done is not None:
            on_layer_done(i)
    return histories
