"""Quality per second: aekit's modern preset against the autoencoder a user would pick instead, on its own clock.

The peer is pythae's default ``AE`` (input-512-code-512-input, ReLU, sigmoid output, Adam 1e-3, batch 128, its
``TrainingPipeline``, 30 epochs), run in its own process by the peers' interpreter (``--peer-python``; install
with ``pip install -c constraints.txt -r benchmarks/requirements.txt`` into ``.venv-peers``); without pythae there, the peer is
skipped with a note. Both train on the same split in the same run, one after the other, and both record the
validation MSE after every epoch against the seconds since training started (their own evaluation is on their
clock; the benchmark's own measurement of aekit's curve is not); the test MSE is measured once, at the end, off
the clock. "Reaches" is the first point at which aekit's validation MSE is at or below the validation MSE of the
model pythae kept (its best epoch).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from benchmarks.common import finish, machine, markdown_table, positive_ints, script_main

NAME = "frontier"
CODES = (32, 128)
DATASETS = ("fashion-mnist", "mnist-5k")
PRECISIONS = ("auto", "fp32")  # the preset's (bf16 where the CPU multiplies it), and what every CPU runs
PEER_EPOCHS = 30  # what the issue measured pythae with
TARGET_TIME_SHARE = 0.5  # aekit reaches pythae's MSE in at most this share of pythae's time
TARGET_OVER_PCA = {32: 0.45, 128: 0.55}  # aekit's final test MSE at most this times PCA's
DEFAULT_PEER_PYTHON = ".venv-peers/bin/python"
DEFAULT_FIGURE = "docs/frontier.png"


def aekit_curve(cfg, data, device, seed: int = 0) -> dict:
    """Train ``cfg`` as ``aekit reproduce stacked`` does (programs.run_stacked without its figures and
    metrics), with the validation MSE after every epoch against the seconds since the model was built. The
    time this function spends measuring those points is not counted (early stopping's own validation, part
    of the recipe, is)."""
    import torch

    from aekit.data.batches import make_batches
    from aekit.experiments.builders import build_autoencoder, train_autoencoder
    from aekit.runtime import generator, seeded_global_rng
    from aekit.training.evaluate import reconstruction_error

    points: list[dict] = []
    probe = [0.0]  # seconds spent measuring the curve: the benchmark's instrument, kept off aekit's clock
    with seeded_global_rng(seed, device):
        t0 = time.perf_counter()
        model = build_autoencoder(cfg, data, generator(seed), device)
        batches = make_batches(data.train.images, None, batch_size=cfg.batch_size, device=device, seed=seed)

        def on_epoch_end(epoch: int, loss: float) -> bool:
            start = time.perf_counter()
            was_training = model.training
            model.eval()
            with torch.no_grad():
                mse = float(reconstruction_error(model, data.validation.images, device).mean())
            model.train(was_training)
            points.append({"epoch": epoch + 1, "seconds": start - t0 - probe[0], "validation_mse": mse})
            probe[0] += time.perf_counter() - start
            return False

        hist = train_autoencoder(model, cfg, data, batches, log=lambda s: None, progress=False,
                                 on_epoch_end=on_epoch_end)
        seconds = time.perf_counter() - t0 - probe[0]
    model.eval()
    test_mse = float(reconstruction_error(model, data.test.images, device).mean())
    return {"label": f"aekit {cfg.architecture} {cfg.hidden_sizes}", "points": points, "seconds": seconds,
            "test_mse": test_mse, "epochs": len(hist.epoch_loss), "threads": torch.get_num_threads()}


def peer_curve(data, code_size: int, peer_python: str, epochs: int = PEER_EPOCHS, log=print) -> dict:
    """pythae's curve from its own process, or ``{"skipped": why}`` when the peers' interpreter lacks pythae."""
    import json
    import subprocess
    import tempfile

    import numpy as np

    python = Path(peer_python)
    if not python.is_file():
        return {"skipped": f"--peer-python {peer_python}: no such interpreter; install the peer with `python3 -m venv "
                           ".venv-peers && .venv-peers/bin/pip install -c constraints.txt -r benchmarks/requirements.txt`"}
    probe = subprocess.run([str(python), "-c", "import pythae"], capture_output=True, text=True)
    if probe.returncode:
        return {"skipped": f"--peer-python {peer_python}: cannot import pythae; install it there with "
                           f"`{python.parent / 'pip'} install -c constraints.txt -r benchmarks/requirements.txt`"}
    script = Path(__file__).with_name("pythae_peer.py")
    with tempfile.TemporaryDirectory() as tmp:
        arrays, out = Path(tmp, "arrays.npz"), Path(tmp, "peer.json")
        np.savez(arrays, x_train=data.train.images, x_val=data.validation.images, x_test=data.test.images,
                 image_shape=np.asarray(data.image_shape, dtype=np.int64))
        cmd = [str(python), str(script), str(arrays), str(out), "--code-size", str(code_size), "--epochs", str(epochs)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"the pythae peer failed (exit {done.returncode}): {' | '.join(tail)}")
        result = json.loads(out.read_text())
    log(f"    pythae: test MSE {result['test_mse']:.5f} in {result['seconds']:.0f} s")
    return result


def reached(curve: dict, mse: float) -> float | None:
    """Seconds at the first point of ``curve`` whose validation MSE is at or below ``mse``; None if never."""
    return next((p["seconds"] for p in curve["points"] if p["validation_mse"] <= mse), None)


def compare(row: dict) -> dict:
    """The targets for one row: time share to reach the peer's MSE, and the final test MSE against PCA."""
    ours, peer, k = row["aekit"], row["peer"], row["code_size"]
    out = {"over_pca": ours["test_mse"] / row["pca"], "target_over_pca": TARGET_OVER_PCA.get(k)}
    out["over_pca_ok"] = out["target_over_pca"] is not None and out["over_pca"] <= out["target_over_pca"]
    if "skipped" in peer:
        return out
    peer_best = min(p["validation_mse"] for p in peer["points"])
    at = reached(ours, peer_best)
    out.update(peer_over_pca=peer["test_mse"] / row["pca"], peer_validation_mse=peer_best, reach_seconds=at,
               reach_share=None if at is None else at / peer["seconds"], total_share=ours["seconds"] / peer["seconds"])
    out["reach_ok"] = at is not None and out["reach_share"] <= TARGET_TIME_SHARE
    return out


