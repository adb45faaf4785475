"""Every command works on every architecture: encode, reconstruct, score and export (each part, ONNX parity).

Checkpoints come from real `aekit reproduce` runs (seed MLP, tied MLP, the modern PCA-residual preset, conv,
VAE), the pretrain program's classifier, and both estimators.
"""

import numpy as np
import pytest
import torch
from conftest import tiny_arrays

import aekit
from aekit.cli import main
from aekit.estimators import AutoencoderClassifier, AutoencoderTransformer
from aekit.inference import open_model

pytestmark = pytest.mark.slow  # eight trainings, then every command on each

RUNS = {
    "seed-mlp": [],
    "tied": ["--set", "tied=true"],
    "modern-pca-residual": ["--preset", "modern", "--set", "hidden_sizes=64,16", "--set", "early_stopping=0"],
    "conv": ["--set", "architecture=conv", "--set", "hidden_sizes=4,8,16", "--set", "activation=relu"],
    "vae": ["--set", "architecture=vae", "--set", "hidden_sizes=32,8", "--set", "activation=gelu"],
    "conv-vae": ["--set", "architecture=conv-vae", "--set", "hidden_sizes=4,8,6", "--set", "activation=relu"],
}
AUTOENCODERS = [*RUNS, "estimator-transformer", "estimator-classifier"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("arch")
    xtr, ytr, xte, yte = tiny_arrays(200, 40)
    data = root / "tiny.npz"
    np.savez(data, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    paths = {}
    for name, extra in RUNS.items():
        out = root / name
        code = main(["reproduce", "stacked", "--dataset", str(data), "--out", str(out), "--no-progress",
                     "--set", "epochs=1", "--set", "batch_size=32", *extra])
        assert code == 0, name
        paths[name] = out / "stacked"
    assert main(["reproduce", "pretrain", "--dataset", str(data), "--out", str(root / "pre"), "--no-progress",
                 "--set", "epochs=1", "--set", "finetune.epochs=1", "--set", "batch_size=32"]) == 0
    paths["classifier"] = root / "pre" / "pretrain" / "classifier"
    X = xtr.reshape(len(xtr), -1)
    AutoencoderTransformer(hidden_sizes=(32, 8), max_epochs=1, random_state=0).fit(X).save(root / "est-t")
    AutoencoderClassifier(hidden_sizes=(32, 8), pretrain_epochs=1, finetune_epochs=1, random_state=0).fit(X, ytr) \
        .save(root / "est-c")
    paths["estimator-transformer"], paths["estimator-classifier"] = root / "est-t", root / "est-c"
    np.save(root / "x.npy", xte[:12])
    paths["input"] = root / "x.npy"
    return paths


@pytest.mark.parametrize("name", [*AUTOENCODERS, "classifier"])
def test_encode(checkpoints, name, tmp_path):
    out = tmp_path / "codes.npy"
    assert main(["encode", str(checkpoints[name]), str(checkpoints["input"]), "-o", str(out)]) == 0
    codes = np.load(out)
    network = open_model(checkpoints[name]).network
    code_size = getattr(network.config, "code_size", None) or network.config.autoencoder.code_size
    assert codes.shape == (12, code_size) and np.isfinite(codes).all()


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_reconstruct_and_score(checkpoints, name, tmp_path, capsys):
    png, csv = tmp_path / "r.png", tmp_path / "s.csv"
    assert main(["reconstruct", str(checkpoints[name]), str(checkpoints["input"]), "-o", str(png), "-n", "4"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    opened = open_model(checkpoints[name])
    x = np.load(checkpoints["input"]).reshape(12, -1)
    assert opened.methods == (("reconstruction",) if name == "estimator-classifier" else ("knn", "reconstruction"))
    for method in opened.methods:
        column = "distance" if method == "knn" else "error"
        assert main(["score", str(checkpoints[name]), str(checkpoints["input"]), "-o", str(csv), "--method", method]) == 0
        rows = csv.read_text().splitlines()
        assert rows[0] == f"index,{column},outlier,where" and len(rows) == 13
        scores = np.array([float(r.split(",")[1]) for r in rows[1:]])
        assert np.allclose(scores, opened.scores(x, method), rtol=1e-6)
    assert np.allclose(scores, opened.errors(x), rtol=1e-6)
    assert "classifier without a decoder" not in capsys.readouterr().err


def test_classifier_alone_still_refuses_to_reconstruct(checkpoints, tmp_path, capsys):
    assert main(["score", str(checkpoints["classifier"]), str(checkpoints["input"])]) == 2
    assert "classifier without a decoder" in capsys.readouterr().err


@pytest.mark.slow  # torch.export of every part of every architecture (tests/test_commands.py keeps one fast)
@pytest.mark.parametrize("part", ["encoder", "decoder", "autoencoder"])
@pytest.mark.parametrize("name", AUTOENCODERS)
def test_onnx_export_every_part_matches_pytorch(checkpoints, name, part, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "m.onnx"
    assert main(["export", str(checkpoints[name]), "--onnx", str(path), "--part", part]) == 0
    opened = open_model(checkpoints[name])
    ae = opened.autoencoder()
    session = ort.InferenceSession(str(path))
    width = session.get_inputs()[0].shape[1]
    x = np.random.default_rng(0).random((7, width), dtype=np.float32)  # a batch size not seen at export
    pixels = session.get_inputs()[0].type == "tensor(uint8)"  # an image model's graph takes what `aekit encode` does
    assert pixels == (part != "decoder" and (opened.estimator is None or opened.estimator.scaling_ == "uint8"))
    if part == "decoder":  # codes are not bounded to [0, 1] (GELU, identity, VAE means)
        x = (x - 0.5) * 6
    if pixels:
        x = (x * 255).astype(np.uint8)
    with torch.inference_mode():
        t = torch.as_tensor(x) * (1 / 255) if pixels else torch.as_tensor(x)
        if part == "decoder":
            expected = ae.decode(t).numpy()
        elif part == "encoder":
            expected = opened.network.encode(t).numpy()
        else:
            expected = ae(t).numpy()
    if opened.estimator is not None and part != "decoder" and not pixels:  # the scaling is part of the graph
        est = opened.estimator
        scaled = np.clip((x - est.data_min_) / est.data_range_, 0, 1).astype(np.float32)
        with torch.inference_mode():
            fn = opened.network.encode if part == "encoder" else ae
            expected = fn(torch.as_tensor(scaled)).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5


def test_vae_codes_are_its_posterior_mean(checkpoints):
    model = aekit.load(checkpoints["vae"])
    x = torch.rand(5, 784)
    with torch.inference_mode():
        assert torch.equal(model.encode(x), model.posterior(x)[0])
        assert torch.allclose(model(x), model.decode(model.posterior(x)[0]))
