"""An autoencoder that starts as PCA and learns only what PCA misses.

    z     = A (x - mean) + f(x)          encoder: a linear path plus an MLP
    x_hat = mean + B z + g(z)            decoder: the same

A and B start as the top principal components of the training data and the last layers of
f and g start at zero, so before training the model *is* PCA with ``code_size`` components;
training can then only improve on it (the linear paths keep training too). At evaluation the
output is clipped to the pixel range [0, 1], which PCA's own reconstruction can overshoot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from aekit.models.layers import ACTIVATIONS, SaveMixin, check_choice, mlp


@dataclass
class ResidualConfig:
    input_size: int = 784
    hidden_sizes: tuple[int, ...] = (1024, 512)  # widths of the nonlinear branches f and g (g mirrors f)
    code_size: int = 128
    activation: str = "gelu"
    dropout: float = 0.0
    bounded: bool = True  # the data lies in [0, 1] (pixels): evaluation clamps the reconstruction to it

    def __post_init__(self):
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        check_choice("activation", self.activation, ACTIVATIONS)


class PCAResidualAutoencoder(SaveMixin, nn.Module):
    config_class = ResidualConfig

    @classmethod
    def from_recipe(cls, r, data, generator: torch.Generator | None = None) -> "PCAResidualAutoencoder":
        """``hidden_sizes[:-1]`` are the widths of the nonlinear branches, the last the code size; the linear
        paths start as PCA of the training images."""
        model = cls(ResidualConfig(input_size=data.n_features, hidden_sizes=r.hidden_sizes[:-1] or (512,),
                                   code_size=r.hidden_sizes[-1], activation=r.activation, dropout=r.dropout,
                                   bounded=data.bounded),
                    generator=generator)
        model.init_from_pca(data.train.images)
        return model

    def __init__(self, config: ResidualConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        d, k, hs = config.input_size, config.code_size, list(config.hidden_sizes)
        self.register_buffer("mean", torch.zeros(d))
        self.enc_linear = nn.Linear(d, k, bias=False)
        self.dec_linear = nn.Linear(k, d, bias=False)
        acts = [config.activation] * len(hs) + ["identity"]
        self.enc_mlp = mlp([d, *hs, k], acts, "kaiming", generator, config.dropout)
        self.dec_mlp = mlp([k, *hs[::-1], d], acts, "kaiming", generator, config.dropout)
        for branch in (self.enc_mlp, self.dec_mlp):  # start as exactly PCA
            last = [m for m in branch if isinstance(m, nn.Linear)][-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    @torch.no_grad()
    def init_from_pca(self, images: np.ndarray, max_samples: int = 20000) -> None:
        """Set the mean and the linear paths to the top ``code_size`` principal components of ``images``."""
        x = torch.as_tensor(np.asarray(images[:max_samples]), dtype=torch.float64)
        if images.dtype == np.uint8:
            x = x / 255.0
        mean = x.mean(dim=0)
        cov = (x - mean).T @ (x - mean) / max(1, len(x) - 1)  # (D, D)
        _, vectors = torch.linalg.eigh(cov)  # ascending eigenvalues
        top = vectors[:, -self.config.code_size:].flip(1)  # (D, k)
        device = self.mean.device
        self.mean.copy_(mean.float().to(device))
        self.enc_linear.weight.copy_(top.T.float().to(device))
        self.dec_linear.weight.copy_(top.float().to(device))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc_linear(x - self.mean) + self.enc_mlp(x)  # (B, k)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.mean + self.dec_linear(z) + self.dec_mlp(z)  # (B, D)
        return out if self.training or not self.config.bounded else out.clamp(0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
