"""aekit: autoencoders on PyTorch, from the classic TF1 tutorial to modern recipes."""

from .checkpoint import load
from .data import Dataset, Split
from .datasets import load_dataset
from .errors import AekitError, ConfigError, DataError
from .models import AutoencoderConfig, EncoderClassifier, StackedAutoencoder
from .optim import TF1RMSprop
from .presets import PretrainProgram, StackedProgram
from .programs import run_pretrain, run_stacked

__version__ = "0.1.0"

__all__ = [
    "AekitError", "AutoencoderConfig", "ConfigError", "DataError", "Dataset", "EncoderClassifier", "PretrainProgram",
    "Split", "StackedAutoencoder", "StackedProgram", "TF1RMSprop", "load", "load_dataset", "run_pretrain", "run_stacked",
]
