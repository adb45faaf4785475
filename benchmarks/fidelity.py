"""The tutorial reproduced: both programs with the tutorial preset, against the tutorial's TF1 code's numbers.

Runs ``aekit reproduce all --dataset DATASET --no-progress --seed S`` in a fresh process for each seed, and
writes the stacked test MSE, the pretrained autoencoder's test MSE and the fine-tuned test accuracy into
benchmarks/results/fidelity.json under DATASET, beside the TF1 code's numbers already there (the TF1 code is
not rerun here: its rows keep their provenance), with the commit, the machine and the seconds of each run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, script_main

NAME = "fidelity"
RESULTS = Path("benchmarks/results/fidelity.json")


def run_seed(dataset: str, seed: int, log=print) -> dict:
    """One ``aekit reproduce all`` run: the three numbers the tutorial reports, and its seconds."""
    from aekit.errors import ConfigError

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "aekit", "reproduce", "all", "--dataset", dataset, "--no-progress", "--seed",
               str(seed), "--out", tmp]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            raise ConfigError(f"{' '.join(cmd[2:])} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        stacked = json.loads((Path(tmp) / "stacked" / "metrics.json").read_text())
        pretrain = json.loads((Path(tmp) / "pretrain" / "metrics.json").read_text())
    out = {"seed": seed, "stacked_test_mse": stacked["test_mse"], "pretrain_test_mse": pretrain["test_mse"],
           "test_accuracy": pretrain["test_accuracy"], "seconds": time.perf_counter() - t0,
           "precision": stacked["precision"], "torch": stacked["torch"]}
    log(f"seed {seed}: stacked {out['stacked_test_mse']:.4f}, pretrain {out['pretrain_test_mse']:.4f}, "
        f"accuracy {100 * out['test_accuracy']:.2f}% ({out['seconds']:.0f} s)")
    return out


def update(entry: dict, runs: list[dict], info: dict) -> dict:
    """``entry`` (the dataset's part of fidelity.json) with aekit's numbers replaced by ``runs``'."""
    keys = {"test MSE": "stacked_test_mse", "test MSE after pretraining": "pretrain_test_mse",
            "test accuracy": "test_accuracy"}
    rows = [{**row, "aekit": [r[keys[row["metric"]]] for r in runs]} for row in entry["rows"]]
    seconds = ", ".join(f"seed {r['seed']} {r['seconds']:.0f} s" for r in runs)
    provenance = (f"aekit: `python -m benchmarks fidelity` at commit {info['commit']} on {info['date']}, "
                  f"{info['cpus']} CPUs ({info['processor']}), torch {runs[0]['torch']}, {runs[0]['precision']}, "
                  f"PyTorch's own ops ({seconds}). TF1 numbers: {entry.get('tf1_provenance', 'not rerun here')}")
    return {**entry, "seeds": [r["seed"] for r in runs], "rows": rows, "provenance": provenance, "runs": runs,
            "machine": info}


def run(dataset: str, seeds: list[int], log=print) -> dict:
    return {"runs": [run_seed(dataset, s, log) for s in seeds]}


def demo_record(info: dict, log=print) -> dict:
    """``make demo``'s command on mnist-5k (seed 0) in a fresh process: the record docs/fidelity.md shows for it."""
    run = run_seed("mnist-5k", 0, log)
    return {"provenance": f"`python -m benchmarks fidelity --dataset mnist-5k` (make demo's command) at commit "
                          f"{info['commit']} on {info['date']}, {info['cpus']} CPUs, {run['seconds']:.0f} s in all",
            "command": "make demo (aekit reproduce all --dataset mnist-5k --out runs/demo)", "commit": info["commit"],
            "machine": info, "n_train": 3600, "n_validation": 400, "n_test": 1000, "seed": 0,
            "stacked": {"test_mse": run["stacked_test_mse"]},
            "pretrain": {"test_mse": run["pretrain_test_mse"], "test_accuracy": run["test_accuracy"]}}


def add_arguments(p) -> None:
    p.add_argument("--dataset", default="fashion-mnist", help="a dataset fidelity.json has TF1 numbers for")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--json", default=str(RESULTS), help="the results file to update")


def run_cli(args) -> int:
    from aekit.errors import ConfigError

    path = Path(args.json)
    results = json.loads(path.read_text())
    if args.dataset == "mnist-5k":  # make demo's record: aekit alone, no TF1 numbers
        info = machine()
        info["date"] = time.strftime("%Y-%m-%d")
        results["mnist-5k"] = demo_record(info)
        from aekit.fileio import write_json

        write_json(path, results)
        print(f"wrote {path}")
        return 0
    if args.dataset not in results:
        raise ConfigError(f"--dataset {args.dataset}: {path} has no TF1 numbers for it; it has "
                          f"{', '.join(k for k in results if k != 'what')}")
    seeds = [int(s) for s in args.seeds.split(",")]
    info = machine()  # the code that runs: read before, not after, the runs
    info["date"] = time.strftime("%Y-%m-%d")
    runs = run(args.dataset, seeds)["runs"]
    old = results[args.dataset]
    if "tf1_provenance" not in old:  # the TF1 part of the old provenance, kept as it was written
        old["tf1_provenance"] = old.get("provenance", "").split("TF1 numbers: ", 1)[-1]
    results[args.dataset] = update(old, runs, info)
    from aekit.fileio import write_json

    write_json(path, results)
    print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    return script_main(sys.modules[__name__], argv)
