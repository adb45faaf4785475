"""On a CUDA device (benchmarks/gpu_check.sh runs these where one is lent): data, training and outputs stay
right on the GPU. Skipped without CUDA."""

import numpy as np
import pytest
import torch
from conftest import tiny_arrays

from aekit.cli import main
from aekit.data.arrays import from_arrays
from aekit.data.batches import DeviceBatches
from aekit.experiments.overrides import apply_overrides
from aekit.experiments.presets import get_preset
from aekit.experiments.programs import run_stacked

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda")


def test_batches_live_on_the_device():
    x = tiny_arrays(300, 10)[0].reshape(300, -1)
    batches = DeviceBatches(x, batch_size=64, device=CUDA)
    assert batches.x.device.type == "cuda" and batches.x.dtype == torch.uint8
    (first,) = next(iter(batches.epoch(0)))
    assert first.device.type == "cuda" and first.dtype == torch.float32 and float(first.max()) <= 1.0


@pytest.mark.parametrize("preset", ["tutorial", "modern"])
def test_training_on_cuda_matches_the_cpu(preset):
    xtr, ytr, xte, yte = tiny_arrays(400, 60)
    data = from_arrays("tiny", xtr, ytr, xte, yte)
    cfg = apply_overrides(get_preset("stacked", preset), {"hidden_sizes": (64, 16), "epochs": 3, "batch_size": 40,
                                                          "precision": "fp32"})
    quiet = dict(log=lambda s: None, progress=False)
    cpu = run_stacked(cfg, data, torch.device("cpu"), seed=1, **quiet).metrics
    gpu = run_stacked(cfg, data, CUDA, seed=1, **quiet).metrics
    assert gpu["device"].startswith("cuda")
    assert gpu["test_mse"] == pytest.approx(cpu["test_mse"], rel=0.05)  # same recipe, another device's rounding


def test_a_cuda_run_serves_every_command(tmp_path):
    xtr, ytr, xte, yte = tiny_arrays(300, 60)
    np.savez(tmp_path / "tiny.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    np.save(tmp_path / "in.npy", xte[:7])
    run = tmp_path / "out"
    assert main(["reproduce", "all", "--dataset", str(tmp_path / "tiny.npz"), "--device", "cuda", "--out", str(run),
                 "--epochs-scale", "0.02", "--no-progress", "--set", "batch_size=64"]) == 0
    assert main(["encode", str(run / "stacked"), str(tmp_path / "in.npy"), "-o", str(tmp_path / "c.npy")]) == 0
    assert np.load(tmp_path / "c.npy").shape == (7, 128)
    assert main(["score", str(run / "stacked"), str(tmp_path / "in.npy")]) == 0


def test_label_propagation_runs_on_the_device_and_agrees_with_the_cpu():
    """The kNN graph (sparse CSR) and the Poisson iteration stay on the GPU and label as the CPU does."""
    from aekit.training.propagation import PoissonClassifier

    g = torch.Generator().manual_seed(0)
    centres = 3 * torch.eye(3)
    x = torch.cat([c + 0.3 * torch.randn(100, 3, generator=g) for c in centres])
    labeled, y = torch.tensor([0, 100, 200]), torch.tensor([0, 1, 2])
    cpu = PoissonClassifier(x, labeled, y, 3)
    gpu = PoissonClassifier(x.to(CUDA), labeled.to(CUDA), y.to(CUDA), 3)
    assert gpu.scores.device.type == "cuda"
    assert torch.equal(gpu.scores.argmax(1).cpu(), cpu.scores.argmax(1))
    assert torch.equal(gpu.predict(x[::7].to(CUDA)).cpu(), cpu.predict(x[::7]))
