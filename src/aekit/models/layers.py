"""The pieces every architecture is built from: activations, initialisations, MLP stacks, the
autoencoder protocol (:func:`is_autoencoder`) and ``save()``."""

from __future__ import annotations

import math

import torch
from torch import nn

from aekit import checkpoint
from aekit.errors import ConfigError

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU,
    "selu": nn.SELU, "identity": nn.Identity,
}


INITS = ("normal", "xavier", "kaiming", "torch")


def is_autoencoder(model) -> bool:
    """The protocol every architecture implements: ``encode`` (B, D) -> (B, code), ``decode`` back, and
    ``forward`` = decode(encode(x)); a classifier has ``encode`` but no ``decode``."""
    return all(callable(getattr(model, name, None)) for name in ("encode", "decode", "forward"))


class SaveMixin:
    def save(self, directory, **extra) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``; see :func:`aekit.load`."""
        checkpoint.save(self, directory, **extra)


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
