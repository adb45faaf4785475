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

from .errors import DataError
from .fileio import atomic_path, write_json

FORMAT = "aekit-checkpoint"
VERSION = 1
CONFIG, WEIGHTS = "config.json", "model.safetensors"


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
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{cfg_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{cfg_path}: not an aekit checkpoint (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version", 0) > VERSION:
        raise DataError(f"{cfg_path}: checkpoint version {meta['version']} is newer than this aekit reads ({VERSION}); upgrade aekit")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise DataError(f"{weights}: corrupt or unreadable safetensors file ({e})") from None
    return meta, tensors


def load(directory: str | os.PathLike):
    """Rebuild what was saved in ``directory``: a model, or a fitted scikit-learn estimator."""
    meta, tensors = read(directory)
    kind = meta["kind"]
    if kind in ("AutoencoderTransformer", "AutoencoderClassifier"):
        from . import estimators

        return estimators.from_checkpoint(meta, tensors)
    from .models import build_model

    model = build_model(kind, meta["config"])
    weights = {k: v for k, v in tensors.items() if not k.startswith("extra.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise DataError(f"{directory}: weights do not fit the saved config: {str(e).splitlines()[0]}") from None
    model.extra = meta.get("extra", {})
    model.extra_arrays = {k[len("extra."):]: v.numpy() for k, v in tensors.items() if k.startswith("extra.")}
    return model.eval()
