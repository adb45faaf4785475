"""The model registry: every architecture registers once, in :data:`ARCHITECTURES`.

An architecture is a model class with ``config_class`` (its typed config, saved in ``config.json``),
``from_recipe(recipe, data, generator)``, and the autoencoder protocol (``encode``, ``decode``,
``forward``; see ``models.layers.is_autoencoder``); optionally an objective of its own (the VAE's
ELBO), used instead of the recipe's reconstruction loss. Training (``--set architecture=NAME``),
checkpoint loading, inference, export and figures all go through this table, so adding an
architecture is one new file plus one line here (CONTRIBUTING.md shows one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from aekit.checkpoint import CONFIG, DAMAGED, WEIGHTS, as_numpy, load_weights
from aekit.errors import ConfigError, DataError
from aekit.models.classifier import EncoderClassifier
from aekit.models.conv import ConvAutoencoder
from aekit.models.conv_vae import ConvVAE
from aekit.models.residual import PCAResidualAutoencoder
from aekit.models.stacked import StackedAutoencoder
from aekit.models.vae import VAE, vae_objective


@dataclass(frozen=True)
class Architecture:
    model: type  # with config_class and from_recipe(recipe, data, generator)
    objective: Callable | None = None  # its own loss, objective(model, x) -> loss or (loss, parts); None: the recipe's


ARCHITECTURES: dict[str, Architecture] = {  # --set architecture=NAME
    "mlp": Architecture(StackedAutoencoder),
    "conv": Architecture(ConvAutoencoder),
    "vae": Architecture(VAE, vae_objective),
    "pca-residual": Architecture(PCAResidualAutoencoder),
    "conv-vae": Architecture(ConvVAE, vae_objective),
}


def kinds() -> dict[str, type]:
    """The kind saved in ``config.json`` (the model's class name) -> its class."""
    return {a.model.__name__: a.model for a in ARCHITECTURES.values()}


def build_model(kind: str, config: dict) -> nn.Module:
    """Rebuild a model from its saved kind and config (weights are loaded separately)."""
    known = kinds()
    if kind in known:
        return known[kind](known[kind].config_class(**config))
    if kind == "EncoderClassifier":
        ae = build_model(config.get("autoencoder_kind", "StackedAutoencoder"), config["autoencoder"])
        head_init = config.get("head_init", "zeros")
        return EncoderClassifier.from_autoencoder(ae, config["n_classes"], head_init)
    raise ConfigError(f"model kind {kind!r} is unknown; known: {', '.join(known)}, EncoderClassifier")


def rebuild(kind: str, config: dict, where: str | os.PathLike) -> nn.Module:
    """:func:`build_model` on the meta device: nothing is allocated until ``load_weights`` has checked the
    weights, so a damaged config cannot ask for more memory than its weights file holds."""
    try:
        with torch.device("meta"):
            return build_model(kind, config)
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError, OverflowError) as e:  # ConfigError too
        detail = (str(e).splitlines() or [type(e).__name__])[0]  # torch's messages go on with a C++ trace
        raise DataError(f"{where}: cannot rebuild a {kind} from its saved config ({detail}); {DAMAGED}") from None


def from_checkpoint(meta: dict, tensors: dict[str, torch.Tensor], directory: str | os.PathLike) -> nn.Module:
    """The model a checkpoint folder holds (``meta`` and ``tensors`` as ``checkpoint.read`` returns them)."""
    directory = Path(directory)
    model = rebuild(meta["kind"], meta["config"], directory / CONFIG)
    weights = {k: v for k, v in tensors.items() if not k.startswith("extra.")}
    load_weights(model, weights, directory / WEIGHTS)
    model.extra = meta.get("extra", {})
    model.extra_arrays = {k[len("extra."):]: as_numpy(v) for k, v in tensors.items() if k.startswith("extra.")}
    return model.eval()
