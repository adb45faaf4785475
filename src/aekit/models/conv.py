"""A convolutional autoencoder: stride-2 convolutions down to a flat code, and back.

It takes and returns flat (B, D) batches like every other aekit model: gray images (H, W) or colour images
(H, W, C) stored channels last, as NumPy and Pillow hold them. Inside, a batch is viewed as (B, C, H, W);
any H and W work (each stride-2 convolution rounds up, the transposed ones restore odd sizes), so the same
loop, objectives and evaluation serve it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from aekit.data.images import channels, is_image_shape
from aekit.errors import ConfigError
from aekit.models.layers import ACTIVATIONS, SaveMixin, check_choice


@dataclass
class ConvAutoencoderConfig:
    image_shape: tuple[int, ...] = (28, 28)  # (H, W), or (H, W, C) for C channels, channels last
    channels: tuple[int, ...] = (32, 64)  # per stride-2 convolution
    code_size: int = 32
    activation: str = "gelu"

    def __post_init__(self):
        self.image_shape = tuple(int(v) for v in self.image_shape)
        self.channels = tuple(int(c) for c in self.channels)
        check_choice("activation", self.activation, ACTIVATIONS)
        if not is_image_shape(self.image_shape) or min(self.image_shape[:2]) < 4 or not self.channels \
                or self.code_size < 1:
            raise ConfigError(f"a convolutional autoencoder needs images (H, W) or (H, W, C) of at least 4x4, "
                              "channels and a code size; "
                              f"got image_shape={self.image_shape}, channels={self.channels}, code_size={self.code_size}")

    @property
    def input_size(self) -> int:
        return math.prod(self.image_shape)


class ConvAutoencoder(SaveMixin, nn.Module):
    config_class = ConvAutoencoderConfig

    @classmethod
    def from_recipe(cls, r, data, generator: torch.Generator | None = None) -> "ConvAutoencoder":
        """``hidden_sizes[:-1]`` are the channels of the stride-2 convolutions, the last the code size."""
        return cls(cls.config_class(image_shape=data.image_shape, channels=r.hidden_sizes[:-1] or (32, 64),
                                    code_size=r.hidden_sizes[-1], activation=r.activation), generator=generator)

    def __init__(self, config: ConvAutoencoderConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        act = ACTIVATIONS[config.activation]
        sizes = [tuple(config.image_shape[:2])]
        for _ in config.channels:  # each stride-2 conv halves the size, rounding up
            h, w = sizes[-1]
            sizes.append(((h + 1) // 2, (w + 1) // 2))
        chans = [self.in_channels, *config.channels]
        down = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            down += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), act()]
        self.features = nn.Sequential(*down)
        flat = chans[-1] * sizes[-1][0] * sizes[-1][1]
        self.to_code = nn.Linear(flat, config.code_size)
        self.from_code = nn.Sequential(nn.Linear(config.code_size, flat), act())
        up = []
        for i in range(len(config.channels), 0, -1):
            (h_in, w_in), (h_out, w_out) = sizes[i], sizes[i - 1]
            pad = (h_out - (2 * h_in - 1), w_out - (2 * w_in - 1))  # output_padding restores odd/even sizes
            up += [nn.ConvTranspose2d(chans[i], chans[i - 1], 3, stride=2, padding=1, output_padding=pad)]
            up += [act()] if i > 1 else []
        self.upsample = nn.Sequential(*up)
        self._bottom = (chans[-1], *sizes[-1])
        if generator is not None:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)
                    nn.init.zeros_(m.bias)
        # oneDNN's convolutions run faster on channels-last tensors: the weights are stored so and the batch is
        # viewed so (color input already is). Converting after the initialisation keeps seeded values unchanged.
        self.to(memory_format=torch.channels_last)

    @property
    def in_channels(self) -> int:
        return channels(self.config.image_shape)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Flat (B, D) channels-last images as (B, C, H, W)."""
        h, w = self.config.image_shape[:2]
        # -1 keeps the batch dynamic in ONNX; both are views, channels last in memory (one channel is both layouts)
        return x.view(-1, h, w, self.in_channels).permute(0, 3, 1, 2)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.features(self.images(x)).flatten(1))  # (B, code)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        out = self.upsample(self.from_code(z).view(-1, *self._bottom))  # (B, C, H, W)
        return out.permute(0, 2, 3, 1).flatten(1)  # (B, H * W * C); a view when ``out`` is channels last

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
