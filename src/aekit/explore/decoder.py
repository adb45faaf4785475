"""A model's decoder as data: a list of operations with float32 weights, for ``decoder.js`` to run.

Why a traced graph rather than one exporter per architecture: ``torch.fx`` records what ``decode``
actually does (the tied MLP's transposed weights, the PCA-residual sum and clamp, the convolutional
reshape), so an architecture added to the registry needs no code here as long as its decoder uses the
operations below. Parts that depend only on weights (``W.t()``, batch norm's running statistics) are
folded into constants in Python; the page only runs per-sample operations on one code at a time.

An op is ``{"op": name, "in": [ids of earlier values], ...}``; value 0 is the code, each op appends
one value, the last one is the reconstruction. Weights are indices into the page's array table.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from aekit.errors import DataError

ACT_MODULES = {nn.Sigmoid: "sigmoid", nn.ReLU: "relu", nn.Tanh: "tanh", nn.SELU: "selu", nn.Identity: "identity",
               nn.Dropout: "identity", nn.Flatten: "identity"}
ACT_FUNCTIONS = {torch.sigmoid: "sigmoid", torch.tanh: "tanh", torch.relu: "relu", F.relu: "relu", F.gelu: "gelu",
                 "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu"}
BINARY = {operator.add: "add", torch.add: "add", "add": "add", operator.sub: "sub", torch.sub: "sub", "sub": "sub",
          operator.mul: "mul", torch.mul: "mul", "mul": "mul"}
RESHAPES = {"view", "reshape", "flatten", torch.flatten, torch.reshape, "contiguous"}
CLAMPS = {torch.clamp, "clamp", torch.clip, "clip"}
PERMUTES = {"permute", torch.permute}


class _Decode(nn.Module):
    """``model.decode`` as a module's forward, so that ``fx`` can trace it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)


@dataclass(frozen=True)
class Value:
    """A per-sample value in the page: 0 is the code, op i makes value i + 1."""

    id: int


class Program:
    """Ops and the float32 arrays they refer to, built node by node from a traced decoder."""

    def __init__(self):
        self.ops: list[dict] = []
        self.arrays: list[np.ndarray] = []
        self.out = Value(0)

    def array(self, t: torch.Tensor) -> int:
        self.arrays.append(t.detach().to(torch.float32).contiguous().numpy().ravel())
        return len(self.arrays) - 1

    def add(self, op: str, inputs: list[Value], shape: tuple[int, ...], **fields) -> Value:
        self.ops.append({"op": op, "in": [v.id for v in inputs], "size": int(np.prod(shape)), **fields})
        return Value(len(self.ops))


def decoder_program(model: nn.Module, code_size: int) -> Program:
    """Trace ``model.decode`` (in eval mode, on the CPU) into a :class:`Program`; a ``DataError`` names any
    operation the page cannot run."""
    model = model.cpu().eval()
    name = type(model).__name__
    try:
        traced = fx.symbolic_trace(_Decode(model))
    except Exception as e:  # fx raises many types for untraceable Python
        raise DataError(f"cannot trace {name}.decode for the page ({type(e).__name__}: {e}); "
                        "its decoder must be traceable by torch.fx") from None
    with torch.no_grad():
        ShapeProp(traced).propagate(torch.zeros(1, code_size))
    prog, values, modules = Program(), {}, dict(traced.named_modules())
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            values[node] = Value(0)
        elif node.op == "get_attr":
            values[node] = _attr(traced, node.target)
        elif node.op == "output":
            prog.out = values[node.args[0]]
        else:
            values[node] = _convert(node, values, modules, prog, name)
    if not isinstance(prog.out, Value):
        raise DataError(f"{name}.decode does not depend on its code")
    return prog


def _attr(root: nn.Module, target: str) -> torch.Tensor:
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj.detach()


