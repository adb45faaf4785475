"""The tutorial's two programs as typed configs, their presets, and ``--set key=value`` overrides.

``tutorial-*`` presets hold the tutorial's exact hyperparameters (``seed`` is their old name, kept as a
deprecated alias); ``modern-*`` are the best recipes found for the same two programs. Every field can be overridden, and an unknown key is rejected
with the nearest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass

from aekit.errors import ConfigError
from aekit.models.layers import ACTIVATIONS, INITS
from aekit.models.registry import ARCHITECTURES
from aekit.training.objectives import LOSSES, NOISES, SPARSITIES
from aekit.training.optim import OPTIMIZERS, SCHEDULES

FINETUNE_MODES = ("full", "frozen", "scratch")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")  # as training.loop.PRECISIONS (not imported: no torch at import)
# Every text field and the values it may take: checked for the whole run before any work.
CHOICES: dict[str, tuple[str, ...]] = {
    "architecture": ARCHITECTURES,  # the registry itself: a new architecture is allowed once registered
    "activation": tuple(ACTIVATIONS), "code_activation": ("", *ACTIVATIONS),
    "init": INITS, "loss": LOSSES, "noise": NOISES, "sparsity": SPARSITIES, "schedule": SCHEDULES,
    "finetune_schedule": SCHEDULES, "precision": PRECISIONS, "optimizer": OPTIMIZERS,
    "pretrain_optimizer": OPTIMIZERS, "finetune_optimizer": OPTIMIZERS, "finetune_mode": FINETUNE_MODES,
    "head_init": ("zeros", *INITS),
}


@dataclass(frozen=True)
class AutoencoderRecipe:
    """How the autoencoder is built and trained. The defaults are the tutorial's; every option
    beyond it (the autoencoder family, modern training) is off unless a preset or --set turns it on."""

    hidden_sizes: tuple[int, ...] = (256, 128)  # encoder widths; the last is the code size
    architecture: str = "mlp"  # mlp; conv (hidden_sizes[:-1] are channels); vae; pca-residual (starts as PCA)
    activation: str = "sigmoid"  # relu, gelu, selu, sigmoid, tanh
    code_activation: str = ""  # on the code; "" means the same as activation
    init: str = "normal"  # normal is N(0, 1) weights and biases (tf.random_normal); xavier, kaiming, torch
    tied: bool = False  # decoder weights are the encoder's, transposed
    dropout: float = 0.0  # after hidden activations
    batch_norm: bool = False  # before hidden activations
    loss: str = "mse"  # mse, or bce (binary cross-entropy with logits)
    noise: str = "none"  # denoising: none, mask or gaussian
    noise_level: float = 0.0  # masked fraction or gaussian standard deviation
    noise_shift: int = 0  # denoising also translates each image by up to this many pixels (images only); 0 = off
    augment_shift: int = 0  # augmentation: each training image and its target moved by up to this many pixels; 0 = off
    sparsity: str = "none"  # sparse codes: none, l1 or kl
    sparsity_weight: float = 0.0
    sparsity_target: float = 0.05  # target mean activation for kl sparsity
    layerwise_epochs: int = 0  # greedy layer-wise pretraining epochs per layer before end-to-end training; 0 = off
    weight_decay: float = 0.0
    schedule: str = "constant"  # learning-rate schedule per batch: constant, cosine, onecycle
    early_stopping: int = 0  # patience (epochs) on the validation MSE, restoring the best weights; 0 = off
    precision: str = "fp32"  # fp32, bf16 / fp16 autocast, or auto: bf16 where the hardware has it (seed: fp32)
    batch_size: int = 256
    display_step: int = 5  # print the loss every this many epochs
    examples_to_show: int = 10  # test images in the reconstruction figure


@dataclass(frozen=True)
class StackedProgram(AutoencoderRecipe):
    """Program 1: train an autoencoder (the tutorial's 784-256-128-256-784, sigmoid, TF1 RMSProp)."""

    learning_rate: float = 0.02
    training_epochs: int = 50
    optimizer: str = "rmsprop-tf1"  # rmsprop-tf1, sgd, adam, adamw


@dataclass(frozen=True)
class PretrainProgram(AutoencoderRecipe):
    """Program 2: pretrain an autoencoder (the tutorial's 784-128-64-128-784), then fine-tune encoder + softmax."""

    hidden_sizes: tuple[int, ...] = (128, 64)
    pretrain_learning_rate: float = 0.02  # the tutorial's learning_rate_RMSProp
    finetune_learning_rate: float = 0.5  # the tutorial's learning_rate_GradientDescent
    pretrain_epochs: int = 100  # the tutorial's num_epochs
    finetune_epochs: int = 200  # the tutorial's num_epochs + 100
    pretrain_optimizer: str = "rmsprop-tf1"
    finetune_optimizer: str = "sgd"  # tf.train.GradientDescentOptimizer
    finetune_mode: str = "full"  # full; frozen (train the head only: a linear probe); scratch (no pretraining)
    finetune_weight_decay: float = 0.0
    finetune_schedule: str = "constant"
    finetune_early_stopping: int = 0  # patience (epochs) on validation accuracy; 0 = off
    # Semi-supervised fine-tuning, where some training images have no label (aekit fewlabels):
    finetune_reconstruction_weight: float = 0.0  # keep reconstructing the unlabeled images; 0 = off
    finetune_pseudo_label_weight: float = 0.0  # learn the unlabeled images' confident predictions under noise; 0 = off
    pseudo_label_threshold: float = 0.95  # the probability a prediction needs to become a pseudo-label
    head_init: str = "zeros"  # the tutorial's tf.zeros softmax layer


# The modern recipes, chosen by the trials recorded in docs/recipes.md.
MODERN_AE = dict(activation="gelu", code_activation="identity", init="kaiming", weight_decay=1e-4,
                 schedule="onecycle", batch_size=128)
# What modern-stacked trains with at every code size, chosen by quality per second (python -m benchmarks frontier): batches
# of 256 under bf16 autocast where the hardware multiplies bf16 (precision="auto": 1.5-2x the samples per second
# of fp32 on a CPU with AMX; fp32 elsewhere, where bf16 is emulated and slower; 512 is faster still but refuses
# datasets of fewer than 512 training images), one-cycle AdamW, and early stopping that keeps the best epoch on
# small datasets, where the residual branches overfit.
FAST_RESIDUAL = dict(architecture="pca-residual", batch_size=256, precision="auto", optimizer="adamw",
                     early_stopping=5)
PRESETS: dict[str, object] = {
    "tutorial-stacked": StackedProgram(),
    "tutorial-pretrain": PretrainProgram(),
    # Starts as PCA and learns what PCA misses; the recipe for codes over 64 on large data (BY_SIZE has the others).
    "modern-stacked": StackedProgram(**{**MODERN_AE, **FAST_RESIDUAL}, hidden_sizes=(1024, 512, 128),
                                     learning_rate=1.5e-3, training_epochs=25),
    # A wide denoising MLP autoencoder, then the whole network fine-tuned with dropout and early stopping; where
    # some images have no label, they join fine-tuning as confident pseudo-labels under the denoising noise.
    "modern-pretrain": PretrainProgram(**MODERN_AE, hidden_sizes=(1024, 512, 64), pretrain_learning_rate=2e-3,
                                       pretrain_epochs=20, pretrain_optimizer="adamw", noise="mask", noise_level=0.25,
                                       finetune_learning_rate=1e-3, finetune_epochs=30, finetune_optimizer="adamw",
                                       finetune_weight_decay=1e-4, finetune_schedule="onecycle", dropout=0.2,
                                       finetune_early_stopping=8, head_init="xavier",
                                       finetune_pseudo_label_weight=1.0),  # acts where images lack labels
}
# The plain MLP member of the family (the base of the quality benchmark's variants).
MODERN_MLP = StackedProgram(**MODERN_AE, hidden_sizes=(1024, 512, 128), learning_rate=2e-3, training_epochs=30,
                            optimizer="adamw")
# Presets whose recipe depends on the code size and on the size of the training set: rows of (largest code
# size, largest number of training images, recipe), the first row that fits wins; None is no limit. modern-stacked
# is chosen by quality per second (python -m benchmarks frontier, docs/recipes.md).
SMALL_DATA = 10_000  # training images up to which modern-stacked uses its small-data recipes
SMALL_CODE = 64  # code sizes up to which it uses its small-code recipes
# On small data the residual branches overfit within a few epochs; translating each training image (and its
# target) by up to a pixel (augment_shift=1) more than makes up for it, with a strong weight decay at code 32.
SMALL_DATA_RESIDUAL = dict(FAST_RESIDUAL, augment_shift=1, early_stopping=10)
BY_SIZE: dict[str, tuple[tuple[int | None, int | None, object], ...]] = {
    "modern-stacked": (
        (SMALL_CODE, SMALL_DATA, StackedProgram(**{**MODERN_AE, **SMALL_DATA_RESIDUAL, "weight_decay": 1.0},
                                                hidden_sizes=(1024, 512, 32), learning_rate=5e-3, training_epochs=40)),
        # A small code is a harder bottleneck: translation augmentation, over more epochs, ends lower; batches of
        # 512 at a higher peak pay for the extra epochs (a 30-epoch run of 256 without it ended 2% higher).
        (SMALL_CODE, None, StackedProgram(**{**MODERN_AE, **FAST_RESIDUAL, "batch_size": 512, "augment_shift": 1},
                                          hidden_sizes=(1024, 512, 32), learning_rate=4e-3, training_epochs=40)),
        # At a larger code a peak above 1.5e-3 drives the validation error up in the warm-up: a lower one, longer.
        (None, SMALL_DATA, StackedProgram(**{**MODERN_AE, **SMALL_DATA_RESIDUAL}, hidden_sizes=(1024, 512, 128),
                                          learning_rate=1e-3, training_epochs=80)),
        (None, None, PRESETS["modern-stacked"]),
    ),
}


PROGRAMS = ("stacked", "pretrain")


PRESET_ALIASES = {"seed": "tutorial"}  # old name -> name (deprecated: "seed" also names the RNG seed)


def get_preset(program: str, preset: str = "tutorial", code_size: int | None = None, n_train: int | None = None,
               image_shape: tuple[int, ...] | None = None):
    """The named preset's recipe. A preset with a table in :data:`BY_SIZE` gives its first row that fits
    ``code_size`` and ``n_train`` (the number of training images); a size not given is taken as large, so
    without either the result is the preset's own recipe in :data:`PRESETS`. Translation augmentation needs
    2-D images: where ``image_shape`` says the data has none, the row's recipe runs without it. The code
    layer itself is set by :func:`with_code_size`."""
    key = f"{PRESET_ALIASES.get(preset, preset)}-{program}"
    if key not in PRESETS:
        names = sorted({k.split("-", 1)[0] for k in PRESETS})
        raise ConfigError(f"--preset {preset!r} has no {program!r} program; available presets: {', '.join(names)}")
    table = BY_SIZE.get(key)
    if table is None:
        return PRESETS[key]
    cfg = next(cfg for most_code, most_train, cfg in table
               if _fits(code_size, most_code) and _fits(n_train, most_train))
    if image_shape is not None and len(image_shape) != 2 and getattr(cfg, "augment_shift", 0):
        cfg = dataclasses.replace(cfg, augment_shift=0)
    return cfg


def _fits(size: int | None, most: int | None) -> bool:
    """Whether ``size`` (None: unknown, taken as large) is within the limit ``most`` (None: no limit)."""
    return most is None or (size is not None and size <= most)


def _kind(annotation) -> str:
    text = str(annotation)
    for kind in ("tuple", "int", "float", "str", "bool"):
        if kind in text:
            return kind
    return text


def _coerce(name: str, value, annotation):
    """Turn ``value`` (text from --set, or a typed TOML value) into the field's type; say which key failed."""
    kind = _kind(annotation)
    floats = kind == "tuple" and "float" in str(annotation)  # e.g. per-layer weights
    expected = {"tuple": "a list of numbers like [1000, 10, 0.1] (or 1000,10,0.1)" if floats else
                "a list of integers like [256, 128] (or 256,128)", "int": "an integer", "float": "a number",
                "str": "a string", "bool": "true or false"}[kind]
    try:
        if isinstance(value, str):
            if kind == "tuple":
                parts = [v.strip() for v in value.strip().strip("[]()").split(",")]
                if not all(parts):
                    raise ValueError(value)
                return _finite(tuple((float if floats else int)(v) for v in parts))
            if kind == "bool":
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "1")
            return _finite({"int": int, "float": float, "str": str}[kind](value))
        if kind == "tuple" and isinstance(value, (list, tuple)) and all(
                isinstance(v, (int, float) if floats else int) and not isinstance(v, bool) for v in value):
            return _finite(tuple(float(v) if floats else v for v in value))
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return _finite(float(value))
        if kind == "bool" and isinstance(value, bool):
            return value
    except ValueError:
        pass
    raise ConfigError(f"{name}={value!r}: expected {expected} (finite numbers only)")


