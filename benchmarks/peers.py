"""The throughput benchmark's peers: the tutorial's TF1 code and a Keras 3 ``model.fit``, each in its own process.

TensorFlow and torch in one process fight over threads, so each peer is a script (``tf1_peer.py``,
``keras_peer.py``) run by file path by an interpreter that has TensorFlow: this one when it does (the benchmark
run from ``.venv-peers``), else ``.venv-peers/bin/python``, or ``--peer-python``. The scripts import neither
aekit nor this package. Without such an interpreter, each peer is skipped with a
note saying how to install it. Both start from the weights aekit is measured on, and train on the same images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PEERS = {"tf1": "tf1_peer.py", "keras": "keras_peer.py"}
VENV_PEERS = Path(".venv-peers", "bin", "python")
INSTALL = ("python3 -m venv .venv-peers && .venv-peers/bin/pip install -c constraints.txt -e . "
           "-r benchmarks/requirements.txt, then run the benchmark with .venv-peers/bin/python -m benchmarks")


def has_tensorflow(python: str | Path) -> bool:
    probe = subprocess.run([str(python), "-c", "import tensorflow, keras"], capture_output=True, check=False)
    return probe.returncode == 0


def peer_python(requested: str | None = None) -> tuple[str | None, str]:
    """The interpreter that runs the peers, or None with the note that says why and what to do."""
    if requested is not None:
        if not Path(requested).is_file():
            return None, f"--peer-python {requested}: no such interpreter; install the peers with {INSTALL}"
        if not has_tensorflow(requested):
            return None, f"--peer-python {requested} cannot import tensorflow and keras; install the peers with {INSTALL}"
        return requested, ""
    for candidate in (sys.executable, VENV_PEERS):
        if Path(candidate).is_file() and has_tensorflow(candidate):
            return str(candidate), ""
    return None, f"tensorflow is not installed (benchmarks/requirements.txt); skipped. To measure the peers: {INSTALL}"


def write_arrays(path: Path, images, state: dict) -> None:
    """The peers' input: the images (uint8) and the seed network's weights as W1..W4 (in, out), b1..b4."""
    import numpy as np

    linears = [(k, v) for k, v in state.items() if k.endswith("weight")]
    arrays = {"x": images}
    for i, (key, w) in enumerate(linears, 1):
        arrays[f"W{i}"] = w.detach().cpu().numpy().T.astype(np.float32)
        arrays[f"b{i}"] = state[key[: -len("weight")] + "bias"].detach().cpu().numpy().astype(np.float32)
    np.savez(path, **arrays)


def run_peer(name: str, python: str, arrays: Path, args: list[str]) -> dict:
    script = Path(__file__).with_name(PEERS[name])
    proc = subprocess.run([python, str(script), str(arrays), *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise RuntimeError(f"the {name} peer failed (exit {proc.returncode}): {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_peers(arrays: Path, steps: int, requested: str | None = None, log=print, skip: bool = False) -> dict:
    """Each peer's samples/s on ``steps`` batches of 256 (the TF1 code) or one epoch (Keras), or a skip note."""
    python, note = (None, "not measured (--no-peers)") if skip else peer_python(requested)
    if python is None:
        log(f"    peers: {note}")
        return {name: {"skipped": note} for name in PEERS}
    out = {"tf1": run_peer("tf1", python, arrays, ["--steps", str(steps)]),
           "keras": run_peer("keras", python, arrays, ["--epochs", "1"])}
    out["python"] = python
    return out