def _convert(node: fx.Node, values: dict, modules: dict, prog: Program, name: str):
    """One traced node: a folded constant (no input depends on the code), or an op appended to ``prog``."""
    args = fx.node.map_arg(node.args, lambda n: values[n])
    kwargs = fx.node.map_arg(node.kwargs, lambda n: values[n])
    used: list = []
    _collect(args, used)
    _collect(tuple(kwargs.values()), used)
    if not any(isinstance(v, Value) for v in used):
        return _fold(node, args, kwargs, modules)
    shape = tuple(node.meta["tensor_meta"].shape[1:])
    target = node.target
    if node.op == "call_module":
        in_shape = tuple(node.args[0].meta["tensor_meta"].shape[1:])
        return _module_op(modules[target], args[0], in_shape, shape, prog, name)
    x = args[0]
    if target in ACT_FUNCTIONS:
        approx = kwargs.get("approximate", "none")
        return prog.add("tanh_gelu" if approx == "tanh" else ACT_FUNCTIONS[target], [x], shape)
    if target in RESHAPES:
        return x  # values are flat row-major per sample, as torch lays them out
    if target in PERMUTES:  # channels first <-> last: the values move
        dims = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:]
        if dims[0] != 0:
            raise DataError(f"{name}.decode permutes the batch axis, which the page decoder cannot run")
        in_shape = tuple(node.args[0].meta["tensor_meta"].shape[1:])
        return prog.add("permute", [x], shape, in_shape=list(in_shape), perm=[d - 1 for d in dims[1:]])
    if target in BINARY:
        return _binary(BINARY[target], args[0], args[1], shape, prog)
    if target in CLAMPS:
        lo = kwargs.get("min", args[1] if len(args) > 1 else None)
        hi = kwargs.get("max", args[2] if len(args) > 2 else None)
        return prog.add("clamp", [x], shape, min=lo, max=hi)
    if target is F.linear:
        return _linear(prog, x, args[1], args[2] if len(args) > 2 else kwargs.get("bias"), shape)
    raise DataError(f"{name}.decode uses {node.op} {getattr(target, '__name__', target)!r}, which the page decoder "
                    "cannot run; it runs Linear, Conv2d, ConvTranspose2d, BatchNorm1d, sigmoid, relu, tanh, gelu, selu, "
                    "+ - *, clamp, reshapes and permutes")


def _collect(args, out: list) -> None:
    for a in args:
        if isinstance(a, (list, tuple)):
            _collect(a, out)
        else:
            out.append(a)


def _fold(node: fx.Node, args, kwargs, modules: dict) -> torch.Tensor:
    """Evaluate a node whose inputs are all constants (``W.t()``), in torch."""
    with torch.no_grad():
        if node.op == "call_module":
            return modules[node.target](*args, **kwargs)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        return node.target(*args, **kwargs)


def _module_op(m: nn.Module, x: Value, in_shape: tuple[int, ...], shape: tuple[int, ...], prog: Program, name: str) -> Value:
    if type(m) in ACT_MODULES:
        act = ACT_MODULES[type(m)]
        return x if act == "identity" else prog.add(act, [x], shape)
    if isinstance(m, nn.GELU):
        return prog.add("tanh_gelu" if m.approximate == "tanh" else "gelu", [x], shape)
    if isinstance(m, nn.Linear):
        return _linear(prog, x, m.weight, m.bias, shape)
    if isinstance(m, nn.BatchNorm1d):  # eval mode: a per-feature affine map
        scale = m.weight / torch.sqrt(m.running_var + m.eps)
        return prog.add("affine", [x], shape, scale=prog.array(scale), shift=prog.array(m.bias - m.running_mean * scale))
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.groups == 1 and m.padding_mode == "zeros":
        return prog.add("conv_transpose2d" if isinstance(m, nn.ConvTranspose2d) else "conv2d", [x], shape,
                        w=prog.array(m.weight), b=None if m.bias is None else prog.array(m.bias),
                        wshape=list(m.weight.shape), stride=list(m.stride), padding=list(m.padding),
                        dilation=list(m.dilation), in_shape=list(in_shape), out_shape=list(shape))
    raise DataError(f"{name}.decode uses a {type(m).__name__}, which the page decoder cannot run")


def _linear(prog: Program, x: Value, w: torch.Tensor, b: torch.Tensor | None, shape) -> Value:
    return prog.add("linear", [x], shape, w=prog.array(w), b=None if b is None else prog.array(b),
                    rows=int(w.shape[0]), cols=int(w.shape[1]))


def _binary(op: str, a, b, shape, prog: Program) -> Value:
    """``value op value``, ``value op weights`` or ``value op number``; weights must have one sample's size."""
    size = int(np.prod(shape))
    inputs: list[Value] = []
    sides: dict = {}
    for side, v in (("a", a), ("b", b)):
        if isinstance(v, Value):
            inputs.append(v)
            sides[side] = {"value": len(inputs) - 1}
        elif isinstance(v, torch.Tensor) and v.numel() == size:
            sides[side] = {"array": prog.array(v)}
        elif isinstance(v, torch.Tensor) and v.numel() == 1 or isinstance(v, (int, float)):
            sides[side] = {"number": float(v)}
        else:
            raise DataError(f"decode broadcasts a constant of shape {tuple(v.shape)} over {shape}; the page decoder "
                            "takes constants of one sample's size or single numbers")
    return prog.add(op, inputs, shape, **sides)
