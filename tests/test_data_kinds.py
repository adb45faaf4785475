"""Every kind of data through the whole pipeline: train, encode, reconstruct, score, export (ONNX parity) and
explore, for every architecture that applies: gray 28x28, color 32x32x3, an odd color size (45x37x3), a folder
of PNG and JPEG files in class subfolders, and a CSV table with a text column and a label column."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_image_folders import write_folder
from test_tables import make_table, write

from aekit.cli import main
from aekit.inference import open_model

pytestmark = pytest.mark.slow  # about fifty trainings, exports and pages


def npz(root, shape, n=60):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    path = root / "images.npz"
    np.savez(path, x_train=x[:48], y_train=np.arange(48) % 3, x_test=x[48:], y_test=np.arange(12) % 3)
    return path, path


KINDS = {  # kind -> (make(root) -> (dataset, input for the commands), architectures)
    "gray-28x28": (lambda root: npz(root, (28, 28)), ["mlp", "vae", "conv", "conv-vae", "pca-residual"]),
    "color-32x32x3": (lambda root: npz(root, (32, 32, 3)), ["mlp", "vae", "conv", "conv-vae", "pca-residual"]),
    "color-45x37x3": (lambda root: npz(root, (45, 37, 3)), ["mlp", "vae", "conv", "conv-vae", "pca-residual"]),
    "image-folder": (lambda root: (write_folder(root / "pets"), write_folder(root / "pets") / "test" / "dog"),
                     ["mlp", "vae", "conv", "conv-vae", "pca-residual"]),
    "csv-table": (lambda root: (write(make_table(), root / "rows.csv"),) * 2, ["mlp", "pca-residual"]),
}
CASES = [(kind, arch) for kind, (_, archs) in KINDS.items() for arch in archs]
SIZES = {"mlp": "32,6", "vae": "32,6", "conv": "4,8,6", "conv-vae": "4,8,6", "pca-residual": "32,3"}


@pytest.mark.parametrize("kind,architecture", CASES, ids=[f"{k}-{a}" for k, a in CASES])
def test_the_whole_pipeline(tmp_path, kind, architecture):
    ort = pytest.importorskip("onnxruntime")
    dataset, inputs = KINDS[kind][0](tmp_path)
    table = ["--label-column", "kind"] if kind == "csv-table" else []
    assert main(["reproduce", "stacked", "--dataset", str(dataset), *table, "--out", str(tmp_path / "run"), "--no-progress",
                 "--set", f"architecture={architecture}", "--set", f"hidden_sizes={SIZES[architecture]}",
                 "--set", "activation=relu", "--set", "init=kaiming", "--set", "epochs=1", "--set", "batch_size=8",
                 "--set", "learning_rate=0.001"]) == 0  # the tutorial's 0.02 blows a VAE up on noise: logits in the 1,000s
    run = tmp_path / "run" / "stacked"
    assert main(["encode", str(run), str(inputs), "-o", str(tmp_path / "codes.npy")]) == 0
    codes = np.load(tmp_path / "codes.npy")
    assert codes.shape[1] == int(SIZES[architecture].split(",")[-1]) and np.isfinite(codes).all()
    out = tmp_path / ("back.csv" if kind == "csv-table" else "back.png")
    assert main(["reconstruct", str(run), str(inputs), "-o", str(out)]) == 0 and out.stat().st_size > 0
    assert main(["score", str(run), str(inputs), "-o", str(tmp_path / "scores.csv")]) == 0
    opened = open_model(run)
    x, _ = opened.read(inputs)
    decoder = opened.autoencoder().eval()
    for part in ("encoder", "decoder", "autoencoder"):
        assert main(["export", str(run), "--onnx", str(tmp_path / f"{part}.onnx"), "--part", part]) == 0
        session = ort.InferenceSession(str(tmp_path / f"{part}.onnx"))
        if part == "decoder":
            given = np.random.default_rng(0).standard_normal((8, codes.shape[1]), dtype=np.float32)  # any codes
            with torch.no_grad():
                expected = decoder.decode(torch.from_numpy(given)).numpy()
        else:
            given, expected = x, (opened.encode(x) if part == "encoder" else opened.reconstruct(x))
        got = session.run(None, {session.get_inputs()[0].name: given})[0]
        # 1e-5, relative to values beyond 1 (a float32 holds about 7 digits: codes of 70 differ by 8e-6)
        assert np.abs(got - expected).max() < 1e-5 * max(1.0, np.abs(expected).max()), part
    assert main(["explore", str(run), "--input", str(inputs), "-o", str(tmp_path / "page.html")]) == 0
