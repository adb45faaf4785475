"""A variational autoencoder (Kingma & Welling 2014) on the same MLP blocks.

``encode`` returns the posterior mean, so codes and reconstructions are deterministic at
evaluation; :func:`vae_objective` samples with the reparameterisation trick and reports the
reconstruction term and the KL term separately.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aekit.models.layers import ACTIVATIONS, SaveMixin, check_choice, init_linear, mlp


@dataclass
class VAEConfig:
    input_size: int = 784
    hidden_sizes: tuple[int, ...] = (512, 256)  # encoder widths before the latent layer
    latent_size: int = 16
    activation: str = "gelu"
    beta: float = 1.0  # weight of the KL term (beta-VAE, Higgins et al. 2017)

    def __post_init__(self):
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        check_choice("activation", self.activation, ACTIVATIONS)

    @property
    def code_size(self) -> int:
        return self.latent_size


class VAE(SaveMixin, nn.Module):
    config_class = VAEConfig

    @classmethod
    def from_recipe(cls, r, data, generator: torch.Generator | None = None) -> "VAE":
        """``hidden_sizes[:-1]`` are the encoder's widths (the decoder mirrors them), the last the latent size."""
        return cls(VAEConfig(input_size=data.n_features, hidden_sizes=r.hidden_sizes[:-1] or (512,),
                             latent_size=r.hidden_sizes[-1], activation=r.activation), generator=generator)

    def __init__(self, config: VAEConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        widths = [config.input_size, *config.hidden_sizes]
        acts = [config.activation] * len(config.hidden_sizes)
        self.body = mlp(widths, acts, "kaiming", generator)
        self.mu = nn.Linear(widths[-1], config.latent_size)
        self.logvar = nn.Linear(widths[-1], config.latent_size)
        for layer in (self.mu, self.logvar):
            init_linear(layer, "xavier", generator, "identity")
        back = [config.latent_size, *config.hidden_sizes[::-1], config.input_size]
        self.decoder = mlp(back, acts + ["identity"], "kaiming", generator)  # logits

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h).clamp(-20.0, 10.0)  # (B, latent) each

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = self.mu.weight.device
        z = torch.randn(n, self.config.latent_size, generator=generator).to(device)
        return self.decode(z)


def vae_objective(model: VAE, x: torch.Tensor, *_):
    """Negative ELBO per image: Bernoulli reconstruction (summed over pixels) + beta * KL(q(z|x) || N(0, I))."""
    mu, logvar = model.posterior(x)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    rec = F.binary_cross_entropy_with_logits(model.decode_logits(z), x, reduction="sum") / len(x)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
    return rec + model.config.beta * kl, {"reconstruction": rec.detach(), "kl": kl.detach()}
