"""The tutorial's stacked autoencoder, and its family: tied weights, dropout, batch norm, any depth.

The tutorial's networks are ``StackedAutoencoder(AutoencoderConfig(hidden_sizes=(256, 128)))``
and ``(128, 64)``: sigmoid everywhere, N(0, 1) weights and biases (``tf.random_normal``),
a decoder that mirrors the encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aekit.errors import ConfigError
from aekit.models.layers import ACTIVATIONS, INITS, SaveMixin, check_choice, mlp


@dataclass
class AutoencoderConfig:
    input_size: int = 784  # D: flattened image size
    hidden_sizes: tuple[int, ...] = (256, 128)  # encoder widths; the last is the code size
    activation: str = "sigmoid"  # after every hidden layer, the code included
    output_activation: str = "sigmoid"  # on the reconstruction; pixels are in [0, 1]
    init: str = "normal"  # normal: N(0, 1) weights and biases, as tf.random_normal; or xavier, kaiming, torch
    code_activation: str | None = None  # on the code; None: the same as activation (the tutorial's sigmoid)
    dropout: float = 0.0  # after each hidden activation (not on the code or the output)
    batch_norm: bool = False  # before each hidden activation (not on the code or the output)
    tied: bool = False  # decoder weights are the encoder's, transposed (Hinton & Salakhutdinov 2006)

    def __post_init__(self):
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("output_activation", self.output_activation, ACTIVATIONS)
        check_choice("code_activation", self.code_activation or self.activation, ACTIVATIONS)
        check_choice("init", self.init, INITS)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")
        if self.input_size < 1 or not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ConfigError(
                f"hidden_sizes={self.hidden_sizes} and input_size={self.input_size} must be positive integers, "
                "with at least one hidden layer"
            )

    @property
    def code_size(self) -> int:
        return self.hidden_sizes[-1]


class TiedDecoder(nn.Module):
    """Mirrors an encoder with its own weights transposed (shared storage) and biases of its own."""

    def __init__(self, encoder: nn.Sequential, activations: list[str]):
        super().__init__()
        self.encoder_layers = [m for m in encoder if isinstance(m, nn.Linear)][::-1]  # plain list: not re-registered
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(m.in_features)) for m in self.encoder_layers])
        self.activations = nn.ModuleList([ACTIVATIONS[a]() for a in activations])

    def forward(self, z: torch.Tensor, logits: bool = False) -> torch.Tensor:
        for i, (layer, bias, act) in enumerate(zip(self.encoder_layers, self.biases, self.activations)):
            z = F.linear(z, layer.weight.t(), bias)
            if not (logits and i == len(self.biases) - 1):
                z = act(z)
        return z


class StackedAutoencoder(SaveMixin, nn.Module):
    """``input -> hidden_sizes -> reversed(hidden_sizes[:-1]) -> input``, the decoder mirroring the encoder."""

    config_class = AutoencoderConfig

    @classmethod
    def from_recipe(cls, r, data, generator: torch.Generator | None = None) -> "StackedAutoencoder":
        """From a recipe's fields (``aekit.experiments.recipe.Recipe``) and the data it trains on."""
        return cls(AutoencoderConfig(input_size=data.n_features, hidden_sizes=r.hidden_sizes, activation=r.activation,
                                     init=r.init, code_activation=r.code_activation or None, dropout=r.dropout,
                                     batch_norm=r.batch_norm, tied=r.tied,
                                     output_activation="sigmoid" if data.bounded else "identity"), generator=generator)

    def __init__(self, config: AutoencoderConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        enc = [config.input_size, *config.hidden_sizes]
        dec = enc[::-1]
        n = len(config.hidden_sizes)
        code_act = config.code_activation or config.activation
        # Creation order W1, W2, ... as in the tutorial's build_autoencoder, so one seed gives one network.
        self.encoder = mlp(enc, [config.activation] * (n - 1) + [code_act], config.init, generator,
                           config.dropout, config.batch_norm)
        dec_acts = [config.activation] * (n - 1) + [config.output_activation]
        if config.tied:
            self.decoder = TiedDecoder(self.encoder, dec_acts)
        else:
            self.decoder = mlp(dec, dec_acts, config.init, generator, config.dropout, config.batch_norm)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, D) -> (B, code_size)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, code_size) -> (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor | None:
        """The reconstruction before its sigmoid, for BCE-with-logits; None without a sigmoid output."""
        if self.config.output_activation != "sigmoid":
            return None
        if isinstance(self.decoder, TiedDecoder):
            return self.decoder(z, logits=True)
        return self.decoder[:-1](z)
