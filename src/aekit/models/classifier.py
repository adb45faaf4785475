"""A classifier on an autoencoder's encoder: the encoder (shared, not copied) and a linear softmax head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from aekit.models.layers import SaveMixin, init_linear
from aekit.models.stacked import StackedAutoencoder


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
