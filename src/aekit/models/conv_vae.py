"""A convolutional variational autoencoder: the convolutional autoencoder's encoder and decoder around a Gaussian
posterior, trained with the VAE's ELBO (:func:`aekit.models.vae.vae_objective`).

Like :class:`~aekit.models.conv.ConvAutoencoder` it takes gray or color images of any size, flat and channels
last; ``encode`` returns the posterior mean, so codes and reconstructions are deterministic at evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from aekit.models.conv import ConvAutoencoder, ConvAutoencoderConfig


@dataclass
class ConvVAEConfig(ConvAutoencoderConfig):
    beta: float = 1.0  # weight of the KL term (beta-VAE, Higgins et al. 2017)

    @property
    def latent_size(self) -> int:
        return self.code_size


class ConvVAE(ConvAutoencoder):
    config_class = ConvVAEConfig

    def __init__(self, config: ConvVAEConfig, generator: torch.Generator | None = None):
        super().__init__(config, generator)
        self.to_logvar = nn.Linear(self.to_code.in_features, config.code_size)
        nn.init.zeros_(self.to_logvar.weight)  # starts at unit variance: the prior's
        nn.init.zeros_(self.to_logvar.bias)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(self.images(x)).flatten(1)
        return self.to_code(h), self.to_logvar(h).clamp(-20.0, 10.0)  # (B, latent) each

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.config.code_size, generator=generator).to(self.to_code.weight.device)
        return self.decode(z)
