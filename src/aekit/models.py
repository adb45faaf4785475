"""Autoencoders and the classifier built on their encoder.

The tutorial's networks are ``StackedAutoencoder(AutoencoderConfig(hidden_sizes=(256, 128)))``
and ``(128, 64)``: sigmoid everywhere, N(0, 1) weights and biases (``tf.random_normal``),
a decoder that mirrors the encoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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


def is_autoencoder(model) -> bool:
    """The protocol every architecture implements: ``encode`` (B, D) -> (B, code), ``decode`` back, and
    ``forward`` = decode(encode(x)); a classifier has ``encode`` but no ``decode``."""
    return all(callable(getattr(model, name, None)) for name in ("encode", "decode", "forward"))


class SaveMixin:
    def save(self, directory, **extra) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``; see :func:`aekit.load`."""
        from .checkpoint import save

        save(self, directory, **extra)


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


def mlp(sizes: list[int], activations: list[str], init: str, gen: torch.Generator | None,
        dropout: float = 0.0, batch_norm: bool = False) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]``, each followed by its activation; hidden layers
    (all but the last) optionally get batch norm before and dropout after the activation."""
    layers: list[nn.Module] = []
    n = len(sizes) - 1
    for i, (n_in, n_out, act) in enumerate(zip(sizes[:-1], sizes[1:], activations)):
        linear = nn.Linear(n_in, n_out)
        init_linear(linear, init, gen, act)
        hidden = i < n - 1
        layers += [linear, *([nn.BatchNorm1d(n_out)] if batch_norm and hidden else []), ACTIVATIONS[act]()]
        if dropout and hidden:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


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


class EncoderClassifier(SaveMixin, nn.Module):
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
    def from_autoencoder(cls, autoencoder: nn.Module, n_classes: int, head_init: str = "zeros",
                         generator: torch.Generator | None = None) -> "EncoderClassifier":
        """Share ``autoencoder``'s encoder (not a copy) and remember its config, so the result can be saved."""
        encoder = autoencoder.encoder if isinstance(autoencoder, StackedAutoencoder) else EncodeOnly(autoencoder)
        clf = cls(encoder, autoencoder.config.code_size, n_classes, head_init, generator)
        clf.config = ClassifierConfig(autoencoder=autoencoder.config, n_classes=n_classes, head_init=head_init,
                                      autoencoder_kind=type(autoencoder).__name__)
        return clf

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # (B, n_classes) logits

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self(x), dim=1)


class EncodeOnly(nn.Module):
    """The encoder of a model whose encoder is not one module (convolutional, variational)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x)


@dataclass
class ClassifierConfig:
    autoencoder: object  # the config of the autoencoder whose encoder this is
    n_classes: int
    head_init: str = "zeros"
    autoencoder_kind: str = "StackedAutoencoder"


def _autoencoder_classes() -> dict:
    from .conv import ConvAutoencoder, ConvAutoencoderConfig
    from .residual import PCAResidualAutoencoder, ResidualConfig
    from .vae import VAE, VAEConfig

    return {"StackedAutoencoder": (StackedAutoencoder, AutoencoderConfig), "ConvAutoencoder": (ConvAutoencoder, ConvAutoencoderConfig),
            "VAE": (VAE, VAEConfig), "PCAResidualAutoencoder": (PCAResidualAutoencoder, ResidualConfig)}


def build_model(kind: str, config: dict) -> nn.Module:
    """Rebuild a model from its saved kind and config (weights are loaded separately)."""
    classes = _autoencoder_classes()
    if kind in classes:
        model_cls, config_cls = classes[kind]
        return model_cls(config_cls(**config))
    if kind == "EncoderClassifier":
        ae = build_model(config.get("autoencoder_kind", "StackedAutoencoder"), config["autoencoder"])
        head_init = config.get("head_init", "zeros")
        return EncoderClassifier.from_autoencoder(ae, config["n_classes"], head_init)
    raise ConfigError(f"model kind {kind!r} is unknown; known: {', '.join(classes)}, EncoderClassifier")


