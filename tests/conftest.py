"""Shared fixtures: tiny fake datasets written to temp dirs, and an environment with no real data roots."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from aekit.data import catalog as datasets
from aekit.data.catalog import IdxDataset, Resource
from aekit.data.idx import write_idx

NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def weight_differences(a: Path, b: Path) -> dict[str, float]:
    """The tensors in which two safetensors files (or two folders of them, compared file by file) differ, each with
    its largest difference (inf: in one only, or another shape): a failure names what differs instead of printing
    megabytes of bytes."""
    import torch
    from safetensors.torch import load_file

    files = sorted(p.relative_to(a) for p in a.rglob("*.safetensors")) if a.is_dir() else [Path()]
    out = {}
    for rel in files:
        x, y = load_file(a / rel), load_file(b / rel) if (b / rel).exists() else {}
        for k in sorted(set(x) | set(y)):
            if k not in x or k not in y or x[k].shape != y[k].shape:
                out[f"{rel}:{k}"] = float("inf")
            elif not torch.equal(x[k], y[k]):
                out[f"{rel}:{k}"] = (x[k].double() - y[k].double()).abs().max().item()
    return out


def one_line(capsys) -> str:
    """The one line a refusal wrote to stderr (no traceback, nothing else)."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def arithmetic_noise(differences: dict[str, float], at_most: float = 1e-3) -> bool:
    """Whether two runs differ only as reordered float sums do (every difference small), not as another seed does."""
    return bool(differences) and max(differences.values()) <= at_most


def tiny_arrays(n_train=300, n_test=60, seed=0):
    """Blobby 28x28 images whose class decides which quadrant is bright: learnable in a few steps."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 4, size=n)
        x = rng.integers(0, 40, size=(n, 28, 28))
        for i, c in enumerate(y):
            r, k = divmod(int(c), 2)
            x[i, r * 14:(r + 1) * 14, k * 14:(k + 1) * 14] += 180
        return x.clip(0, 255).astype(np.uint8), y.astype(np.uint8)

    xtr, ytr = make(n_train)
    xte, yte = make(n_test)
    return xtr, ytr, xte, yte


def write_tiny_idx(folder: Path, name="tiny", mirrors=(), **kw) -> IdxDataset:
    """Write four gzipped IDX files into ``folder`` and return a declaration whose checksums match them."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = tiny_arrays(**kw)
    resources = []
    for fname, arr in zip(NAMES, arrays):
        write_idx(folder / fname, arr)
        md5 = hashlib.md5((folder / fname).read_bytes()).hexdigest()
        resources.append(Resource(fname, md5, arr.shape))
    return IdxDataset(name=name, mirrors=tuple(mirrors), resources=tuple(resources), classes=("a", "b", "c", "d"))


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No $AEKIT_DATA, an empty cache, an empty system root, downloads allowed."""
    monkeypatch.delenv("AEKIT_DATA", raising=False)
    monkeypatch.delenv("AEKIT_OFFLINE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", tmp_path / "system")
    return tmp_path


@pytest.fixture
def tiny_npz(tmp_path) -> Path:
    xtr, ytr, xte, yte = tiny_arrays()
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


def pytest_configure(config):
    # As the CLI does: flush denormals before the first parallel op so that worker threads inherit it
    # (saturated sigmoids otherwise make every matmul crawl).
    import torch

    from aekit.runtime import setup

    setup(torch.device("cpu"))


@pytest.fixture(scope="session")
def explore_runs(tmp_path_factory) -> dict[str, Path]:
    """Tiny one-epoch runs of every architecture (and an estimator) on 40 test images, for aekit explore."""
    from aekit.cli import main
    from aekit.estimators import AutoencoderTransformer

    root = tmp_path_factory.mktemp("explore")
    xtr, ytr, xte, yte = tiny_arrays(200, 40)
    data = root / "tiny.npz"
    np.savez(data, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    runs = {
        "mlp": [], "tied": ["--set", "tied=true"], "batchnorm-gelu": ["--set", "batch_norm=true", "--set", "activation=gelu"],
        "pca-residual": ["--preset", "modern", "--set", "hidden_sizes=64,16", "--set", "early_stopping=0"],
        "conv": ["--set", "architecture=conv", "--set", "hidden_sizes=4,8,16", "--set", "activation=relu"],
        "vae": ["--set", "architecture=vae", "--set", "hidden_sizes=32,8", "--set", "activation=gelu"],
        "conv-vae": ["--set", "architecture=conv-vae", "--set", "hidden_sizes=4,8,6", "--set", "activation=relu"],
    }
    paths = {"data": data}
    for name, extra in runs.items():
        assert main(["reproduce", "stacked", "--dataset", str(data), "--out", str(root / name), "--no-progress",
                     "--set", "epochs=1", "--set", "batch_size=32", *extra]) == 0, name
        paths[name] = root / name / "stacked"
    AutoencoderTransformer(hidden_sizes=(32, 8), max_epochs=1, random_state=0).fit(xtr.reshape(len(xtr), -1)).save(root / "est")
    paths["estimator"] = root / "est"
    return paths
