"""``aekit.load``: whatever a checkpoint folder holds, a model or a fitted scikit-learn estimator."""

from __future__ import annotations

import os

from aekit import estimators
from aekit.checkpoint import read
from aekit.models import registry

ESTIMATORS = ("AutoencoderTransformer", "AutoencoderClassifier")


def load(directory: str | os.PathLike):
    """Rebuild what was saved in ``directory``: a model (see ``models.registry``), or a fitted estimator."""
    meta, tensors = read(directory)
    if meta["kind"] in ESTIMATORS:
        return estimators.from_checkpoint(meta, tensors, source=str(directory))
    return registry.from_checkpoint(meta, tensors, directory)
