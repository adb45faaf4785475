"""Autoencoders and the classifier built on their encoder.

The tutorial's networks are ``StackedAutoencoder(AutoencoderConfig(hidden_sizes=(256, 128)))``
and ``(128, 64)``: sigmoid everywhere, N(0, 1) weights and biases (``tf.random_normal``),
a decoder that mirrors the encoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ConfigError

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU,
    "selu": nn.SELU, "identity": nn.Identity,
}
INITS = ("normal", "xavier", "kaiming", "torch")


@dataclass
class AutoencoderConfig:
    input_size: int = 784  # D: flattened image size
    hidden_sizes: tuple[int, ...] = (256, 128)  # encoder widths; the last is the code size
    activation: str = "sigmoid"  # after every hidden layer, the code included
    output_activation: str = "sigmoid"  # on the reconstruction; pixels are in [0, 1]
    init: str = "normal"  # normal: N(0, 1) weights and biases, as tf.random_normal; or xavier, kaiming, torch

    def __post_init__(self):
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("output_activation", self.output_activation, ACTIVATIONS)
        check_choice("init", self.init, INITS)
        if self.input_size < 1 or not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ConfigError(
                f"hidden_sizes={self.hidden_sizes} and input_size={self.input_size} must be positive integers, "
                "with at least one hidden layer"
            )

    @property
    def code_size(self) -> int:
        return self.hidden_sizes[-1]


def check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of: {', '.join(allowed)}")


def init_linear(layer: nn.Linear, scheme: str, gen: torch.Generator | None, activation: str = "sigmoid") -> None:
    """Initialise one layer in place; ``normal`` is the tutorial's N(0, 1) for weights *and* biases."""
    with torch.no_grad():
        if scheme == "normal":
            layer.weight.normal_(0.0, 1.0, generator=gen)
            layer.bias.normal_(0.0, 1.0, generator=gen)
        elif scheme == "xavier":
            gain = nn.init.calculate_gain(activation if activation in ("sigmoid", "tanh", "relu", "selu") else "linear")
            nn.init.xavier_normal_(layer.weight, gain=gain, generator=gen)
            layer.bias.zero_()
        elif scheme == "kaiming":
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=gen)
            layer.bias.zero_()
        elif scheme == "torch":  # PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            bound = 1 / math.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=gen)
            layer.bias.uniform_(-bound, bound, generator=gen)


def mlp(sizes: list[int], activations: list[str], init: str, gen: torch.Generator | None) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]``, each followed by its activation."""
    layers: list[nn.Module] = []
    for n_in, n_out, act in zip(sizes[:-1], sizes[1:], activations):
        linear = nn.Linear(n_in, n_out)
        init_linear(linear, init, gen, act)
        layers += [linear, ACTIVATIONS[act]()]
    return nn.Sequential(*layers)


class StackedAutoencoder(nn.Module):
    """``input -> hidden_sizes -> reversed(hidden_sizes[:-1]) -> input``, the decoder mirroring the encoder."""

    def __init__(self, config: AutoencoderConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        enc = [config.input_size, *config.hidden_sizes]
        dec = enc[::-1]
        n = len(config.hidden_sizes)
        # Creation order W1, W2, ... as in the tutorial's build_autoencoder, so one seed gives one network.
        self.encoder = mlp(enc, [config.activation] * n, config.init, generator)
        self.decoder = mlp(dec, [config.activation] * (n - 1) + [config.output_activation], config.init, generator)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, D) -> (B, code_size)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, code_size) -> (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def save(self, directory, **extra) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``; see :func:`aekit.load`."""
        from .checkpoint import save

        save(self, directory, **extra)


class EncoderClassifier(nn.Module):
    """An encoder followed by a linear softmax head; ``forward`` returns logits (B, n_classes)."""

    def __init__(self, encoder: nn.Module, code_size: int, n_classes: int, head_init: str = "zeros",
                 generator: torch.Generator | None = None):
        super().__init__()
        self.config: ClassifierConfig | None = None  # set by from_autoencoder; needed to save
        self.encoder = encoder
        self.head = nn.Linear(code_size, n_classes)
        if head_init == "zeros":  # the tutorial's tf.zeros for W_softmax and b_softmax
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        else:
            init_linear(self.head, head_init, generator, "identity")

    @classmethod
    def from_autoencoder(cls, autoencoder: StackedAutoencoder, n_classes: int, head_init: str = "zeros",
                         generator: torch.Generator | None = None) -> "EncoderClassifier":
        """Share ``autoencoder``'s encoder (not a copy) and remember its config, so the result can be saved."""
        clf = cls(autoencoder.encoder, autoencoder.config.code_size, n_classes, head_init, generator)
        clf.config = ClassifierConfig(autoencoder=autoencoder.config, n_classes=n_classes, head_init=head_init)
        return clf

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # (B, n_classes) logits

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self(x), dim=1)

    def save(self, directory, **extra) -> None:
        from .checkpoint import save

        save(self, directory, **extra)


@dataclass
class ClassifierConfig:
    autoencoder: AutoencoderConfig  # the encoder is this autoencoder's
    n_classes: int
    head_init: str = "zeros"


def build_model(kind: str, config: dict) -> nn.Module:
    """Rebuild a model from its saved kind and config (weights are loaded separately)."""
    if kind == "StackedAutoencoder":
        return StackedAutoencoder(AutoencoderConfig(**config))
    if kind == "EncoderClassifier":
        ae = StackedAutoencoder(AutoencoderConfig(**config["autoencoder"]))
        return EncoderClassifier.from_autoencoder(ae, config["n_classes"], config.get("head_init", "zeros"))
    raise ConfigError(f"model kind {kind!r} is unknown; known: StackedAutoencoder, EncoderClassifier")

