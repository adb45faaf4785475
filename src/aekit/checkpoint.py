"""Checkpoints: ``config.json`` beside ``model.safetensors``, rebuildable without the training code.

``config.json`` holds the format version, the model kind, its config and free-form ``extra``
metadata (dataset, metrics, estimator parameters). ``model.safetensors`` holds the weights and any
extra arrays (prefixed ``extra.``). Safetensors, not pickle: loading never runs code.
Both files are written atomically, weights first, so a folder with a ``config.json`` is complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch

from aekit.errors import DataError
from aekit.fileio import atomic_path, write_json

FORMAT = "aekit-checkpoint"
VERSION = 1
CONFIG, WEIGHTS = "config.json", "model.safetensors"
DAMAGED = "the checkpoint is damaged or not written by aekit: save it again, or copy it again"


def save(model: torch.nn.Module, directory: str | os.PathLike, *, kind: str | None = None, config: dict | None = None,
         extra: dict | None = None, arrays: dict[str, np.ndarray] | None = None) -> Path:
    """Save ``model`` (its ``config`` dataclass, or ``config``) into ``directory``."""
    from safetensors.torch import save_file

    if config is None:
        if getattr(model, "config", None) is None:
            raise DataError(f"cannot save a {type(model).__name__} without a config; build it with from_autoencoder()")
        config = dataclasses.asdict(model.config)
    directory = Path(directory)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for name, arr in (arrays or {}).items():
        tensors[f"extra.{name}"] = torch.from_numpy(np.ascontiguousarray(arr))
    # An older checkpoint here loses its config first: a crash before the new config is written then leaves a
    # folder that says it is incomplete, never the old config beside the new weights.
    (directory / CONFIG).unlink(missing_ok=True)
    with atomic_path(directory / WEIGHTS) as part:
        save_file(tensors, str(part))
    write_json(directory / CONFIG, {"format": FORMAT, "version": VERSION, "kind": kind or type(model).__name__,
                                    "config": config, "extra": extra or {}})
    return directory


def read(directory: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """The parsed ``config.json`` and the tensors of a checkpoint folder, with clear errors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    cfg_path, weights = directory / CONFIG, directory / WEIGHTS
    if not cfg_path.is_file() or not weights.is_file():
        raise DataError(f"{directory} is not an aekit checkpoint: expected {CONFIG} and {WEIGHTS} in it, "
                        "as written by model.save(), an estimator's save() or an aekit run directory")
    try:
        meta = json.loads(cfg_path.read_text())
    except OSError as e:
        raise DataError(f"{cfg_path}: cannot read the file ({e.strerror or e}); check its permissions") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, an over-long integer, deep nesting
        raise DataError(f"{cfg_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{cfg_path}: not an aekit checkpoint (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise DataError(f"{cfg_path}: 'version' is {version!r}; expected an integer; {DAMAGED}")
    if version > VERSION:
        raise DataError(f"{cfg_path}: checkpoint version {version} is newer than this aekit reads ({VERSION}); upgrade aekit")
    if not isinstance(meta.get("kind"), str):
        raise DataError(f"{cfg_path}: 'kind' (the saved model's class, e.g. 'StackedAutoencoder') is "
                        f"{'missing' if 'kind' not in meta else repr(meta['kind'])}; expected a string; {DAMAGED}")
    if not isinstance(meta.get("config"), dict):
        raise DataError(f"{cfg_path}: 'config' (the model's settings) is {meta.get('config')!r}; "
                        f"expected a JSON object; {DAMAGED}")
    if not isinstance(meta.get("extra", {}), dict):
        raise DataError(f"{cfg_path}: 'extra' is {type(meta['extra']).__name__}; expected a JSON object; {DAMAGED}")
    try:
        open(weights, "rb").close()  # safetensors reports a permission error as a missing file
    except OSError as e:
        raise DataError(f"{weights}: cannot read the file ({e.strerror or e}); check its permissions") from None
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise DataError(f"{weights}: corrupt or unreadable safetensors file ({e})") from None
    return meta, tensors



def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], where: str | os.PathLike) -> torch.nn.Module:
    """Fill ``model`` (built by :func:`rebuild`) with ``weights``, after checking every name, shape and value."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    if missing or unexpected:
        parts = ([f"lacks {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"] if missing else []) + (
            [f"has unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}"] if unexpected else [])
        raise DataError(f"{where}: weights do not fit the saved config: the file {' and '.join(parts)}; {DAMAGED}")
    for name, want in expected.items():
        got = weights[name]
        if got.shape != want.shape:
            raise DataError(f"{where}: weights do not fit the saved config: {name} has shape {tuple(got.shape)} in the "
                            f"file, the config needs {tuple(want.shape)}; {DAMAGED}")
        if got.is_floating_point() != want.is_floating_point() or got.is_complex():
            raise DataError(f"{where}: {name} is stored as {got.dtype}; expected {want.dtype}; {DAMAGED}")
        if got.is_floating_point() and not torch.isfinite(got).all():
            raise DataError(f"{where}: {name} holds NaN or infinite values; {DAMAGED}")
    model.to_empty(device="cpu")
    model.load_state_dict(weights)
    return model


def as_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor as NumPy; dtypes NumPy lacks (bfloat16, float8) become float32."""
    try:
        return t.numpy()
    except TypeError:
        return t.float().numpy()
