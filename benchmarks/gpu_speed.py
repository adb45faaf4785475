"""Training speed on the GPU beside the CPU, in one process: the tutorial's stacked network, samples per second.

Usage: python -m benchmarks.gpu_speed  (run by benchmarks/gpu_check.sh; prints one line per device and a ratio).
The data sits on each device as uint8, as ``aekit reproduce`` keeps it; the first epoch warms up, the second is
timed, with a synchronisation before the clock is read.
"""

from __future__ import annotations

import time

import numpy as np
import torch


def samples_per_second(device: torch.device, n: int = 60_000, epochs: int = 1) -> float:
    from aekit.data.batches import DeviceBatches
    from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
    from aekit.runtime import generator
    from aekit.training.loop import fit
    from aekit.training.objectives import reconstruction_loss
    from aekit.training.optim import TF1RMSprop

    x = np.random.default_rng(0).integers(0, 256, (n, 784), dtype=np.uint8)
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(256, 128)), generator(0)).to(device)
    batches = DeviceBatches(x, batch_size=256, device=device)
    opt = TF1RMSprop(model.parameters(), lr=0.02)
    fit(model, reconstruction_loss, opt, batches, 1, display_step=0, progress=False)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fit(model, reconstruction_loss, opt, batches, epochs, display_step=0, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * len(batches) * batches.batch_size / (time.perf_counter() - t0)


def main() -> None:
    from aekit.runtime import setup

    setup(torch.device("cpu"))
    cpu = samples_per_second(torch.device("cpu"), n=20_000)
    print(f"cpu:  {cpu:,.0f} samples/s")
    if torch.cuda.is_available():
        gpu = samples_per_second(torch.device("cuda"))
        print(f"cuda: {gpu:,.0f} samples/s")
        print(f"tutorial stacked network, batch 256: cuda {gpu:,.0f} samples/s, {gpu / cpu:.1f}x the CPU in this run")


if __name__ == "__main__":
    main()
