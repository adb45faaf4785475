"""The most an MLP training step can reach on this machine: its matmuls alone, timed back to back, and with the
elementwise work beside them at its floor (:func:`elementwise_floor`).

A training step of a ``sizes[0] -> ... -> sizes[-1]`` MLP on a batch of ``B`` runs, per layer ``in -> out``, the
forward ``(B, in) @ (in, out)``, the weight gradient ``(in, B) @ (B, out)`` and (but for the first layer, whose
input needs no gradient) the input gradient ``(B, out) @ (out, in)``. Nothing else is counted: no activation, no
loss, no optimizer, no data. Reported in the benchmark's own convention (6 x weights x samples), the fraction of
the matmul limit these matmuls reach is the ceiling of what any training loop of that network can report here:
a target above it is out of reach on this CPU.
"""

from __future__ import annotations


def step_shapes(sizes: list[int], batch: int) -> list[tuple[int, int, int]]:
    """The (m, k, n) of every matmul in one training step."""
    shapes = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes += [(batch, a, b), (a, batch, b)]  # forward; weight gradient
        if i > 0:
            shapes.append((batch, b, a))  # input gradient
    return shapes


def step_matmul_gflops(sizes: list[int], batch: int, min_seconds: float = 0.5) -> float:
    """GFLOP/s of one step's matmuls, counted as 6 x weights x ``batch`` FLOPs per step."""
    import torch

    from benchmarks.common import timed

    pairs = [(torch.rand(m, k), torch.rand(k, n)) for m, k, n in step_shapes(sizes, batch)]
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    def step():
        for a, b in pairs:
            torch.mm(a, b)

    return 6 * weights * batch / timed(step, min_seconds) / 1e9


def step_parts(model, objective, optimizer, x, min_seconds: float = 0.5) -> dict:
    """Seconds of one training step on batch ``x``, and of its parts alone: forward + backward, the optimizer's
    update. With the matmuls' seconds this says where a step's time goes (the rest is elementwise work:
    activations, loss, bias gradients). The optimizer's extra updates change the weights a little: measure last."""
    from benchmarks.common import timed

    def forward_backward():
        optimizer.zero_grad(set_to_none=True)
        objective(model, x).backward()

    def step():
        forward_backward()
        optimizer.step()

    return {"step_seconds": timed(step, min_seconds), "forward_backward_seconds": timed(forward_backward, min_seconds),
            "optimizer_seconds": timed(optimizer.step, min_seconds)}


def best_of(fn, repeats: int = 5, min_seconds: float = 0.1) -> float:
    """The fastest of ``repeats`` timings of ``fn`` (seconds per call): on a shared machine the least disturbed."""
    from benchmarks.common import timed

    return min(timed(fn, min_seconds) for _ in range(repeats))


def elementwise_floor(sizes: list[int], batch: int) -> dict:
    """Seconds of a sigmoid MLP step's work beside its matmuls, measured part by part, and the two floors it gives.

    * ``eager_seconds``: each part alone with PyTorch's own kernels at their best (warm, in place, preallocated):
      per layer the bias broadcast of ``addmm``, the sigmoid, ``sigmoid_backward`` and the bias gradient; the MSE
      loss and its gradient; the TF1-RMSProp update (five passes over the weights: it has no fused kernel). Any
      loop built from PyTorch ops spends at least this beside its matmuls.
    * ``one_pass_seconds``: the bytes an ideal implementation must still move (every weight, gradient and
      mean-square read once and the weights and mean-squares written once; each layer's activation and gradient
      read and its delta written once, the sigmoid and bias folded into the matmuls) at the memory bandwidth
      measured on arrays of the weights' size. No implementation on this CPU spends less.
    """
    import torch

    from aekit.training.optim import TF1RMSprop

    outs = sizes[1:]
    n_weights = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    acts = [torch.rand(batch, o) for o in outs]
    grads = [torch.rand(batch, o) for o in outs]
    biases = [torch.rand(o) for o in outs]
    x, y = torch.rand(batch, sizes[0]), torch.rand(batch, sizes[-1])
    params = [torch.randn(b, a).requires_grad_() for a, b in zip(sizes[:-1], sizes[1:])]
    params += [torch.randn(b).requires_grad_() for b in outs]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    opt = TF1RMSprop(params, lr=1e-12)  # the weights barely move

    def activations():
        for a, g, b in zip(acts, grads, biases):
            a.copy_(b.expand_as(a))  # addmm's bias broadcast
            a.sigmoid_()
            torch.ops.aten.sigmoid_backward.grad_input(g, a, grad_input=g)
            g.sum(0)

    def loss():
        torch.nn.functional.mse_loss(y, x)
        torch.ops.aten.mse_loss_backward(torch.ones(()), y, x, 1)

    parts = {"activations_seconds": best_of(activations), "loss_seconds": best_of(loss),
             "update_seconds": best_of(opt.step)}
    a, b, c = (torch.rand(n_weights) for _ in range(3))
    bandwidth = 12 * n_weights / best_of(lambda: torch.add(a, b, out=c))  # bytes/s: two reads, one write
    one_pass_bytes = 4 * (5 * n_weights + 3 * batch * sum(outs) + batch * sizes[0])
    return {**parts, "eager_seconds": sum(parts.values()), "bandwidth_gb_per_s": bandwidth / 1e9,
            "one_pass_bytes": one_pass_bytes, "one_pass_seconds": one_pass_bytes / bandwidth}


def ceiling_with_elementwise(sizes: list[int], batch: int, matmul_gflops: float, limit_gflops: float) -> dict:
    """:func:`elementwise_floor` added to the step's matmuls (run at ``matmul_gflops``), as fractions of the
    machine's matmul limit: the most a loop of PyTorch ops (``eager``) and any implementation (``one_pass``) can
    report here, in the benchmark's convention of 6 x weights x samples FLOPs."""
    floor = elementwise_floor(sizes, batch)
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    flops = 6 * weights * batch
    matmul_s = flops / matmul_gflops / 1e9
    return {**floor, "matmul_seconds": matmul_s,
            **{f"{k}_fraction_of_matmul": flops / (matmul_s + floor[f"{k}_seconds"]) / 1e9 / limit_gflops
               for k in ("eager", "one_pass")}}
