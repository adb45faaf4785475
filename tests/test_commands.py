"""aekit train / encode / reconstruct / score / export, checkpoints and TensorBoard, on a tiny run."""

import json

import numpy as np
import pytest
import torch
from conftest import tiny_arrays

import aekit
from aekit.cli import main
from aekit.data.idx import write_idx
from aekit.errors import DataError
from aekit.models.classifier import EncoderClassifier
from aekit.models.stacked import StackedAutoencoder

TOML = """
program = "all"
dataset = "{data}"
out = "{out}"
seed = 3
progress = false

[config]
epochs = 25
finetune.epochs = 3
batch_size = 64
hidden_sizes = [64, 16]
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    xtr, ytr, xte, yte = tiny_arrays()
    np.savez(root / "tiny.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    (root / "run.toml").write_text(TOML.format(data=root / "tiny.npz", out=root / "out"))
    assert main(["train", "--config", str(root / "run.toml")]) == 0
    return root


def test_train_from_toml_writes_a_loadable_run(run_dir):
    m = json.loads((run_dir / "out" / "pretrain" / "metrics.json").read_text())
    assert m["config"]["hidden_sizes"] == [64, 16] and m["seed"] == 3
    model = aekit.load(run_dir / "out" / "stacked")
    assert isinstance(model, StackedAutoencoder) and model.config.hidden_sizes == (64, 16)
    assert model.extra["dataset"] == "tiny" and model.extra_arrays["train_error_quantiles"].shape == (1001,)
    clf = aekit.load(run_dir / "out" / "pretrain" / "classifier")
    assert isinstance(clf, EncoderClassifier)
    x = torch.as_tensor(tiny_arrays()[2].reshape(60, -1)) / 255.0
    acc = (clf(x).argmax(1).numpy() == tiny_arrays()[3]).mean()
    assert acc == pytest.approx(m["test_accuracy"])  # the reloaded classifier is the trained one


def test_model_save_load_identical(tmp_path):
    from aekit.models.stacked import AutoencoderConfig
    from aekit.runtime import generator

    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(32, 4), activation="gelu", init="xavier"), generator(0))
    model.save(tmp_path / "m")
    back = aekit.load(tmp_path / "m")
    x = torch.rand(5, 784)
    torch.testing.assert_close(back(x), model.eval()(x), rtol=0, atol=0)


@pytest.mark.parametrize("toml, match", [
    ('program = "stacked"\nepochs = 3\n', r"run\.toml: epochs: unknown key; did you mean 'seed'\?|run\.toml: epochs: unknown key; did you mean 'epochs_scale'\?"),
    ('program = "stacked"\n[config]\ntrain_epochs = 3\n', r"run\.toml \[config\] train_epochs: unknown key; did you mean 'train.epochs'\?"),
    ('program = "stacked"\n[config]\nbatch_size = "big"\n', r"batch_size='big': expected an integer"),
    ('program = "stacked"\nseed = 1.5\n', r"seed=1.5: expected an integer"),
    ('program = "both"\n', r"program='both' is not allowed"),
    ('program = [\n', r"invalid TOML"),
])
def test_toml_errors(tmp_path, capsys, toml, match):
    import re

    (tmp_path / "run.toml").write_text(toml)
    assert main(["train", "--config", str(tmp_path / "run.toml")]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and err.count("\n") == 1, err


def _inputs(tmp_path):
    """The same 12 test images as .npy, .npz, IDX and a folder of PNGs."""
    from PIL import Image

    x = tiny_arrays()[2][:12]
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", x_test=x)
    write_idx(tmp_path / "x-idx3-ubyte.gz", x)
    (tmp_path / "png").mkdir()
    for i, im in enumerate(x):
        Image.fromarray(im).save(tmp_path / "png" / f"{i:03d}.png")
    return x, [tmp_path / "x.npy", tmp_path / "x.npz", tmp_path / "x-idx3-ubyte.gz", tmp_path / "png"]


def test_encode_every_input_format(run_dir, tmp_path):
    x, paths = _inputs(tmp_path)
    model = aekit.load(run_dir / "out" / "stacked")
    expected = model.encode(torch.as_tensor(x.reshape(12, -1)) / 255.0).detach().numpy()
    for path in paths:
        out = tmp_path / f"{path.name}.codes.npy"
        assert main(["encode", str(run_dir / "out" / "stacked"), str(path), "-o", str(out)]) == 0
        np.testing.assert_allclose(np.load(out), expected, rtol=1e-5, atol=1e-6)


def test_encode_float_npy_and_wrong_width(run_dir, tmp_path, capsys):
    np.save(tmp_path / "f.npy", tiny_arrays()[2][:3].reshape(3, -1) / 255.0)
    assert main(["encode", str(run_dir / "out" / "stacked"), str(tmp_path / "f.npy"), "-o", str(tmp_path / "c.npy")]) == 0
    np.save(tmp_path / "w.npy", np.zeros((3, 10), np.uint8))
    assert main(["encode", str(run_dir / "out" / "stacked"), str(tmp_path / "w.npy"), "-o", str(tmp_path / "c2.npy")]) == 2
    assert "has 10 features per sample; the model at" in capsys.readouterr().err
    assert not (tmp_path / "c2.npy").exists()


@pytest.mark.parametrize("method, column, basis", [(None, "distance", "validation scores"),
                                                    ("reconstruction", "error", "training data")])
def test_reconstruct_and_score(run_dir, tmp_path, capsys, method, column, basis):
    """The default score is the distance to the nearest kept training images; both scores flag the negatives."""
    x, paths = _inputs(tmp_path)
    grid = tmp_path / "grid.png"
    assert main(["reconstruct", str(run_dir / "out" / "stacked"), str(paths[0]), "-o", str(grid), "-n", "5"]) == 0
    assert grid.read_bytes()[:4] == b"\x89PNG"
    odd = np.concatenate([x, 255 - x[:3]])  # three negatives are the anomalies
    np.save(tmp_path / "odd.npy", odd)
    csv, fig = tmp_path / "scores.csv", tmp_path / "worst.png"
    assert main(["score", str(run_dir / "out" / "stacked"), str(tmp_path / "odd.npy"), "--contamination", "0.05",
                 "-o", str(csv), "--figure", str(fig), *(["--method", method] if method else [])]) == 0
    out = capsys.readouterr().out
    assert f"contamination 0.05 of {basis}" in out and fig.is_file()
    assert csv.read_text().startswith(f"index,{column},outlier,where\n")
    rows = np.loadtxt(csv, delimiter=",", skiprows=1, usecols=(0, 1, 2))
    assert rows.shape == (15, 3)
    assert set(np.argsort(rows[:, 1])[-3:]) == {12, 13, 14}  # the negatives score worst
    assert rows[12:, 2].all()
    import csv as csvmodule

    where = [row[3] for row in csvmodule.reader(csv.read_text().splitlines()[1:])]
    assert all(where[i].startswith("pixels x ") for i in (12, 13, 14))  # each outlier says where its error is


def test_score_rejects_bad_contamination(run_dir, tmp_path, capsys):
    np.save(tmp_path / "x.npy", tiny_arrays()[2][:3])
    assert main(["score", str(run_dir / "out" / "stacked"), str(tmp_path / "x.npy"), "--contamination", "0.7"]) == 2
    assert "--contamination 0.7 must be in (0, 0.5)" in capsys.readouterr().err


def test_classifier_cannot_reconstruct(run_dir, tmp_path, capsys):
    np.save(tmp_path / "x.npy", tiny_arrays()[2][:3])
    assert main(["reconstruct", str(run_dir / "out" / "pretrain" / "classifier"), str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "g.png")]) == 2
    assert "is a classifier without a decoder" in capsys.readouterr().err


@pytest.mark.parametrize("part", ["encoder", "autoencoder"])
def test_onnx_export_takes_what_encode_takes(run_dir, tmp_path, part, capsys):
    """The graph takes the uint8 pixels `aekit encode` takes and gives its codes; a float array is refused
    loudly rather than clamped into wrong codes."""
    ort = pytest.importorskip("onnxruntime")
    run, path = run_dir / "out" / "stacked", tmp_path / f"{part}.onnx"
    assert main(["export", str(run), "--onnx", str(path), "--part", part]) == 0
    assert "uint8 pixels" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # self-contained: no external data file
    pixels = np.random.default_rng(0).integers(0, 256, (37, 784), dtype=np.uint8)  # a batch size not seen at export
    np.save(tmp_path / "pixels.npy", pixels)
    session = ort.InferenceSession(str(path))
    got = session.run(None, {"x": pixels})[0]
    if part == "encoder":
        assert main(["encode", str(run), str(tmp_path / "pixels.npy"), "-o", str(tmp_path / "codes.npy")]) == 0
        expected = np.load(tmp_path / "codes.npy")
    else:
        with torch.inference_mode():
            expected = aekit.load(run)(torch.as_tensor(pixels) * (1 / 255)).numpy()
    assert np.abs(got - expected).max() < 1e-5
    with pytest.raises(Exception, match="(?i)type"):
        session.run(None, {"x": pixels.astype(np.float32)})  # 0..255 floats: refused, not clamped
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["aekit.input"].startswith("uint8 pixels")


def test_onnx_export_of_estimator_includes_scaling(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from aekit.estimators import AutoencoderTransformer

    X = np.random.default_rng(1).normal(size=(80, 6)) * 50 + 10
    est = AutoencoderTransformer(hidden_sizes=(5, 3), max_epochs=3, random_state=0, device="cpu").fit(X)
    est.save(tmp_path / "est")
    assert main(["export", str(tmp_path / "est"), "--onnx", str(tmp_path / "e.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "e.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})[0]
    assert np.abs(got - est.transform(X.astype(np.float32))).max() < 1e-5


def test_tensorboard_logs(tiny_npz, tmp_path):
    pytest.importorskip("tensorboard")
    tb = tmp_path / "tb"
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(tmp_path / "o"), "--tensorboard", str(tb),
                 "--set", "epochs=2", "--set", "batch_size=64", "--no-progress"]) == 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb / "stacked")).Reload()
    assert [e.step for e in acc.Scalars("loss/train")] == [0, 1]
    assert acc.Tags()["images"]
    # the projector: codes, labels and a sprite of the test images, not white (floats in [0, 1], not uint8)
    config = (tb / "stacked" / "projector_config.pbtxt").read_text()
    assert "stacked test codes" in config and "sprite" in config
    folder = next((tb / "stacked").rglob("tensors.tsv")).parent
    codes = np.loadtxt(folder / "tensors.tsv", ndmin=2)
    labels = (folder / "metadata.tsv").read_text().split()
    assert codes.shape == (60, 128) and len(labels) == 60 and set(labels) <= {"0", "1", "2", "3"}
    from PIL import Image

    sprite = np.asarray(Image.open(folder / "sprite.png").convert("L"), dtype=np.float32)
    x_test = np.load(tiny_npz)["x_test"]
    assert sprite.shape[0] >= 28 * 8 and abs(sprite[:28, :28].mean() - x_test[0].mean()) < 2.0


@pytest.mark.parametrize("setup, match", [
    (lambda d: None, "is not an aekit checkpoint: expected config.json and model.safetensors"),
    (lambda d: ((d / "config.json").write_text('{"format": "aekit-checkpoint", "version": 99, "kind": "StackedAutoencoder"}'),
                (d / "model.safetensors").write_bytes(b"x")), "checkpoint version 99 is newer than this aekit reads"),
    (lambda d: ((d / "config.json").write_text('{"format": "aekit-checkpoint", "version": 1, "kind": "StackedAutoencoder", "config": {}}'),
                (d / "model.safetensors").write_bytes(b"garbage")), "corrupt or unreadable safetensors file"),
])
def test_load_errors(tmp_path, setup, match):
    setup(tmp_path)
    with pytest.raises(DataError, match=match):
        aekit.load(tmp_path)


def test_tensorboard_draws_color_images(tmp_path):
    pytest.importorskip("tensorboard")
    x = np.random.default_rng(0).integers(0, 60, (80, 10, 12, 3), dtype=np.uint8)
    x[..., 2] += 190  # blue
    np.savez(tmp_path / "blue.npz", x_train=x[:64], x_test=x[64:])
    tb = tmp_path / "tb"
    assert main(["reproduce", "stacked", "--dataset", str(tmp_path / "blue.npz"), "--out", str(tmp_path / "o"),
                 "--tensorboard", str(tb), "--set", "epochs=1", "--set", "batch_size=16", "--no-progress"]) == 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb / "stacked"), size_guidance={"images": 0}).Reload()
    from io import BytesIO

    from PIL import Image

    first = Image.open(BytesIO(acc.Images(acc.Tags()["images"][0])[0].encoded_image_string)).convert("RGB")
    rgb = np.asarray(first, dtype=np.int16)
    tile = rgb[:10, :12]  # the grid's first tile: the first test image
    assert (tile[..., 2] > tile[..., 0] + 100).all()  # its blue is kept


def test_compare_draws_each_models_reconstructions_with_its_test_mse(run_dir, tmp_path, capsys):
    stacked, pretrain = run_dir / "out" / "stacked", run_dir / "out" / "pretrain"
    out = tmp_path / "compare.png"
    assert main(["compare", str(stacked), str(pretrain), "--names", "one,two", "--dataset", str(run_dir / "tiny.npz"),
                 "-n", "4", "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    from aekit.data.catalog import load_dataset
    from aekit.inference import open_model

    x = load_dataset(str(run_dir / "tiny.npz")).test.images
    for name, model, line in zip(("one", "two"), (stacked, pretrain), lines):
        assert line.startswith(f"{name}: test MSE {open_model(model).errors(x).mean():.4f}")  # the whole test split
    from PIL import Image

    assert Image.open(out).size[1] > Image.open(out).size[0] / 4  # three rows of four images
    assert main(["compare", str(stacked), "--names", "a,b", "-o", str(tmp_path / "x.png")]) == 2
    assert "--names gives 2 names for 1 models" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_score_by_neighbours_needs_kept_samples(tmp_path, capsys):
    from aekit.estimators import AutoencoderTransformer

    x = tiny_arrays()[0].reshape(300, -1)
    np.save(tmp_path / "x.npy", x[:20])
    for scoring in ("reconstruction", "knn"):
        AutoencoderTransformer(hidden_sizes=(16, 4), max_epochs=1, random_state=0, device="cpu", scoring=scoring,
                               n_neighbors=1).fit(x).save(tmp_path / scoring)
    assert main(["score", str(tmp_path / "reconstruction"), str(tmp_path / "x.npy"), "--method", "knn"]) == 2
    assert "keeps no training samples to compare with" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "knn"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "s.csv")]) == 0
    distances = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1, usecols=1)
    assert distances.max() < 0.05  # each row is its own nearest training row (up to the rounding of cdist)


def test_a_distance_is_explained_by_where_the_sample_differs_from_its_nearest_training_samples():
    import torch

    from aekit.anomalies import explain
    from aekit.training.neighbors import NORM_POWER, differences, knn_distance

    rng = np.random.default_rng(0)
    bank = rng.integers(0, 30, size=(50, 28 * 28)).astype(np.uint8)  # dim noise everywhere
    odd = bank[:2].copy().reshape(2, 28, 28)
    odd[0, 20:26, 20:26] = 255  # a bright square, bottom right
    odd[1, 2:6, 3:8] = 255  # top left
    odd = odd.reshape(2, -1)
    squared = differences(bank, odd, 5, True, torch.device("cpu"), norm_power=NORM_POWER)
    assert squared.shape == (2, 28 * 28)
    # summed over the pixels, the differences are the mean squared distance to the 5 nearest
    dist = knn_distance(bank, odd, 5, True, torch.device("cpu"), norm_power=NORM_POWER)
    assert np.all(squared.sum(axis=1) >= dist ** 2 * 0.999)  # mean of squares >= square of the mean
    where = explain(squared, (28, 28))
    assert where[0].startswith("pixels x 2") and ", y 2" in where[0]  # the cell holding the bottom-right square
    assert where[1].startswith("pixels x 0-") and ", y 0-" in where[1]


def test_a_color_images_error_is_placed_in_its_region_with_all_channels_together():
    from aekit.anomalies import explain

    squared = np.zeros((2, 45, 37, 3))
    squared[0, 40:44, 30:35, 2] = 1.0  # only the blue channel, bottom right of an odd size
    squared[1, 0:5, 0:4, :] = 0.2  # every channel, top left
    squared[1, 30, 20, 0] = 0.5  # a smaller error elsewhere
    where = explain(squared.reshape(2, -1), (45, 37, 3))
    assert where[0] == "pixels x 30-36, y 36-44 (100%)"  # the last cells are cut to the image
    assert where[1].startswith("pixels x 0-9, y 0-11 (") and "(100%)" not in where[1]


def test_a_run_scores_neighbours_in_the_space_its_thresholds_were_measured_in(run_dir, tmp_path):
    import json
    import shutil

    import torch

    from aekit.data.catalog import load_dataset
    from aekit.inference import open_model
    from aekit.training.neighbors import NORM_POWER, knn_distance

    x = load_dataset(str(run_dir / "tiny.npz")).test.images
    opened = open_model(run_dir / "out" / "stacked")
    assert opened.neighbors_norm_power == NORM_POWER
    old = shutil.copytree(run_dir / "out" / "stacked", tmp_path / "old")
    config = json.loads((old / "config.json").read_text())
    del config["extra"]["neighbors_norm_power"]  # as saved before the power was recorded
    (old / "config.json").write_text(json.dumps(config))
    expected = knn_distance(opened.neighbors, x, 5, True, torch.device("cpu"), norm_power=0.0)
    np.testing.assert_allclose(open_model(old).scores(x, "knn"), expected, rtol=1e-6)
    assert not np.allclose(opened.scores(x, "knn"), expected)