def run(datasets=DATASETS, codes=CODES, peer_python: str = DEFAULT_PEER_PYTHON, peer_epochs: int = PEER_EPOCHS,
        epochs_scale: float = 1.0, log=print, on_progress=None, precisions=PRECISIONS) -> dict:
    """For each dataset and code size: PCA, the pythae peer, then aekit's modern preset for that code size in each
    of ``precisions`` (``auto``, the preset's: bf16 where the CPU multiplies it; ``fp32``, what every CPU runs): one
    row per precision, sharing PCA and the peer."""
    import torch

    from aekit.data.catalog import load_dataset
    from aekit.experiments.overrides import scale_epochs, with_code_size
    from aekit.experiments.presets import get_preset
    from aekit.runtime import setup
    from benchmarks.quality import pca_mse

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    setup(device)
    result: dict = {"rows": [], "peer_epochs": peer_epochs, "epochs_scale": epochs_scale, "machine": machine(),
                    "date": time.strftime("%Y-%m-%d")}
    t_all = time.perf_counter()
    for name in datasets:
        data = load_dataset(name)
        log(data.summary())
        for k in codes:
            shared: dict = {"dataset": data.name, "code_size": k, "pca": pca_mse(data, k)}
            shared["peer"] = peer_curve(data, k, peer_python, peer_epochs, log=log)
            for precision in precisions:
                cfg = get_preset("stacked", "modern", code_size=k, n_train=len(data.train), image_shape=data.image_shape)
                cfg = dataclasses.replace(scale_epochs(with_code_size(cfg, k), epochs_scale), precision=precision)
                row = {**shared, "precision": precision,
                       "aekit": {**aekit_curve(cfg, data, device), "label": f"aekit modern preset (code {k}, {precision})"}}
                row["compare"] = compare(row)
                log(f"    aekit ({precision}): test MSE {row['aekit']['test_mse']:.5f} in {row['aekit']['seconds']:.0f} s; "
                    f"{_summary(row)}")
                result["rows"].append(row)
                result["seconds"] = time.perf_counter() - t_all
                if on_progress is not None:
                    on_progress(result)
    result["seconds"] = time.perf_counter() - t_all
    result["complete"] = True
    return result


def _summary(row: dict) -> str:
    c = row["compare"]
    if "reach_share" not in c:
        return f"{c['over_pca']:.2f}x PCA; peer skipped: {row['peer']['skipped']}"
    at = "never" if c["reach_seconds"] is None else f"{c['reach_seconds']:.0f} s ({c['reach_share']:.2f} of pythae's time)"
    return f"{c['over_pca']:.2f}x PCA (pythae {c['peer_over_pca']:.2f}x); reaches pythae's validation MSE at {at}"


