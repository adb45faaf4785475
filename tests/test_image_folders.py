"""Folders of image files (PNG, JPEG) as datasets: read as they are, converted, and refused with one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line
from PIL import Image

import aekit
from aekit.cli import main
from aekit.data.catalog import load_dataset
from aekit.errors import DataError

QUICK = ["--epochs-scale", "0.02", "--no-progress", "--set", "batch_size=16"]


def write_folder(root: Path, size=(37, 45), per_class=12, colour=True) -> Path:
    """train/ and test/ with class subfolders cat/ and dog/; every third image a grayscale PNG, the rest RGB JPEGs."""
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", per_class // 2)):
        for c in ("cat", "dog"):
            folder = root / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rgb = rng.integers(0, 120, (size[1], size[0], 3), dtype=np.uint8)
                if c == "dog":
                    rgb[: size[1] // 2] += 120  # the classes differ: a bright top half
                if i % 3 == 0 or not colour:
                    Image.fromarray(rgb[..., 0]).save(folder / f"{i}.png")
                else:
                    Image.fromarray(rgb).save(folder / f"{i}.jpg", quality=95)
    return root


def test_a_mixed_png_and_jpeg_folder_is_a_labeled_colour_dataset(tmp_path):
    data = load_dataset(str(write_folder(tmp_path / "pets")))
    assert data.image_shape == (45, 37, 3) and data.n_features == 45 * 37 * 3
    assert data.classes == ("cat", "dog") and set(np.unique(data.test.labels)) == {0, 1}
    assert len(data.train) + len(data.validation) == 24 and len(data.test) == 12
    assert "grayscale image(s) converted to RGB" in data.source  # said in the summary
    gray = load_dataset(str(write_folder(tmp_path / "gray", colour=False)))
    assert gray.image_shape == (45, 37) and "converted" not in gray.source


def test_image_folder_trains_serves_and_converts(tmp_path, capsys):
    pets = write_folder(tmp_path / "pets")
    assert main(["reproduce", "all", "--dataset", str(pets), "--out", str(tmp_path / "run"), *QUICK]) == 0
    assert "converted to RGB" in capsys.readouterr().out
    model = aekit.load(tmp_path / "run" / "stacked")
    assert model.config.input_size == 45 * 37 * 3
    assert main(["encode", str(tmp_path / "run" / "stacked"), str(pets / "test" / "dog"),
                 "-o", str(tmp_path / "codes.npy")]) == 0
    assert np.load(tmp_path / "codes.npy").shape == (6, 128)
    assert main(["data", "convert", str(pets), str(tmp_path / "npy")]) == 0
    assert np.load(tmp_path / "npy" / "x_train.npy").shape == (24, 45, 37, 3)
    converted = load_dataset(str(tmp_path / "npy"))
    assert converted.image_shape == (45, 37, 3)
    direct = load_dataset(str(pets))
    np.testing.assert_array_equal(converted.test.images, direct.test.images)  # the same pixels either way


def test_an_rgba_image_loses_its_alpha_and_the_summary_says_so(tmp_path):
    pets = write_folder(tmp_path / "pets")
    rgba = np.full((45, 37, 4), 200, np.uint8)
    rgba[..., 3] = 0  # fully transparent: its colour is kept, not composited
    Image.fromarray(rgba).save(pets / "train" / "cat" / "clear.png")
    data = load_dataset(str(pets))
    assert data.image_shape == (45, 37, 3)
    assert "the alpha channel of 1 image(s) dropped" in data.source
    train = np.concatenate([data.train.images, data.validation.images]).reshape(-1, 45, 37, 3)
    assert (train == 200).all(axis=(1, 2, 3)).sum() == 1  # the RGBA image, its colour as it was



@pytest.mark.parametrize("damage, expect", [
    ("mixed_sizes", "all images must have the same size"),
    ("corrupt_jpeg", "not a readable image"),
    ("empty", "no images"),
    ("nothing", "not a dataset folder: it is empty"),
    ("class_mismatch", "hold different class subfolders (cat, dog and cat, wolf)"),
])
def test_bad_image_folders_get_one_line_before_any_work(tmp_path, capsys, damage, expect):
    pets = write_folder(tmp_path / "pets")
    if damage == "mixed_sizes":
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(pets / "train" / "dog" / "odd.png")
    elif damage == "corrupt_jpeg":
        (pets / "train" / "cat" / "1.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    elif damage == "empty":
        for f in (pets / "test").rglob("*.*"):
            f.unlink()
    elif damage == "nothing":
        shutil.rmtree(pets)
        pets.mkdir()
    else:
        (pets / "test" / "dog").rename(pets / "test" / "wolf")
    for argv in (["reproduce", "stacked", "--dataset", str(pets), "--out", str(tmp_path / "run"), *QUICK],
                 ["data", "convert", str(pets), str(tmp_path / "npy")]):
        assert main(argv) == 2
        line = one_line(capsys)
        assert expect in line, line
    assert not (tmp_path / "run" / "stacked").exists() and not (tmp_path / "npy").exists()


def test_the_offending_file_is_named(tmp_path):
    pets = write_folder(tmp_path / "pets")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(pets / "train" / "dog" / "odd.png")
    with pytest.raises(DataError, match=r"odd\.png: a 10x10 image, but 0\.png is 37x45"):
        load_dataset(str(pets))


def test_the_convolutional_autoencoder_reads_colour_channels_last():
    import torch

    from aekit.models.conv import ConvAutoencoder, ConvAutoencoderConfig
    from aekit.runtime import generator

    model = ConvAutoencoder(ConvAutoencoderConfig(image_shape=(9, 7, 3), channels=(4, 8), code_size=5), generator(0))
    with torch.no_grad():
        model.features[0].weight[:, :2] = 0  # the first convolution sees the blue channel alone
    x = torch.rand(2, 9, 7, 3)
    red, blue = x.clone(), x.clone()
    red[..., 0] += 0.5
    blue[..., 2] += 0.5
    with torch.inference_mode():
        codes = [model.encode(v.reshape(2, -1)) for v in (x, red, blue)]
        assert torch.equal(codes[0], codes[1]) and not torch.equal(codes[0], codes[2])
        assert model(x.reshape(2, -1)).shape == (2, 9 * 7 * 3)


def test_a_colour_folder_trains_the_convolutional_autoencoder_and_exports_it(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pets = write_folder(tmp_path / "pets")
    run = tmp_path / "run"
    assert main(["reproduce", "stacked", "--dataset", str(pets), "--out", str(run), *QUICK,
                 "--set", "architecture=conv", "--set", "hidden_sizes=8,16,12"]) == 0
    pixels = load_dataset(str(pets)).test.images[:5]  # (5, 45 * 37 * 3) uint8, channels last
    np.save(tmp_path / "x.npy", pixels.reshape(5, 45, 37, 3))
    assert main(["encode", str(run / "stacked"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "c.npy")]) == 0
    assert main(["export", str(run / "stacked"), "--onnx", str(tmp_path / "e.onnx")]) == 0
    got = ort.InferenceSession(str(tmp_path / "e.onnx")).run(None, {"x": pixels})[0]
    np.testing.assert_allclose(got, np.load(tmp_path / "c.npy"), atol=1e-5)


def test_image_size_resizes_a_folder_of_mixed_sizes(tmp_path, capsys):
    pets = write_folder(tmp_path / "pets")
    Image.fromarray(np.zeros((10, 14), np.uint8)).save(pets / "train" / "dog" / "odd.png")  # 14 wide, 10 high
    with pytest.raises(DataError, match="pass --image-size WxH to resize them"):
        load_dataset(str(pets))
    data = load_dataset(str(pets), image_size=(16, 12))
    assert data.image_shape == (12, 16, 3) and "resized to 16x12" in data.source
    assert main(["reproduce", "stacked", "--dataset", str(pets), "--image-size", "16x12", "--out",
                 str(tmp_path / "run"), *QUICK]) == 0
    assert aekit.load(tmp_path / "run" / "stacked").config.input_size == 12 * 16 * 3
    assert main(["data", "convert", str(pets), str(tmp_path / "npy"), "--image-size", "16x12"]) == 0
    assert np.load(tmp_path / "npy" / "x_test.npy").shape == (12, 12, 16, 3)
    capsys.readouterr()
    for argv in (["reproduce", "stacked", "--dataset", str(pets), "--image-size", "16by12", "--out", str(tmp_path / "r2")],
                 ["reproduce", "stacked", "--dataset", "mnist-5k", "--image-size", "16x12", "--out", str(tmp_path / "r3")]):
        assert main(argv) == 2
        assert "--image-size" in one_line(capsys)
