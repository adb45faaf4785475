"""One timed training epoch on a dataset folder of .npy files, in a fresh process, and its peak RSS.

Usage: python -m benchmarks.stream_rss MODE FOLDER EPOCHS -> one JSON line: samples_per_s, peak_rss_mb, ...
One epoch first warms up (the page cache, the allocator, the sigmoids), then EPOCHS are timed.
MODE ``memory`` reads x_train.npy whole and trains from memory (:class:`DeviceBatches`); ``stream`` and
``stream-serial`` open the folder as ``--dataset`` does and stream it (with and without the read-ahead thread).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def main(mode: str, folder: str, epochs: int) -> None:
    from aekit.data.batches import DeviceBatches, make_batches
    from aekit.data.catalog import load_dataset
    from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
    from aekit.runtime import generator, setup
    from aekit.training.loop import fit
    from aekit.training.objectives import reconstruction_loss
    from aekit.training.optim import TF1RMSprop

    setup(torch.device("cpu"))
    t0 = time.perf_counter()
    if mode == "memory":
        x = np.load(Path(folder, "x_train.npy"))  # the whole array in memory, e.g. 1,000,000 x 28 x 28
        batches = DeviceBatches(x.reshape(len(x), -1), batch_size=256)
        features = x[0].size
    elif mode in ("stream", "stream-serial"):
        images = load_dataset(folder).train.images
        batches = make_batches(images, batch_size=256)
        batches.prefetch = mode == "stream"
        features = images.shape[1]
    else:
        raise SystemExit(f"MODE {mode!r}: choose memory, stream or stream-serial")
    load_s = time.perf_counter() - t0
    model = StackedAutoencoder(AutoencoderConfig(input_size=features, hidden_sizes=(256, 128)), generator(0))
    opt = TF1RMSprop(model.parameters(), lr=0.02)
    fit(model, reconstruction_loss, opt, batches, 1, display_step=0, progress=False)
    hist = fit(model, reconstruction_loss, opt, batches, epochs, display_step=0, progress=False)
    print(json.dumps({"mode": mode, "samples_per_s": epochs * len(batches) * batches.batch_size / hist.seconds,
                      "epoch_s": hist.seconds / epochs, "load_s": load_s, "peak_rss_mb": peak_rss_mb(),
                      "n_images": len(batches) * batches.batch_size, "batches": type(batches).__name__}))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that over from the parent
    across fork and exec, so a child of a big benchmark process would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status: peak RSS is measured on Linux only")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
