"""ONNX export of an encoder (or decoder, or the whole autoencoder), with the input scaling baked in.

The graph takes what ``aekit encode`` takes for the same model, in the type the model was trained on:
**uint8 pixels** (0..255) for a model trained on images, scaled by 1/255 inside the graph, and float32 raw
values for an estimator fitted on floats (its scaling inside), and float32 features for a model trained on a
table (its rows standardized and one-hot encoded by the schema stored beside, in ``aekit.table``). A float array fed to a uint8 graph
is refused by the ONNX runtime instead of being clamped into wrong codes. The contract is stored in the
file's metadata (``aekit.input``, ``aekit.output``) and printed by ``aekit export``.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aekit.data.tensors import to_float
from aekit.errors import ConfigError, DataError
from aekit.fileio import atomic_open, check_destination
from aekit.inference import OpenedModel

PARTS = ("encoder", "decoder", "autoencoder")


class _Pixels(nn.Module):
    """uint8 pixels in, scaled to [0, 1] as training scaled them (``x * (1/255)`` in float32), then the part."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(to_float(x))


class _Scaled(nn.Module):
    """``(x - min) / range`` (clipped to [0, 1] unless the scaling standardizes), then the network part: raw units
    in, as the estimator takes them."""

    def __init__(self, fn, data_min: np.ndarray, data_range: np.ndarray, clip: bool = True):
        super().__init__()
        self.fn, self.clip = fn, clip
        self.register_buffer("lo", torch.as_tensor(data_min, dtype=torch.float32))
        self.register_buffer("span", torch.as_tensor(data_range, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = (x - self.lo) / self.span
        return self.fn(scaled.clamp(0.0, 1.0) if self.clip else scaled)


class _Part(nn.Module):
    """A part taken as it is: the decoder's input is a code, unbounded, so nothing is scaled or clipped."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)


def input_contract(opened: OpenedModel, part: str) -> tuple[torch.dtype, str]:
    """The input dtype of ``part``'s graph and a sentence saying what it takes."""
    if part == "decoder":
        return torch.float32, "float32 codes (N, code size), as `aekit encode` writes them"
    if opened.table is not None:
        return torch.float32, ("float32 features (N, features): the table's rows standardized and one-hot encoded by the "
                               "schema in this file's metadata aekit.table (aekit.data.tables.TableSchema.transform)")
    est = opened.estimator
    if est is None or getattr(est, "scaling_", "uint8") == "uint8":
        return torch.uint8, "uint8 pixels 0..255 (N, features), as `aekit encode` takes them; scaled by 1/255 inside"
    how = "standardized" if est.scaling_ == "standard" else "min-max scaled and clipped"
    return torch.float32, f"float32 values in the units the estimator was fitted on; {how} inside"


def export_onnx(opened: OpenedModel, path: str | Path, part: str = "encoder") -> tuple[int, int, str]:
    """Write ``part`` as ONNX with a dynamic batch axis; returns (input width, output width, input contract)."""
    if part not in PARTS:
        raise ConfigError(f"--part {part!r} is not allowed; choose one of: {', '.join(PARTS)}")
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise DataError("ONNX export needs the onnx and onnxscript packages: pip install 'aekit[onnx]'") from None
    check_destination(path)  # before the export's work
    net = opened.network if part == "encoder" else opened.autoencoder()
    fn = getattr(net, {"encoder": "encode", "decoder": "decode", "autoencoder": "forward"}[part])
    dtype, contract = input_contract(opened, part)
    if part == "decoder":
        width = net.config.code_size
        module = _Part(fn)
    elif opened.table is not None:  # its features as they are: the one-hot encoding has no place in a graph
        width = opened.input_size
        module = _Part(fn)
    elif dtype == torch.uint8:
        width = opened.input_size
        module = _Pixels(fn)
    else:
        width = opened.input_size
        module = _Scaled(fn, opened.estimator.data_min_, opened.estimator.data_range_,
                         clip=opened.estimator.scaling_ != "standard")
    module.eval()
    example = torch.randint(0, 256, (2, width), dtype=torch.uint8) if dtype == torch.uint8 else torch.rand(2, width)
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
    proto = program.model_proto
    output = ("float32 codes" if part == "encoder" else "float32 values in [0, 1] (pixels / 255)" if opened.bounded
              else "float32 standardized features, in the input's units")
    meta = [("aekit.input", contract), ("aekit.output", output), ("aekit.part", part)]
    if opened.table is not None:
        meta.append(("aekit.table", json.dumps(opened.table.to_json())))
    for key, value in meta:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    data = proto.SerializeToString()  # one self-contained file: weights embedded
    with atomic_open(path, "wb") as f:
        f.write(data)
    with torch.inference_mode():
        out_width = int(module(example).shape[1])
    return width, out_width, contract
