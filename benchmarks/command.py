"""The command users run, measured: ``aekit reproduce stacked`` in a fresh process, end to end.

Its own ``metrics.json`` gives the training seconds (``fit``'s clock: every epoch with its resume-state snapshot,
history and display; and each epoch's own seconds, the first of which warms up) and the total of the program
(training plus building and evaluating); the figure and checkpoint seconds are written there too. What the wall
clock holds beyond those is start-up (imports, loading the dataset) and exit. The training epoch is then set against
the benchmark's own loop in the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def reproduce(dataset: str = "fashion-mnist", epochs_scale: float = 0.1, extra: tuple[str, ...] = ()) -> dict:
    """Run ``aekit reproduce stacked --dataset DATASET --epochs-scale S --no-progress`` and time its parts."""
    from aekit.errors import ConfigError

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "aekit", "reproduce", "stacked", "--dataset", dataset, "--epochs-scale",
               str(epochs_scale), "--no-progress", "--out", tmp, *extra]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise ConfigError(f"{' '.join(cmd[2:])} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        m = json.loads((Path(tmp) / "stacked" / "metrics.json").read_text())
    s, hist = m["seconds"], m["history"]["train"]
    epochs = len(hist["epoch_loss"])
    times = sorted(hist.get("epoch_seconds", [])[1:])  # after the first epoch, which warms up
    writing = s.get("figures", 0.0) + s.get("checkpoint", 0.0)
    return {
        "command": "aekit " + " ".join(cmd[3:-2]), "epochs": epochs, "n_train": m["n_train"],
        "wall_seconds": wall, "train_seconds": s["train"], "seconds_per_epoch": s["train"] / max(1, epochs),
        "first_epoch_seconds": hist.get("epoch_seconds", [None])[0],
        "median_later_epoch_seconds": times[len(times) // 2] if times else None,
        "build_and_evaluate_seconds": s["total"] - s["train"], "figures_seconds": s.get("figures"),
        "checkpoint_seconds": s.get("checkpoint"), "startup_and_exit_seconds": wall - s["total"] - writing,
    }


def startup(repeats: int = 5) -> dict:
    """Seconds of ``aekit --help`` and of ``aekit datasets`` in a fresh process (the median of ``repeats``), beside
    those of the bare interpreter (``python -c pass``) measured in turn with them: what aekit's own start-up adds."""
    import statistics

    script = Path(sys.executable).with_name("aekit")  # the console script users type, where pip installed it
    aekit = [str(script)] if script.is_file() else [sys.executable, "-m", "aekit"]
    runs = {"help": [*aekit, "--help"], "datasets": [*aekit, "datasets"], "python": [sys.executable, "-c", "pass"]}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, cmd in runs.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) for name, v in times.items()}
    return {"help_seconds": med["help"], "datasets_seconds": med["datasets"], "python_seconds": med["python"],
            "repeats": repeats}
