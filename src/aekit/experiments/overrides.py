"""``--set KEY=VALUE`` and TOML ``[config]`` tables, turned into a checked :class:`Recipe`.

One name per setting: a recipe field by its name (``hidden_sizes``, ``noise``), a phase's field as
``train.KEY`` or ``finetune.KEY``. A phase key without a phase (``epochs``, ``learning_rate``) is the
autoencoder's training, ``train``: the only phase of the stacked program and the pretraining of the
pretrain program. An unknown key is refused with the nearest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing

from aekit.errors import ConfigError
from aekit.experiments.recipe import Finetune, Phase, Recipe, check, fields_of, keys

MAX_EPOCHS_SCALE = 1000.0
PHASES = {"train": Phase, "finetune": Finetune}


def parse_overrides(pairs: list[str] | None) -> dict[str, object]:
    """``["key=value", ...]`` as a dict of text values; each key once."""
    out: dict[str, object] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected key=value, for example --set batch_size=128")
        key = key.strip()
        if key in out:
            raise ConfigError(f"--set {shown(key)} is given twice ({out[key]!r} and {value.strip()!r}); give each key once")
        out[key] = value.strip()
    return out


def flatten(table: dict, prefix: str = "") -> dict[str, object]:
    """A TOML table as dotted keys: ``{"finetune": {"epochs": 3}}`` (``[config.finetune]``) -> ``finetune.epochs``."""
    out: dict[str, object] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def resolve(key: str) -> tuple[str, str] | None:
    """(phase or "", field) that ``key`` names in any recipe, or None for an unknown key."""
    phase, dot, name = key.partition(".")
    if dot:
        return (phase, name) if phase in PHASES and name in fields_of(PHASES[phase]) else None
    if key in fields_of(Recipe) and key not in PHASES:
        return "", key
    if key in fields_of(Phase):  # a bare phase key: the autoencoder's training
        return "train", key
    return None


def applies(recipe: Recipe, key: str) -> bool:
    """Whether ``key`` is known and ``recipe`` has the part it sets (``finetune.*``: the pretrain program)."""
    where = resolve(key)
    return where is not None and (where[0] != "finetune" or recipe.finetune is not None)


def apply_overrides(recipe: Recipe, overrides: dict[str, object], where: str = "--set") -> Recipe:
    """A checked copy of ``recipe`` with ``overrides`` applied; keys ``recipe`` has no part for are refused."""
    changes: dict[str, dict[str, object]] = {"": {}, "train": {}, "finetune": {}}
    given: dict[tuple[str, str], str] = {}
    for key, value in overrides.items():
        target = resolve(key)
        if target is None:
            raise unknown_key_error(key, keys(recipe), where)
        if target[0] == "finetune" and recipe.finetune is None:
            raise ConfigError(f"{where} {key}: the {recipe.program} program has no fine-tuning phase; "
                              "finetune.* keys are for the pretrain program")
        if target in given:
            raise ConfigError(f"{where}: {given[target]} and {key} set the same field; give one")
        given[target] = key
        part, name = target
        owner = Recipe if not part else (Finetune if part == "finetune" else Phase)
        changes[part][name] = coerce(key, value, typing.get_type_hints(owner)[name])
    train = dataclasses.replace(recipe.train, **changes["train"])
    finetune = None if recipe.finetune is None else dataclasses.replace(recipe.finetune, **changes["finetune"])
    try:
        return check(dataclasses.replace(recipe, **changes[""], train=train, finetune=finetune))
    except ConfigError as e:
        raise ConfigError(f"{where} {e}") from None


def scale_epochs(recipe: Recipe, factor: float) -> Recipe:
    """Every epoch count times ``factor`` (at least one epoch each; 0, meaning off, stays 0)."""
    if not (math.isfinite(factor) and 0 < factor <= MAX_EPOCHS_SCALE):
        raise ConfigError(f"--epochs-scale {factor} must be positive and at most {MAX_EPOCHS_SCALE:g}")

    def scaled(n: int) -> int:
        return max(1, math.ceil(n * factor)) if n > 0 else n

    finetune = recipe.finetune and dataclasses.replace(recipe.finetune, epochs=scaled(recipe.finetune.epochs),
                                                       supervised_epochs=scaled(recipe.finetune.supervised_epochs))
    return check(dataclasses.replace(recipe, layerwise_epochs=scaled(recipe.layerwise_epochs), finetune=finetune,
                                     train=dataclasses.replace(recipe.train, epochs=scaled(recipe.train.epochs))))


def with_code_size(recipe: Recipe, code_size: int | None) -> Recipe:
    """``recipe`` with its innermost layer (the code) set to ``code_size``."""
    if code_size is None:
        return recipe
    if code_size < 1:
        raise ConfigError(f"--code-size {code_size} must be a positive integer")
    return check(dataclasses.replace(recipe, hidden_sizes=(*recipe.hidden_sizes[:-1], code_size)))


def _kind(annotation) -> str:
    text = str(annotation)
    for kind in ("tuple", "int", "float", "str", "bool"):
        if kind in text:
            return kind
    return text


def coerce(name: str, value, annotation):
    """``value`` (text from --set, or a typed TOML value) as the field's type; the message names the key."""
    kind = _kind(annotation)
    floats = kind == "tuple" and "float" in str(annotation)  # per-layer weights
    expected = {"tuple": "a list of numbers like [1000, 10, 0.1] (or 1000,10,0.1)" if floats else
                "a list of integers like [256, 128] (or 256,128)", "int": "an integer", "float": "a number",
                "str": "a string", "bool": "true or false"}[kind]
    try:
        if isinstance(value, str):
            if kind == "tuple":
                parts = [v.strip() for v in value.strip().strip("[]()").split(",")]
                if not all(parts):
                    raise ValueError(value)
                return tuple(_finite(float(v)) if floats else int(v) for v in parts)
            if kind == "bool":
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "1")
            return _finite({"int": int, "float": float, "str": str}[kind](value))
        if kind == "tuple" and isinstance(value, (list, tuple)) and all(
                isinstance(v, (int, float) if floats else int) and not isinstance(v, bool) for v in value):
            return tuple(_finite(float(v)) if floats else v for v in value)
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return _finite(float(value))
        if kind in ("bool", "str") and isinstance(value, bool if kind == "bool" else str):
            return value
    except (ValueError, OverflowError):
        pass
    raise ConfigError(f"{shown(name)}={value!r}: expected {expected} (finite numbers only)")


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(value)
    return value


def shown(key: str) -> str:
    """A key as a message shows it: as typed, or quoted where it holds a newline or another unprintable
    character (an error stays one line)."""
    return key if key.isprintable() else repr(key)


def unknown_key_error(key: str, valid, where: str = "--set") -> ConfigError:
    near = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    return ConfigError(f"{where} {shown(key)}: unknown key{hint} valid keys: {', '.join(sorted(valid))}")
