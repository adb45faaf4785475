"""Data-parallel scaling: the tutorial's stacked program trained by 1 and by N processes under torchrun.

Each configuration is ``torchrun --standalone --nproc-per-node N -m aekit reproduce stacked`` (N = 1 included,
so that every run pays the same start-up), ``--repeats`` times in turn; samples/s comes from the training seconds
in ``metrics.json`` and the best run of each N is kept (the least disturbed on a shared machine). Speed-up is
samples/s over the one-process samples/s; efficiency is speed-up / N. The processes share the machine's CPUs
(each takes CPUs / N threads), so on a CPU the ideal is no gain at all: data parallelism pays where each
process has its own device (GPUs, or nodes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from aekit.errors import ConfigError
from benchmarks.common import finish, machine, markdown_table, script_main

NAME = "scaling"


def add_arguments(p) -> None:
    p.add_argument("--dataset", default="mnist-5k", help="dataset to train on")
    p.add_argument("--processes", default="1,2", help="comma-separated process counts")
    p.add_argument("--epochs", type=int, default=10, help="training epochs per run")
    p.add_argument("--repeats", type=int, default=2, help="runs of each process count, in turn")
    p.add_argument("--device", default="auto", help="auto (a GPU per process where there are GPUs) or cpu")
    p.add_argument("-o", "--output", default="benchmarks/results/scaling.json", help="JSON report (and .md beside it)")


def _counts(text: str) -> list[int]:
    try:
        counts = [int(t) for t in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise ConfigError(f"--processes {text!r} must be comma-separated positive integers, e.g. 1,2")
    return counts


def run_once(n: int, dataset: str, epochs: int, device: str, out: Path) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n), "-m", "aekit",
           "reproduce", "stacked", "--dataset", dataset, "--device", device, "--no-progress", "--out", str(out),
           "--set", f"epochs={epochs}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode:
        raise ConfigError(f"{' '.join(cmd[2:])} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    m = json.loads((out / "stacked" / "metrics.json").read_text())
    batch = m["config"]["batch_size"]
    samples = (m["n_train"] // batch) * batch * len(m["history"]["train"]["epoch_loss"])
    return {"processes": n, "world_size": m["world_size"], "train_seconds": m["seconds"]["train"],
            "samples_per_second": samples / m["seconds"]["train"], "test_mse": m["test_mse"], "device": m["device"]}


def run_cli(args) -> int:
    counts = _counts(args.processes)
    if args.epochs < 1 or args.repeats < 1:
        raise ConfigError("--epochs and --repeats must be at least 1")
    runs: dict[int, list[dict]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for n in counts:
                runs[n].append(run_once(n, args.dataset, args.epochs, args.device, Path(tmp) / f"{n}-{r}"))
                print(f"{n} process(es): {runs[n][-1]['samples_per_second']:,.0f} samples/s", file=sys.stderr)
    best = {n: max(rs, key=lambda x: x["samples_per_second"]) for n, rs in runs.items()}
    base = best[counts[0]]["samples_per_second"] / counts[0]  # per process, at the smallest count
    rows = []
    for n in counts:
        sps = best[n]["samples_per_second"]
        rows.append({**best[n], "speedup": sps / (base * counts[0]), "efficiency": sps / (base * n)})
    result = {"benchmark": NAME, "machine": machine(), "dataset": args.dataset, "epochs": args.epochs,
              "repeats": args.repeats, "rows": rows, "runs": runs}
    return finish(result, to_markdown(result), args.output)


def to_markdown(result: dict) -> str:
    rows = result["rows"]
    table = markdown_table(["processes", "device", "samples/s", f"speed-up vs {rows[0]['processes']}", "efficiency",
                            "test MSE"],
                           [[r["processes"], r["device"], r["samples_per_second"], r["speedup"], r["efficiency"],
                             r["test_mse"]] for r in rows])
    m = result["machine"]
    return table + (f"\nThe tutorial's stacked program on {result['dataset']}, {result['epochs']} epochs, best of "
                    f"{result['repeats']} runs per process count, on {m['cpus']} CPUs ({m['processor']}).\n")


if __name__ == "__main__":
    raise SystemExit(script_main(sys.modules[__name__]))
