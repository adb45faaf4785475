"""Steps of training done by C kernels (:mod:`aekit.native`) where they can be, else by PyTorch ops.

Each function here has one meaning and two ways to compute it: the kernels run for dense contiguous float32 CPU
tensors when they load; everything else (CUDA tensors, autocast, no C compiler, ``AEKIT_NATIVE=0``) takes the
PyTorch path, and the tests hold the two to the same numbers (to float rounding). The kernels only remove passes
over memory and per-op overhead that PyTorch's separate kernels and autograd nodes add:

- :func:`tf1_rmsprop_update`: the TF1 RMSProp update in one pass instead of five;
- :func:`sigmoid_mlp_loss`: a network of sigmoid layers and its loss (MSE of a sigmoid output, or the softmax
  cross-entropy of a linear head) as one autograd node, one C pass per layer between the matmuls; where PyTorch
  exports the BLAS ``sgemm_`` its ``torch.mm`` calls (:func:`aekit.native.sgemm`), the whole forward pass and the
  whole training backward pass are one C call each;
- :func:`sigmoid_mse`: the MSE of a sigmoid output from its logits, one pass forward and one backward, for the
  models the fused node does not take (tied weights, dropout, ...).
"""

from __future__ import annotations

import ctypes
import weakref

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.utils.weak import WeakTensorKeyDictionary

from aekit.native import load, sgemm


def _plain_cpu(*tensors: torch.Tensor) -> bool:
    """Whether every tensor is a dense contiguous float32 CPU tensor (cheap checks first: it runs every step)."""
    return all(t.dtype is torch.float32 and t.is_cpu and t.layout is torch.strided and t.is_contiguous() for t in tensors)


def _pointers(tensors) -> ctypes.Array:
    return (ctypes.c_void_p * len(tensors))(*[t.data_ptr() for t in tensors])


def _pointer(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


def _sizes(*sizes: int) -> ctypes.Array:
    return (ctypes.c_int64 * len(sizes))(*sizes)


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
                    _sizes(*[p.numel() for p in params]), lr, decay, momentum, eps)
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
    if (z.shape == target.shape and z.numel() and not target.requires_grad and _plain_cpu(z, target)
            and not torch._C._are_functorch_transforms_active()):
        lib = load("mse")
        if lib is not None:
            return _SigmoidMSE.apply(z, target, lib)
    return F.mse_loss(torch.sigmoid(z), target)


CHUNKS = 8  # row chunks of the kernels' column sums (sigmoid.c); the scratch holds one partial sum per chunk


class _Workspace:
    """The buffers of one network at one batch shape (each layer's activation, each layer's gradient, and scratch
    for the bias gradients' partial sums), reused from step to step: fresh buffers each step cost page faults and
    cache misses (measured: 0.1-0.3 ms of a 3.8 ms step).

    One graph at a time holds them (:meth:`claim`): a second forward pass before the first graph's backward gets
    fresh buffers instead (a graph dropped without a backward frees them, as does its backward). So does a pass
    under ``torch.inference_mode``. Each write bumps the buffers' autograd version,
    so an old graph that still holds them refuses to backpropagate rather than use the new values."""

    def __init__(self):
        self.buffers: dict[tuple, tuple] = {}
        self.owner = None  # weakref to the autograd context that holds the buffers

    def claim(self, ctx, rows: int, widths: tuple[int, ...], like: torch.Tensor):
        """(activations, gradients, scratch): this workspace's buffers, claimed by ``ctx``, or fresh ones if taken."""
        if (self.owner is not None and self.owner() is not None) or torch.is_inference_mode_enabled():
            return _buffers(rows, widths, like)  # inference tensors could not be written by a later training step
        self.owner = weakref.ref(ctx)
        key = (rows, widths)
        if key not in self.buffers:
            if len(self.buffers) >= 4:  # batch sizes come and go (the last, shorter batch): keep a few
                self.buffers.clear()
            self.buffers[key] = _buffers(rows, widths, like)
        return self.buffers[key]

    def release(self, ctx) -> None:
        if self.owner is not None and self.owner() is ctx:
            self.owner = None


def _buffers(rows: int, widths, like: torch.Tensor):
    return ([like.new_empty((rows, w)) for w in widths], [like.new_empty((rows, w)) for w in widths],
            like.new_empty(CHUNKS * max(widths)))


_WORKSPACES = WeakTensorKeyDictionary()  # a network's first weight -> its _Workspace; gone with the network


LOSSES = ("mse", "cross_entropy")  # what the fused network's last layer computes (see _SigmoidMLP)


