"""Steps of training done by one C kernel (:mod:`aekit.native`) where they can be, else by PyTorch ops.

Each function here has one meaning and two ways to compute it: the kernel runs for dense contiguous
float32 CPU tensors when it loads; everything else (CUDA tensors, the bf16 logits of autocast, no C compiler,
``AEKIT_NATIVE=0``) takes the PyTorch path, and the tests hold the two to the same numbers (to float rounding). The kernels only remove passes over
memory that PyTorch's separate kernels make: the TF1 RMSProp update is one pass instead of five, and the
mean squared error of a sigmoid output is one pass forward and one backward instead of four.
"""

from __future__ import annotations

import ctypes

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from aekit.native import load


def _plain_cpu(*tensors: torch.Tensor) -> bool:
    """Whether every tensor is a dense contiguous float32 CPU tensor (cheap checks first: it runs every step)."""
    return all(t.dtype is torch.float32 and t.is_cpu and t.layout is torch.strided and t.is_contiguous() for t in tensors)


def _pointers(tensors) -> ctypes.Array:
    return (ctypes.c_void_p * len(tensors))(*[t.data_ptr() for t in tensors])


def tf1_rmsprop_update(params, grads, ms, mom, lr: float, decay: float, momentum: float, eps: float) -> bool:
    """TF1's RMSProp update (see :class:`aekit.training.optim.TF1RMSprop`) in place by the C kernel; returns
    False, having done nothing, where the kernel cannot run (the caller then makes the update itself)."""
    if not _plain_cpu(*params, *grads, *ms, *(mom or [])):
        return False
    lib = load("rmsprop_tf1")
    if lib is None:
        return False
    n = len(params)
    lib.rmsprop_tf1(n, _pointers(params), _pointers(grads), _pointers(ms), None if mom is None else _pointers(mom),
                    (ctypes.c_int64 * n)(*[p.numel() for p in params]), lr, decay, momentum, eps)
    _written([*params, *ms, *(mom or [])])
    return True


def _written(tensors) -> None:
    """Tell autograd these tensors changed in place (the kernel wrote through their pointers), so that a graph
    still holding an old value refuses to backpropagate through it instead of using the new one."""
    bump = getattr(torch.autograd.graph, "increment_version", None)  # torch >= 2.1
    if bump is not None:
        bump(tensors)


class _SigmoidMSE(torch.autograd.Function):
    """mean((sigmoid(z) - t)^2): the sigmoid by PyTorch, the loss and the gradient on z by the kernel."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, target: torch.Tensor, lib) -> torch.Tensor:
        y = torch.sigmoid(z)
        ctx.save_for_backward(y, target)
        ctx.lib = lib
        return torch.tensor(lib.squared_error_sum(y.numel(), y.data_ptr(), target.data_ptr()) / y.numel(),
                            dtype=z.dtype)

    @staticmethod
    @once_differentiable  # a second derivative through the kernel would be silently wrong: refuse it instead
    def backward(ctx, grad: torch.Tensor):
        y, target = ctx.saved_tensors
        dz = torch.empty_like(y)
        ctx.lib.sigmoid_mse_backward(y.numel(), y.data_ptr(), target.data_ptr(), 2.0 * float(grad) / y.numel(),
                                     dz.data_ptr())
        return dz, None, None


def sigmoid_mse(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``F.mse_loss(torch.sigmoid(z), target)``, the reconstruction loss of a sigmoid output from its logits."""
    if z.shape == target.shape and z.numel() and not target.requires_grad and _plain_cpu(z, target):
        lib = load("mse")
        if lib is not None:
            return _SigmoidMSE.apply(z, target, lib)
    return F.mse_loss(torch.sigmoid(z), target)