def to_markdown(r: dict) -> str:
    """One row per dataset and code size: both test MSEs against PCA, both times, and when aekit got there."""
    rows = []
    for row in r["rows"]:
        c, ours, peer = row["compare"], row["aekit"], row["peer"]
        skipped = "skipped" in peer
        at = "–" if skipped else ("never" if c["reach_seconds"] is None else
                                  f"{c['reach_seconds']:.0f} s ({c['reach_share']:.2f}×)")
        rows.append([row["dataset"], row["code_size"], row.get("precision", "auto"), f"{row['pca']:.4f}",
                     "skipped" if skipped else f"{peer['test_mse']:.4f} ({c['peer_over_pca']:.3f}×)",
                     "–" if skipped else f"{peer['seconds']:.0f} s",
                     f"{ours['test_mse']:.4f} ({c['over_pca']:.3f}×)", f"{ours['seconds']:.0f} s", at])
    header = ["data", "code", "aekit precision", "PCA test MSE", "pythae AE test MSE (× PCA)", "pythae time",
              "aekit modern test MSE (× PCA)", "aekit time", "aekit reaches pythae's MSE at (× pythae's time)"]
    notes = sorted({row["peer"]["skipped"] for row in r["rows"] if "skipped" in row["peer"]})
    status = "" if r.get("complete") else " PARTIAL: still running or stopped early."
    return (f"Quality per second ({r['seconds'] / 60:.0f} min, {r['date']}; pythae {r['peer_epochs']} epochs; epochs "
            f"x{r['epochs_scale']}).{status}\n\n" + markdown_table(header, rows)
            + "".join(f"\nPeer skipped: {n}\n" for n in notes))


def search_table(r: dict) -> str:
    """The screening trials of benchmarks/frontier_search.py: each recipe's time, and its test MSE against PCA."""
    rows = [[t["dataset"], t["code_size"], ", ".join(f"{k}={v}" for k, v in t["changes"].items()),
             f"{t['seconds']:.0f} s", f"{t['test_mse']:.5f}", f"{t['test_mse'] / t['pca']:.3f}"] for t in r["trials"]]
    return markdown_table(["data", "code", "changes to the modern base", "time", "test MSE", "× PCA"], rows)


def figure(r: dict, path) -> None:
    """Validation MSE against seconds, one panel per dataset and code size: pythae's curve and aekit's."""
    from aekit.figures import frontier_figure

    frontier_figure([row for row in r["rows"] if row.get("precision", "auto") == "auto"], path)


def add_arguments(p) -> None:
    p.add_argument("--quick", action="store_true", help="mnist-5k, code 32, a fifth of the epochs: a minute or two")
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated datasets")
    p.add_argument("--codes", default=",".join(map(str, CODES)), help="comma-separated code sizes")
    p.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON, help="the interpreter with pythae installed")
    p.add_argument("--peer-epochs", type=int, default=PEER_EPOCHS, help="pythae's epochs")
    p.add_argument("--precisions", default=",".join(PRECISIONS), help="aekit's precisions, comma-separated (auto, fp32)")
    p.add_argument("--json", default="benchmarks/results/frontier.json", help="JSON output; the .md table goes beside it")
    p.add_argument("--figure", default=DEFAULT_FIGURE, help="the frontier figure (PNG); '' for none")


def run_cli(args) -> int:
    from aekit.errors import ConfigError
    from benchmarks.common import write_report

    codes = positive_ints("--codes", args.codes, "32,128")
    if args.peer_epochs < 1:
        raise ConfigError(f"--peer-epochs {args.peer_epochs} must be a positive integer")

    def partial(result):
        write_report(result, to_markdown(result), args.json)

    if args.quick:
        result = run(datasets=("mnist-5k",), codes=(32,), peer_python=args.peer_python,
                     peer_epochs=max(1, args.peer_epochs // 5), epochs_scale=0.2)
    else:
        result = run(datasets=tuple(d for d in args.datasets.split(",") if d), codes=codes,
                     peer_python=args.peer_python, peer_epochs=args.peer_epochs, on_progress=partial,
                     precisions=tuple(p for p in args.precisions.split(",") if p))
    if args.figure:
        figure(result, args.figure)
        print(f"wrote {args.figure}")
    return finish(result, to_markdown(result), args.json)


def main(argv=None) -> int:
    import sys

    return script_main(sys.modules[__name__], argv)
