"""Training objectives: what the model-agnostic loop minimises.

An objective is ``objective(model, *batch)`` returning a scalar loss, or ``(loss, parts)`` where
``parts`` names the terms to report (e.g. a VAE's KL). The variants of the autoencoder family that
differ only in what they minimise live here: denoising (Vincent et al. 2008) corrupts the input
and reconstructs the clean one; sparse autoencoders add an L1 penalty on the codes, or the KL
divergence of the mean code activation from a small target (Ng, CS294A notes).
Noise exists only here, so evaluation never sees it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

LOSSES = ("mse", "bce")
NOISES = ("none", "mask", "gaussian")
SPARSITIES = ("none", "l1", "kl")


def reconstruction_loss(model: nn.Module, x: torch.Tensor, *_) -> torch.Tensor:
    """The tutorial's ``reduce_mean((x - x_hat)^2)``: mean over batch and pixels."""
    return F.mse_loss(model(x), x)


def classification_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The tutorial's ``mean(-sum(y * log(softmax)))``, computed stably from logits."""
    return F.cross_entropy(model(x), y)


def corrupt(x: torch.Tensor, noise: str, level: float) -> torch.Tensor:
    """Masking zeroes a fraction ``level`` of the inputs; gaussian adds N(0, level^2), clipped to [0, 1]."""
    if noise == "mask":
        return x * (torch.rand_like(x) >= level)
    if noise == "gaussian":
        return (x + level * torch.randn_like(x)).clamp_(0.0, 1.0)
    return x


@dataclass(frozen=True)
class ReconstructionObjective:
    loss: str = "mse"  # mse on the output, or bce: binary cross-entropy on the logits (pixels as probabilities)
    noise: str = "none"  # none, mask or gaussian: a denoising autoencoder
    noise_level: float = 0.0  # masked fraction, or the gaussian's standard deviation
    sparsity: str = "none"  # none, l1 (on the codes) or kl (mean activation vs sparsity_target; codes in (0, 1))
    sparsity_weight: float = 0.0
    sparsity_target: float = 0.05

    def __post_init__(self):
        for name, value, allowed in (("loss", self.loss, LOSSES), ("noise", self.noise, NOISES),
                                     ("sparsity", self.sparsity, SPARSITIES)):
            if value not in allowed:
                raise ConfigError(f"{name}={value!r} is not allowed; choose one of: {', '.join(allowed)}")
        if self.noise == "mask" and not 0 <= self.noise_level < 1:
            raise ConfigError(f"noise_level={self.noise_level} must be in [0, 1) for masking noise")
        if not 0 < self.sparsity_target < 1:
            raise ConfigError(f"sparsity_target={self.sparsity_target} must be in (0, 1)")

    def __call__(self, model: nn.Module, x: torch.Tensor, *_):
        x_in = corrupt(x, self.noise, self.noise_level)
        z = model.encode(x_in)  # (B, code)
        if self.loss == "bce":
            decoder_logits = model.decode_logits(z) if hasattr(model, "decode_logits") else None
            if decoder_logits is None:
                raise ConfigError("loss='bce' needs a model with a sigmoid output (output_activation='sigmoid')")
            rec = F.binary_cross_entropy_with_logits(decoder_logits, x)
        else:
            rec = F.mse_loss(model.decode(z), x)
        if self.sparsity == "none" or self.sparsity_weight == 0:
            return rec
        if self.sparsity == "l1":
            penalty = z.abs().mean()
        else:
            rho_hat = z.mean(dim=0).clamp(1e-6, 1 - 1e-6)  # (code,) mean activation of each unit
            rho = self.sparsity_target
            penalty = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
        return rec + self.sparsity_weight * penalty, {"reconstruction": rec.detach(), "sparsity": penalty.detach()}


class SemiSupervisedObjective:
    """Cross-entropy on a labeled batch plus ``weight`` x a reconstruction objective on an unlabeled
    batch (Ranzato & Szummer 2008): the decoder keeps the shared encoder's features true to all the
    images while the few labels shape them. ``autoencoder`` shares its encoder with the classifier."""

    def __init__(self, autoencoder: nn.Module, unlabeled, reconstruction, weight: float):
        self.autoencoder, self.reconstruction, self.weight = autoencoder, reconstruction, weight
        self.stream = itertools.chain.from_iterable(unlabeled.epoch(e) for e in itertools.count())

    def __call__(self, classifier: nn.Module, x: torch.Tensor, y: torch.Tensor):
        ce = F.cross_entropy(classifier(x), y)
        x_unlabeled = next(self.stream)[0]  # (B, D)
        rec = self.reconstruction(self.autoencoder, x_unlabeled)
        rec = rec[0] if isinstance(rec, tuple) else rec
        return ce + self.weight * rec, {"cross_entropy": ce.detach(), "reconstruction": rec.detach()}