def fused_layers(model) -> list | None:
    """``model.sigmoid_layers()`` where the model has it (None otherwise, and for a torch.compile'd model, which
    must run the forward pass compile traced)."""
    if hasattr(model, "_orig_mod") or not hasattr(model, "sigmoid_layers"):
        return None
    return model.sigmoid_layers()


class _SigmoidMLP(torch.autograd.Function):
    """A chain of ``sigmoid(a @ W^T + b)`` layers and its loss as one autograd node. The last layer is a sigmoid
    output scored by its mean squared error against ``target`` images (``loss="mse"``, the tutorial's autoencoders),
    or linear logits scored by their softmax cross-entropy against ``target`` class labels (``"cross_entropy"``,
    the tutorial's fine-tuned classifier). By one C pass each: every hidden layer's bias and sigmoid (forward) and
    sigmoid derivative and bias gradient (backward), the MSE output's bias, sigmoid, loss and gradient together, and
    the cross-entropy's softmax, loss and gradient. The gradient at the output is made in the forward pass, for a
    loss scaled by 1 (backward rescales it otherwise).

    The matmuls: with ``gemm`` (the address of PyTorch's BLAS ``sgemm_``, :func:`aekit.native.sgemm`) the kernels
    call it themselves, and the forward pass is one C call (``mlp_forward``), as is the backward pass where every
    weight and bias learns, the input does not and the loss is unscaled (``mlp_backward``; training, that is).
    Otherwise, and for the other backward passes, each matmul is a ``torch.mm``. Where ``torch.mm`` calls
    ``sgemm_`` both paths call it with the same arguments and give the same results, bit for bit (for a single
    row or column torch may take a matrix-vector routine instead: then the two differ by float rounding). The
    caller passes no ``gemm`` where ``torch.mm`` would not call ``sgemm_`` at all (a float32 matmul precision
    below "highest", which lets torch multiply in bf16), nor for a layer of width 0. One call saves the per-op
    overhead."""

    @staticmethod
    def forward(ctx, x, target, loss: str, lib, workspace, learns: bool, gemm, *params):
        n = len(params) // 2
        weights, biases = params[:n], params[n:]
        rows, widths = x.shape[0], tuple(w.shape[0] for w in weights)
        acts, grads, scratch = workspace.claim(ctx, rows, widths, x)
        z, top = acts[-1], grads[-1] if learns else None
        db = biases[-1].new_empty(widths[-1]) if learns else None
        mse = loss == "mse"
        scale = 2.0 / z.numel() if mse else 1.0 / rows
        if min(x.shape[1], *widths) == 0 or max(rows, x.shape[1], *widths) >= 2**31:
            gemm = None  # sgemm_ refuses a leading dimension of 0 (writing nothing), and takes C int sizes
        if gemm is not None:  # the whole pass in one call (the matmuls by torch's own BLAS)
            total = lib.mlp_forward(n, rows, _sizes(x.shape[1], *widths), x.data_ptr(), _pointers(weights),
                                    _pointers(biases), _pointers(acts), 0 if mse else 1, target.data_ptr(), scale,
                                    _pointer(top), _pointer(db), scratch.data_ptr(), gemm)
        else:
            a = x
            for w, b, out in zip(weights[:-1], biases[:-1], acts):
                torch.mm(a, w.t(), out=out)
                lib.bias_sigmoid(rows, out.shape[1], out.data_ptr(), b.data_ptr())
                a = out
            if mse:
                torch.mm(a, weights[-1].t(), out=z)
                total = lib.sigmoid_mse_forward(rows, widths[-1], z.data_ptr(), biases[-1].data_ptr(),
                                                target.data_ptr(), scale, _pointer(top), _pointer(db),
                                                scratch.data_ptr())
            else:
                torch.addmm(biases[-1], a, weights[-1].t(), out=z)  # (B, K) logits
                total = lib.softmax_cross_entropy(rows, widths[-1], z.data_ptr(), target.data_ptr(), scale,
                                                  _pointer(top), _pointer(db))
        if not mse and total < 0:
            workspace.release(ctx)
            raise IndexError(f"class label {int(target[int(-1 - total)])} is out of range for "
                             f"{widths[-1]} classes (labels must be 0 to {widths[-1] - 1})")
        value = torch.tensor(total / (z.numel() if mse else rows), dtype=x.dtype)
        _written([*acts, *grads])
        if learns:
            ctx.save_for_backward(x, *acts[:-1], top, *weights)
            ctx.lib, ctx.workspace, ctx.grads, ctx.scratch, ctx.top_bias, ctx.n = lib, workspace, grads, scratch, db, n
            ctx.gemm = gemm
        else:
            workspace.release(ctx)
        return value

    @staticmethod
    @once_differentiable  # a second derivative through the kernels would be silently wrong: refuse it instead
    def backward(ctx, grad: torch.Tensor):
        n, lib = ctx.n, ctx.lib
        x, *rest = ctx.saved_tensors
        acts, g, weights = rest[:n - 1], rest[n - 1], rest[n:]
        db = ctx.top_bias  # kept: a second backward (retain_graph) needs it again; autograd copies it
        scale = float(grad)
        if scale != 1.0:  # the forward pass made the gradient of the loss itself; here it is of scale x the loss
            g, db = g * scale, db * scale
        rows = x.shape[0]
        wants_x, wants = ctx.needs_input_grad[0], ctx.needs_input_grad[7:]
        if ctx.gemm is not None and scale == 1.0 and not wants_x and all(wants):  # training: the pass in one call
            d_weights = [w.new_empty(w.shape) for w in weights]
            d_biases = [a.new_empty(a.shape[1]) for a in acts]
            lib.mlp_backward(n, rows, _sizes(x.shape[1], *(w.shape[0] for w in weights)), x.data_ptr(),
                             _pointers(weights), _pointers(acts), _pointers(ctx.grads), _pointers(d_weights),
                             _pointers(d_biases), ctx.scratch.data_ptr(), ctx.gemm)
            ctx.workspace.release(ctx)
            return None, None, None, None, None, None, None, *d_weights, *d_biases, db
        d_weights, d_biases, dx = [None] * n, [None] * n, None
        for i in reversed(range(n)):
            d_biases[i] = db if wants[n + i] else None
            d_weights[i] = torch.mm(g.t(), acts[i - 1] if i else x) if wants[i] else None
            if i == 0:
                dx = torch.mm(g, weights[0]) if wants_x else None
            elif wants_x or any(wants[:i]) or any(wants[n:n + i]):  # something below this layer learns
                below, db = ctx.grads[i - 1], acts[i - 1].new_empty(acts[i - 1].shape[1])
                torch.mm(g, weights[i], out=below)
                lib.sigmoid_backward_bias(rows, below.shape[1], below.data_ptr(), acts[i - 1].data_ptr(),
                                          db.data_ptr(), ctx.scratch.data_ptr())
                g = below
            else:
                break
        ctx.workspace.release(ctx)
        return dx, None, None, None, None, None, None, *d_weights, *d_biases