def _finite(value):
    """``value`` unchanged if every number in it is finite; else ValueError (turned into the key's message)."""
    numbers = value if isinstance(value, tuple) else (value,)
    if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
        raise ValueError(value)
    return value


def field_names(config) -> list[str]:
    return [f.name for f in dataclasses.fields(config)]


def shown(key: str) -> str:
    """A key as a message shows it: as typed, or quoted where it holds a newline or other unprintable character
    (an error stays one line)."""
    return key if key.isprintable() else repr(key)


def unknown_key_error(key: str, valid, where: str = "--set") -> ConfigError:
    near = difflib.get_close_matches(key, list(valid), n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    return ConfigError(f"{where} {shown(key)}: unknown key{hint} valid keys: {', '.join(sorted(valid))}")


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected key=value, for example --set batch_size=128")
        key = key.strip()
        if key in out:
            raise ConfigError(f"--set {shown(key)} is given twice ({out[key]!r} and {value.strip()!r}); give each key once")
        out[key] = value.strip()
    return out


# A bare key means the same thing in every program: in the pretrain program, the autoencoder's training is
# its pretraining phase. ``stacked.KEY``, ``pretrain.KEY`` and ``finetune.KEY`` address one program or phase.
BARE_KEYS = {"pretrain": {"learning_rate": "pretrain_learning_rate", "optimizer": "pretrain_optimizer",
                          "training_epochs": "pretrain_epochs", "epochs": "pretrain_epochs"},
             "stacked": {"epochs": "training_epochs"}}
SCOPES = {"stacked": "stacked", "pretrain": "pretrain", "finetune": "pretrain"}  # scope -> its program


def field_for(program: str, config, key: str) -> str | None:
    """The field of ``program``'s ``config`` that the override ``key`` sets, or None where it does not apply."""
    names = field_names(config)
    scope, dot, name = key.rpartition(".")
    if not dot:
        return key if key in names else BARE_KEYS.get(program, {}).get(key)
    if SCOPES.get(scope) != program:
        return None
    if scope in ("pretrain", "finetune") and f"{scope}_{name}" in names:
        return f"{scope}_{name}"
    if scope == "finetune":
        return None  # the fine-tuning phase has its own fields only
    return field_for(program, config, name)


def program_overrides(program: str, config, overrides: dict[str, object], where: str = "--set") -> dict[str, object]:
    """The ``overrides`` that apply to ``program``, keyed by ``config``'s field names. A key naming the field
    (``pretrain_epochs``, ``pretrain.epochs``) wins over a bare key that reaches it (``training_epochs``)."""
    out: dict[str, tuple[object, bool]] = {}  # field -> (value, named exactly)
    for key, value in overrides.items():
        field = field_for(program, config, key)
        if field is None:
            continue
        exact = field == key or "." in key
        if field in out and out[field][1] == exact:
            raise ConfigError(f"{where}: two keys set {program}'s {field} ({out[field][0]!r} and {value!r}); give one")
        if field not in out or exact:
            out[field] = (value, exact)
    return {field: value for field, (value, _) in out.items()}


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
    """Multiply every ``*epochs`` field by ``factor`` (at least one epoch each; 0, meaning off, stays 0)."""
    if not (math.isfinite(factor) and 0 < factor <= MAX_EPOCHS_SCALE):
        raise ConfigError(f"--epochs-scale {factor} must be positive and at most {MAX_EPOCHS_SCALE:g}")
    changes = {f: max(1, math.ceil(getattr(config, f) * factor)) for f in field_names(config)
               if f.endswith("epochs") and getattr(config, f) > 0}
    return validate(dataclasses.replace(config, **changes))


MAX_EPOCHS = 100_000  # per phase; more is a typo (or a run of months)
MAX_EPOCHS_SCALE = 1000.0
MAX_LEARNING_RATE = 1e30  # far above any useful rate; much larger ones overflow float32 updates
MAY_BE_ZERO = {"layerwise_epochs", "early_stopping", "finetune_early_stopping", "weight_decay",
               "finetune_reconstruction_weight", "finetune_pseudo_label_weight",
               "finetune_weight_decay", "noise_level", "noise_shift", "augment_shift", "sparsity_weight",
               "dropout"}


def with_code_size(config, code_size: int | None):
    """Set the innermost layer (the code) of ``config.hidden_sizes``."""
    if code_size is None:
        return config
    if code_size < 1:
        raise ConfigError(f"--code-size {code_size} must be a positive integer")
    return validate(dataclasses.replace(config, hidden_sizes=(*config.hidden_sizes[:-1], code_size)))


def validate(config):
    """Check ranges: positive epochs, batch size, learning rates, display step and layer sizes."""
    for name in field_names(config):
        value = getattr(config, name)
        if name in CHOICES and value not in CHOICES[name]:
            raise ConfigError(f"{name}={value!r} is not allowed; choose one of: {', '.join(map(repr, CHOICES[name]))}")
        if name in MAY_BE_ZERO:
            if value < 0:
                raise ConfigError(f"{name}={value} must be >= 0 (0 turns it off)")
        elif name.endswith(("epochs", "batch_size", "display_step", "examples_to_show")) and value < 1:
            raise ConfigError(f"{name}={value} must be a positive integer (>= 1)")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name}={value} must be a finite number")
        if name.endswith("epochs") and value > MAX_EPOCHS:
            raise ConfigError(f"{name}={value} is more than {MAX_EPOCHS:,} epochs; lower it (or --epochs-scale)")
        if "learning_rate" in name and not 0 < value <= MAX_LEARNING_RATE:
            raise ConfigError(f"{name}={value} must be positive and at most {MAX_LEARNING_RATE:g}")
        if name == "dropout" and not value < 1:
            raise ConfigError(f"dropout={value} must be in [0, 1): the share of units dropped")
        if name == "sparsity_target" and not 0 < value < 1:
            raise ConfigError(f"sparsity_target={value} must be in (0, 1): the target mean activation of a code unit")
        if name == "pseudo_label_threshold" and not 0 < value <= 1:
            raise ConfigError(f"{name}={value} must be in (0, 1]: the probability a prediction needs to count")
        if name == "hidden_sizes" and (not value or min(value) < 1):
            raise ConfigError(f"hidden_sizes={value} must be one or more positive integers, like 256,128")
    return config
