"""The most an MLP training step can reach on this machine: its matmuls alone, timed back to back.

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

    from aekit.bench.common import timed

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
    from aekit.bench.common import timed

    def forward_backward():
        optimizer.zero_grad(set_to_none=True)
        objective(model, x).backward()

    def step():
        forward_backward()
        optimizer.step()

    return {"step_seconds": timed(step, min_seconds), "forward_backward_seconds": timed(forward_backward, min_seconds),
            "optimizer_seconds": timed(optimizer.step, min_seconds)}
