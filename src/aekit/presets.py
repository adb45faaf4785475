"""The tutorial's two programs as typed configs, and ``--set key=value`` overrides.

``seed-stacked`` and ``seed-pretrain`` hold the tutorial's exact hyperparameters; every
field can be overridden, and an unknown key is rejected with the nearest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class StackedProgram:
    """Program 1: a 784-256-128-256-784 sigmoid autoencoder trained with TF1 RMSProp."""

    learning_rate: float = 0.02  # RMSProp learning rate
    training_epochs: int = 50
    batch_size: int = 256
    display_step: int = 5  # print the loss every this many epochs
    examples_to_show: int = 10  # test images in the reconstruction figure
    hidden_sizes: tuple[int, ...] = (256, 128)  # encoder widths; the decoder mirrors them
    activation: str = "sigmoid"
    init: str = "normal"  # N(0, 1) weights and biases, as tf.random_normal
    optimizer: str = "rmsprop-tf1"


@dataclass(frozen=True)
class PretrainProgram:
    """Program 2: pretrain a 784-128-64-128-784 autoencoder, then fine-tune encoder + softmax."""

    learning_rate_rmsprop: float = 0.02  # pretraining (reconstruction) learning rate
    learning_rate_gd: float = 0.5  # fine-tuning (classification) learning rate
    pretrain_epochs: int = 100  # the tutorial's num_epochs
    finetune_epochs: int = 200  # the tutorial's num_epochs + 100
    batch_size: int = 256
    display_step: int = 5
    examples_to_show: int = 10
    hidden_sizes: tuple[int, ...] = (128, 64)
    activation: str = "sigmoid"
    init: str = "normal"
    pretrain_optimizer: str = "rmsprop-tf1"
    finetune_optimizer: str = "sgd"  # tf.train.GradientDescentOptimizer
    head_init: str = "zeros"  # the tutorial's tf.zeros softmax layer


PRESETS: dict[str, object] = {
    "seed-stacked": StackedProgram(),
    "seed-pretrain": PretrainProgram(),
}
PROGRAMS = ("stacked", "pretrain")


def get_preset(program: str, preset: str = "seed"):
    key = f"{preset}-{program}"
    if key not in PRESETS:
        names = sorted({k.split("-", 1)[0] for k in PRESETS})
        raise ConfigError(f"--preset {preset!r} has no {program!r} program; available presets: {', '.join(names)}")
    return PRESETS[key]


def _kind(annotation) -> str:
    text = str(annotation)
    for kind in ("tuple", "int", "float", "str", "bool"):
        if kind in text:
            return kind
    return text


def _coerce(name: str, value, annotation):
    """Turn ``value`` (text from --set, or a typed TOML value) into the field's type; say which key failed."""
    kind = _kind(annotation)
    expected = {"tuple": "a list of integers like [256, 128] (or 256,128)", "int": "an integer", "float": "a number",
                "str": "a string", "bool": "true or false"}[kind]
    try:
        if isinstance(value, str):
            if kind == "tuple":
                return tuple(int(v) for v in value.replace("-", ",").split(",") if v.strip())
            if kind == "bool":
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "1")
            return {"int": int, "float": float, "str": str}[kind](value)
        if kind == "tuple" and isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind == "bool" and isinstance(value, bool):
            return value
    except ValueError:
        pass
    raise ConfigError(f"{name}={value!r}: expected {expected}")


def field_names(config) -> list[str]:
    return [f.name for f in dataclasses.fields(config)]


def unknown_key_error(key: str, valid, where: str = "--set") -> ConfigError:
    near = difflib.get_close_matches(key, list(valid), n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    return ConfigError(f"{where} {key}: unknown key{hint} valid keys: {', '.join(sorted(valid))}")


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected key=value, for example --set batch_size=128")
        out[key.strip()] = value.strip()
    return out


def apply_overrides(config, overrides: dict[str, object]):
    """A copy of ``config`` with ``overrides`` applied; unknown keys raise ConfigError."""
    hints = typing.get_type_hints(type(config))
    valid = field_names(config)
    changes = {}
    for key, value in overrides.items():
        if key not in valid:
            raise unknown_key_error(key, valid)
        changes[key] = _coerce(key, value, hints[key])
    return validate(dataclasses.replace(config, **changes))


def scale_epochs(config, factor: float):
    """Multiply every ``*epochs`` field by ``factor`` (at least one epoch each)."""
    if not factor > 0:
        raise ConfigError(f"--epochs-scale {factor} must be positive")
    changes = {f: max(1, math.ceil(getattr(config, f) * factor)) for f in field_names(config) if f.endswith("epochs")}
    return validate(dataclasses.replace(config, **changes))


def validate(config):
    """Check ranges: positive epochs, batch size, learning rates, display step and layer sizes."""
    for name in field_names(config):
        value = getattr(config, name)
        if name.endswith(("epochs", "batch_size", "display_step", "examples_to_show")) and value < 1:
            raise ConfigError(f"{name}={value} must be a positive integer (>= 1)")
        if name.startswith("learning_rate") and not value > 0:
            raise ConfigError(f"{name}={value} must be positive")
        if name == "hidden_sizes" and (not value or min(value) < 1):
            raise ConfigError(f"hidden_sizes={value} must be one or more positive integers, like 256,128")
    return config
