"""ONNX export of an encoder (or decoder, or the whole autoencoder), with the input scaling baked in."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aekit.errors import ConfigError, DataError
from aekit.fileio import atomic_open
from aekit.inference import OpenedModel

PARTS = ("encoder", "decoder", "autoencoder")


class _Scaled(nn.Module):
    """``(x - min) / range`` clipped to [0, 1], then the network part: raw units in, as the estimator takes them."""

    def __init__(self, fn, data_min: np.ndarray | None, data_range: np.ndarray | None):
        super().__init__()
        self.fn = fn
        self.register_buffer("lo", torch.as_tensor(data_min if data_min is not None else np.zeros(1), dtype=torch.float32))
        self.register_buffer("span", torch.as_tensor(data_range if data_range is not None else np.ones(1), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(((x - self.lo) / self.span).clamp(0.0, 1.0))


class _Part(nn.Module):
    """A part taken as it is: the decoder's input is a code, unbounded, so nothing is scaled or clipped."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)


def export_onnx(opened: OpenedModel, path: str | Path, part: str = "encoder") -> tuple[int, int]:
    """Write ``part`` as ONNX with a dynamic batch axis; returns (input width, output width)."""
    if part not in PARTS:
        raise ConfigError(f"--part {part!r} is not allowed; choose one of: {', '.join(PARTS)}")
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise DataError("ONNX export needs the onnx and onnxscript packages: pip install 'aekit[onnx]'") from None
    net = opened.network if part == "encoder" else opened.autoencoder()
    fn = getattr(net, {"encoder": "encode", "decoder": "decode", "autoencoder": "forward"}[part])
    est = opened.estimator
    if part == "decoder":
        width = net.config.code_size
        module = _Part(fn)
    else:
        width = opened.input_size
        module = _Scaled(fn, getattr(est, "data_min_", None), getattr(est, "data_range_", None))
    module.eval()
    example = torch.rand(2, width)
    batch = torch.export.Dim("batch")
    # Quiet the exporter's notes about optional packages (torchvision ops) and deprecations.
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.onnx._internal.exporter._registration")]
    levels = [q.level for q in quiet]
    try:
        for q in quiet:
            q.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, (example,), None, input_names=["x"], output_names=["y"],
                                        dynamic_shapes=({0: batch},), dynamo=True, verbose=False)
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)
    data = program.model_proto.SerializeToString()  # one self-contained file: weights embedded
    with atomic_open(path, "wb") as f:
        f.write(data)
    return width, int(fn(example).shape[1])
