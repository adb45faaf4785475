"""One timed training epoch on a dataset folder of .npy files, in a fresh process, and its peak RSS.

Usage: python -m benchmarks.stream_rss MODE FOLDER EPOCHS -> one JSON line: samples_per_s, peak_rss_mb, ...
One epoch first warms up (the page cache, the allocator), then EPOCHS are timed.
MODE ``memory`` reads x_train.npy whole and trains from memory (:class:`DeviceBatches`); ``stream`` and
``stream-serial`` open the folder as ``--dataset`` does and stream it (with and without the read-ahead thread).
MODE ``command`` and ``command-cold`` run the whole ``aekit reproduce stacked --dataset FOLDER`` for EPOCHS
epochs (training, evaluation over every split, figures, checkpoint) with no warm-up, the second after asking
the kernel to drop x_train.npy from the page cache, so that the first epoch reads it from the disk.
"""

import json
import os
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

    if mode.startswith("command"):
        return command(mode, folder, epochs)
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


def command(mode: str, folder: str, epochs: int) -> None:
    import tempfile

    from aekit.cli import main as aekit

    if mode == "command-cold":
        with open(Path(folder, "x_train.npy"), "rb") as f:  # clean pages go; the next read comes from the disk
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    with tempfile.TemporaryDirectory(prefix="aekit-stream-cmd-") as out:
        t0 = time.perf_counter()
        code = aekit(["reproduce", "stacked", "--dataset", folder, "--set", f"epochs={epochs}",
                      "--no-progress", "--out", out])
        wall = time.perf_counter() - t0
        if code != 0:
            raise SystemExit(f"aekit reproduce exited {code}")
        m = json.loads(Path(out, "stacked", "metrics.json").read_text())
    seconds = m["seconds"]
    n = m["n_train"] // 256 * 256
    sys.stdout.flush()
    print("\n" + json.dumps({"mode": mode, "samples_per_s": epochs * n / seconds["train"], "epoch_s": seconds["train"] / epochs,
                      "load_s": wall - seconds["total"] - seconds.get("figures", 0) - seconds.get("checkpoint", 0),
                      "after_training_s": seconds["total"] - seconds["train"], "command_s": wall,
                      "peak_rss_mb": peak_rss_mb(), "n_images": n, "batches": "aekit reproduce"}))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that over from the parent
    across fork and exec, so a child of a big benchmark process would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status: peak RSS is measured on Linux only")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
