"""aekit: autoencoders on PyTorch, from the classic TF1 tutorial to modern recipes.

The public names are imported on first use (PEP 562), so ``import aekit`` and ``aekit --help``
do not pay for torch; ``from aekit import load`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports these on first use
    from aekit.data.arrays import Dataset, Split
    from aekit.data.catalog import load_dataset
    from aekit.errors import AekitError, ConfigError, DataError
    from aekit.experiments.presets import get_preset
    from aekit.experiments.programs import run_pretrain, run_stacked
    from aekit.experiments.recipe import Finetune, Phase, Recipe
    from aekit.loading import load
    from aekit.models.classifier import EncoderClassifier
    from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
    from aekit.training.optim import TF1RMSprop

__version__ = "0.1.0"

__all__ = [
    "AekitError", "AutoencoderConfig", "ConfigError", "DataError", "Dataset", "EncoderClassifier", "Finetune", "Phase",
    "Recipe", "Split", "StackedAutoencoder", "TF1RMSprop", "get_preset", "load", "load_dataset", "run_pretrain",
    "run_stacked",
]

# public name -> the submodule that defines it
_SOURCES = {
    "load": "loading", "Dataset": "data.arrays", "Split": "data.arrays", "load_dataset": "data.catalog",
    "AekitError": "errors", "ConfigError": "errors", "DataError": "errors",
    "AutoencoderConfig": "models.stacked", "EncoderClassifier": "models.classifier",
    "StackedAutoencoder": "models.stacked", "TF1RMSprop": "training.optim", "Recipe": "experiments.recipe",
    "Phase": "experiments.recipe", "Finetune": "experiments.recipe", "get_preset": "experiments.presets",
    "run_pretrain": "experiments.programs", "run_stacked": "experiments.programs",
}


def __getattr__(name: str):
    if name not in _SOURCES:
        raise AttributeError(f"module 'aekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_SOURCES[name]}", __name__), name)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
