"""A ladder network (Rasmus et al. 2015): a denoising autoencoder at every layer of a classifier.

The encoder is an MLP whose layers are batch-normalised; a corrupted pass adds Gaussian noise to
the input and to every normalised pre-activation. The decoder runs top-down from the corrupted
class probabilities, and at each layer a small per-unit function (the "vanilla combinator") of the
corrupted activation and the decoder's signal from above estimates the *clean* activation; the
squared errors, weighted per layer, are the denoising cost. Unlabeled images need no labels for
it, so the same network is first pretrained on every image with the denoising cost alone, then
fine-tuned with the labels' cross-entropy on the corrupted pass plus the denoising cost on
unlabeled images. Tests see the clean pass with the labeled images' running batch statistics.

As in the reference implementation (rinuboney/ladder, which reproduces the paper's MNIST results),
labeled and unlabeled images are normalised with their own batch statistics, the decoder's
estimates are normalised with the clean pass's unlabeled statistics, dividing by the variance,
and the combinator starts from an estimate of zero. (The paper divides by the standard deviation;
the measured results in docs/fewlabels.md use the reference's variance.) ``aekit fewlabels`` gives the
ladder the training images outside the labeled set as its unlabeled images, as for the autoencoders.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-10


MOMENTUM = 0.1  # running statistics for the clean pass at test time


def _normalise(x: torch.Tensor, mean: torch.Tensor | None = None, var: torch.Tensor | None = None) -> torch.Tensor:
    if mean is None:
        mean, var = x.mean(dim=0), x.var(dim=0, unbiased=False)
    return (x - mean) / (var + EPS).sqrt()


class LadderNetwork(nn.Module):
    """``forward(x)`` gives the clean pass's class logits; :meth:`losses` trains it."""

    def __init__(self, input_size: int, n_classes: int, recipe, generator: torch.Generator | None = None):
        """``recipe``: an :class:`aekit.experiments.recipe.Recipe` with ``architecture="ladder"`` (its
        hidden_sizes, noise and noise_level, and denoising_costs), already checked."""
        super().__init__()
        self.recipe = recipe
        self.sizes = sizes = [input_size, *recipe.hidden_sizes, n_classes]
        n = len(sizes) - 1

        def weight(fan_in, fan_out):
            return nn.Parameter(torch.randn(fan_in, fan_out, generator=generator) / math.sqrt(fan_in))

        self.W = nn.ParameterList(weight(sizes[i], sizes[i + 1]) for i in range(n))  # encoder
        self.V = nn.ParameterList(weight(sizes[i + 1], sizes[i]) for i in range(n))  # decoder
        self.beta = nn.ParameterList(nn.Parameter(torch.zeros(s)) for s in sizes[1:])
        self.gamma = nn.Parameter(torch.ones(n_classes))  # the top layer's scale
        combinator = torch.zeros(10, max(sizes))
        combinator[[1, 6]] = 1.0  # a2 = a7 = 1, the rest 0: the estimate starts at zero
        self.a = nn.ParameterList(nn.Parameter(combinator[:, :s].clone()) for s in sizes)
        for i, s in enumerate(sizes[1:], 1):
            self.register_buffer(f"running_mean{i}", torch.zeros(s))
            self.register_buffer(f"running_var{i}", torch.ones(s))
        self.register_buffer("stat_updates", torch.zeros((), dtype=torch.long))

    def _activate(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        if layer < len(self.sizes) - 1:
            return F.relu(z + self.beta[layer - 1])
        return self.gamma * (z + self.beta[layer - 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i in range(1, len(self.sizes)):
            z = _normalise(h @ self.W[i - 1], getattr(self, f"running_mean{i}"), getattr(self, f"running_var{i}"))
            h = self._activate(i, z)
        return h

    def _encode(self, x_labeled: torch.Tensor, x_unlabeled: torch.Tensor, noise: float, track: bool = False):
        """Both parts through the encoder, each normalised with its own batch statistics. Returns the top
        (logits) of each part, and per layer the unlabeled part's activation and (mean, variance). ``track``
        (the clean pass) updates the labeled images' running statistics used at test time."""
        n = len(x_labeled)
        h = torch.cat([x_labeled, x_unlabeled])
        if noise:
            h = h + noise * torch.randn_like(h)
        layers = [(h[n:], None)]
        update = track and self.training and n > 0
        if update:  # the first updates average the batches so far, then an exponential moving average
            self.stat_updates += 1
            weight = torch.clamp(1.0 / self.stat_updates, min=MOMENTUM)
        for i in range(1, len(self.sizes)):
            pre = h @ self.W[i - 1]
            pre_l, pre_u = pre[:n], pre[n:]
            stats_u = (pre_u.mean(dim=0), pre_u.var(dim=0, unbiased=False)) if len(pre_u) else None
            if update:
                with torch.no_grad():
                    getattr(self, f"running_mean{i}").lerp_(pre_l.mean(dim=0), weight)
                    getattr(self, f"running_var{i}").lerp_(pre_l.var(dim=0, unbiased=False), weight)
            z = torch.cat([_normalise(pre_l) if len(pre_l) else pre_l, _normalise(pre_u, *stats_u) if stats_u else pre_u])
            if noise:
                z = z + noise * torch.randn_like(z)
            layers.append((z[n:], stats_u))
            h = self._activate(i, z)
        return h[:n], h[n:], layers

    def _combine(self, layer: int, z_noisy: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        a = self.a[layer]  # (10, width)
        mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
        v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
        return (z_noisy - mu) * v + mu

    def losses(self, x_labeled: torch.Tensor, y_labeled: torch.Tensor, x_unlabeled: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-entropy of the corrupted pass on the labeled images (0 without any) and the denoising cost on
        the unlabeled ones (0 without any)."""
        noise = self.recipe.noise_level if self.recipe.noise == "gaussian" else 0.0
        logits_l, logits_u, noisy = self._encode(x_labeled, x_unlabeled, noise)
        zero = logits_l.new_zeros(())
        out = {"cross_entropy": F.cross_entropy(logits_l, y_labeled) if len(x_labeled) else zero, "denoising": zero}
        if not len(x_unlabeled):
            if len(x_labeled):  # the clean pass only updates the running statistics
                with torch.no_grad():
                    self._encode(x_labeled, x_unlabeled, 0.0, track=True)
            return out
        _, _, clean = self._encode(x_labeled, x_unlabeled, 0.0, track=True)
        cost, estimate = zero, None
        for layer in range(len(self.sizes) - 1, -1, -1):
            u = logits_u.softmax(dim=1) if estimate is None else estimate @ self.V[layer]
            estimate = self._combine(layer, noisy[layer][0], _normalise(u))
            target, stats = clean[layer]
            normalised = estimate if stats is None else (estimate - stats[0]) / (stats[1] + EPS)
            weight = self.recipe.denoising_costs[layer]
            if weight:
                cost = cost + weight * (normalised - target).pow(2).mean()
        out["denoising"] = cost
        return out