def sigmoid_mlp_loss(x: torch.Tensor, target: torch.Tensor, layers, loss: str = "mse") -> torch.Tensor | None:
    """The loss of the ``nn.Linear`` ``layers`` in order, each but the last followed by a sigmoid, as one autograd
    node (:class:`_SigmoidMLP`): ``F.mse_loss(sigmoid(last), target)`` for ``loss="mse"``,
    ``F.cross_entropy(last, target)`` for ``"cross_entropy"``. None, having done nothing, where the kernels cannot
    run it (the caller then runs its modules): off the CPU, outside float32, under autocast or a ``torch.func``
    transform, without the kernels."""
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is not allowed; choose one of: {', '.join(LOSSES)}")
    params = [*(layer.weight for layer in layers), *(layer.bias for layer in layers)]
    n = len(layers)
    if any(p is None for p in params) or any(
            w.dim() != 2 or b.shape != (w.shape[0],) or (i and w.shape[1] != params[i - 1].shape[0])
            for i, (w, b) in enumerate(zip(params[:n], params[n:]))):
        return None
    if loss == "mse":
        fits = x.shape == target.shape and params[n - 1].shape[0] == x.shape[-1] and not target.requires_grad
    else:
        fits = (target.dim() == 1 and len(target) == len(x) and target.dtype is torch.int64 and target.is_cpu
                and target.is_contiguous() and not (len(target) and bool(target.min() < 0)))  # -100: ignore_index
    if (not fits or x.dim() != 2 or not x.numel() or x.shape[1] != params[0].shape[1]
            or torch.is_autocast_enabled(x.device.type) or torch._C._are_functorch_transforms_active()
            or not _plain_cpu(x, *params)
            or (loss == "mse" and not _plain_cpu(target))):
        return None
    lib = load("sigmoid")
    if lib is None:
        return None
    workspace = _WORKSPACES.get(params[0])
    if workspace is None:
        workspace = _WORKSPACES[params[0]] = _Workspace()
    learns = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params))
    gemm = sgemm() if torch.get_float32_matmul_precision() == "highest" else None  # else torch.mm may use bf16
    return _SigmoidMLP.apply(x, target, loss, lib, workspace, learns, gemm, *params)
