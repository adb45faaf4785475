"""Streaming benchmark: training on a dataset bigger than memory, against the same data held in memory.

It writes a synthetic dataset folder of ``--images`` images (Fashion-MNIST's training images tiled,
each copy shifted and noised differently) into a temporary folder, then trains the seed stacked
autoencoder for one warm-up epoch and ``--epochs`` timed epochs on it in three fresh processes, one after the other: from memory
(x_train.npy read whole), streamed, and streamed without the read-ahead thread; then runs the whole command
``aekit reproduce stacked --dataset FOLDER`` for ``--epochs`` epochs twice, on a warm and on a cold file (evicted
from the page cache), ``--repeats`` times in turn. Each reports its samples/s and peak RSS (the command's: every
pass after training included); the table shows each path's best run (the one least
disturbed by other work on a shared CPU), and only ratios between runs of the same benchmark are compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import finish, machine, markdown_table, script_main

NAME = "streaming"
MODES = ("memory", "stream", "stream-serial", "command", "command-cold")


def synthetic_folder(folder: Path, n: int, source: str = "fashion-mnist", seed: int = 0) -> dict:
    """Write ``n`` images made from ``source``'s training images into ``folder`` (x_train, y_train, x_test,
    y_test), a chunk at a time; copy ``k`` of the source is shifted by ``k % 5 - 2`` pixels and noised."""
    import numpy as np

    from aekit.data.catalog import load_dataset
    from aekit.data.convert import write_images
    from aekit.data.sources import Source

    data = load_dataset(source)
    base = np.concatenate([data.validation.images, data.train.images]).reshape(-1, *data.image_shape)
    labels = np.concatenate([data.validation.labels, data.train.labels])
    m = len(base)

    def chunks():
        rng = np.random.default_rng(seed)
        for start in range(0, n, m):
            k, rows = start // m, min(m, n - start)
            shifted = np.roll(base[:rows], k % 5 - 2, axis=2).astype(np.int16)
            yield np.clip(shifted + rng.integers(-8, 9, size=shifted.shape, dtype=np.int16), 0, 255).astype(np.uint8)

    folder.mkdir(parents=True, exist_ok=True)
    write_images(folder / "x_train.npy", Source(f"synthetic {source}", (n, *data.image_shape), np.dtype(np.uint8), chunks))
    np.save(folder / "y_train.npy", np.resize(labels, n))
    np.save(folder / "x_test.npy", data.test.images.reshape(-1, *data.image_shape))
    np.save(folder / "y_test.npy", data.test.labels)
    for path in folder.iterdir():  # on disk before any timing: no writeback competes with the reads measured
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    return {"source": data.name, "n_images": n, "bytes": n * base[0].size}


def _worker(mode: str, folder: Path, epochs: int) -> dict:
    from benchmarks import subprocess_env

    out = subprocess.run([sys.executable, "-m", "benchmarks.stream_rss", mode, str(folder), str(epochs)],
                         capture_output=True, text=True, check=True, env=subprocess_env())
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(n_images: int = 1_000_000, epochs: int = 1, source: str = "fashion-mnist", tmp: str | None = None,
        repeats: int = 2, log=print) -> dict:
    res: dict = {"machine": machine(), "epochs": epochs, "repeats": repeats, "batch_size": 256,
                 "network": "784-256-128-256-784", "runs": {mode: [] for mode in MODES}}
    with tempfile.TemporaryDirectory(dir=tmp, prefix="aekit-streaming-") as folder:
        res["data"] = synthetic_folder(Path(folder), n_images, source)
        log(f"wrote {n_images:,} images ({res['data']['bytes'] / 1e6:,.0f} MB) into {folder}")
        for _ in range(repeats):
            for mode in MODES:
                run = _worker(mode, Path(folder), epochs)
                res["runs"][mode].append(run)
                log(f"{mode}: {run['samples_per_s']:,.0f} samples/s, peak RSS {run['peak_rss_mb']:,.0f} MB")
    for mode, runs in res["runs"].items():
        res[mode] = max(runs, key=lambda r: r["samples_per_s"])
    res["command_peak_rss_mb"] = max(r["peak_rss_mb"] for m in ("command", "command-cold") for r in res["runs"][m])
    res["stream_vs_memory"] = res["stream"]["samples_per_s"] / res["memory"]["samples_per_s"]
    res["prefetch_speedup"] = res["stream"]["samples_per_s"] / res["stream-serial"]["samples_per_s"]
    return res


def to_markdown(r: dict) -> str:
    names = {"memory": "in memory (x_train.npy read whole)", "stream": "streamed (read-ahead thread)",
             "stream-serial": "streamed (no read-ahead)", "command": "the whole `aekit reproduce stacked` command, warm file",
             "command-cold": "the whole command, file not in the page cache"}
    measured = [m for m in MODES if m in r]
    after = any("after_training_s" in r[m] for m in measured)  # results from before the command rows have none
    rows = [[names[m], f"{r[m]['samples_per_s']:,.0f}", f"{r[m]['samples_per_s'] / r['memory']['samples_per_s']:.2f}",
             f"{r[m]['peak_rss_mb']:,.0f}", f"{r[m]['load_s']:.1f}",
             *([f"{r[m]['after_training_s']:.1f}" if "after_training_s" in r[m] else ""] if after else [])]
            for m in measured]
    d = r["data"]
    head = (f"Best of {r['repeats']} runs each, {r['epochs']} timed epoch(s) of the seed stacked autoencoder "
            f"({r['network']}, batch {r['batch_size']}) on "
            f"{d['n_images']:,} images of {d['bytes'] // d['n_images']} bytes ({d['bytes'] / 1e6:,.0f} MB, from "
            f"{d['source']}), {r['machine']['cpus']} CPUs, torch {r['machine']['torch']}\n\n")
    return head + markdown_table(["data path", "samples/s", "× in memory", "peak RSS (MB)", "open (s)",
                                  *(["after training (s)"] if after else [])], rows)


def main(argv=None) -> int:
    return script_main(sys.modules[__name__], argv)


def add_arguments(p) -> None:
    p.add_argument("--images", type=int, default=1_000_000, help="images in the synthetic dataset")
    p.add_argument("--epochs", type=int, default=1, help="epochs measured in each process")
    p.add_argument("--source", default="fashion-mnist", help="dataset whose training images are tiled")
    p.add_argument("--repeats", type=int, default=2, help="runs of each data path, in turn; the best counts")
    p.add_argument("--tmp", default=None, help="folder for the temporary dataset (default: the system's)")
    p.add_argument("--json", default="benchmarks/results/streaming.json", help="JSON output; the .md table goes beside it")


def run_cli(args) -> int:
    from aekit.errors import ConfigError

    if args.images < 1000 or args.epochs < 1 or args.repeats < 1:
        raise ConfigError(f"--images {args.images} must be at least 1000, --epochs {args.epochs} and --repeats "
                          f"{args.repeats} at least 1")
    result = run(args.images, args.epochs, args.source, args.tmp, args.repeats)
    return finish(result, to_markdown(result), args.json)
