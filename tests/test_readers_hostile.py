"""Hostile input (issue 10, parts C and D): every reader of outside data loads it or raises aekit's own
error, one line naming the file, what was expected and what to do; never a raw Python exception."""

import gzip
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_arrays

import aekit
from aekit.cli import main
from aekit.data.arrays import as_uint8_images
from aekit.data.catalog import load_custom, load_dataset
from aekit.data.idx import encode_idx, parse_idx, read_idx, write_idx
from aekit.data.inputs import load_input
from aekit.errors import ConfigError, DataError
from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
from aekit.runner import RunSpec, build_configs, read_toml


def _cli_fails(argv, capsys, *needles):
    """The command exits 2 with one line on stderr that holds every needle."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    """A small untrained StackedAutoencoder checkpoint (784 -> 8 -> 4)."""
    StackedAutoencoder(AutoencoderConfig(hidden_sizes=(8, 4))).save(tmp_path / "model")
    return tmp_path / "model"


@pytest.fixture
def images_npy(tmp_path) -> Path:
    np.save(tmp_path / "x.npy", tiny_arrays(n_train=4, n_test=4)[2])
    return tmp_path / "x.npy"


# ---- C9: truncated .npz / .npy ----

@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.99])
def test_truncated_npz_dataset_is_a_data_error(tiny_npz, tmp_path, keep):
    data = tiny_npz.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: int(len(data) * keep)])
    for read in (lambda: load_custom(cut), lambda: load_dataset(str(cut))):
        with pytest.raises(DataError, match=r"cut\.npz: not a readable \.npz archive .*truncated"):
            read()


def test_truncated_npz_dataset_in_the_cli(tiny_npz, tmp_path, capsys):
    cut = tmp_path / "cut.npz"
    cut.write_bytes(tiny_npz.read_bytes()[:1000])
    _cli_fails(["reproduce", "stacked", "--dataset", cut, "--out", tmp_path / "run", "--no-progress"], capsys,
               "cut.npz: not a readable .npz archive")


def test_truncated_npz_input(checkpoint, tmp_path, capsys):
    np.savez(tmp_path / "x.npz", x=tiny_arrays(n_train=4, n_test=4)[2])
    cut = tmp_path / "cut.npz"
    cut.write_bytes((tmp_path / "x.npz").read_bytes()[:-40])
    with pytest.raises(DataError, match=r"cut\.npz: not a readable \.npz archive"):
        load_input(cut)
    for command in ("encode", "reconstruct", "score"):
        _cli_fails([command, checkpoint, cut, "-o", tmp_path / f"out-{command}"], capsys, "cut.npz")
        assert not (tmp_path / f"out-{command}").exists()


def test_npz_member_with_truncated_data(tmp_path):
    """The archive is whole, but the array inside claims more bytes than the member holds."""
    import zipfile

    np.save(tmp_path / "a.npy", np.zeros((10, 16), np.uint8))
    with zipfile.ZipFile(tmp_path / "x.npz", "w") as z:
        z.writestr("x_test.npy", (tmp_path / "a.npy").read_bytes()[:-20])
    with pytest.raises(DataError, match=r"x\.npz\[x_test\]: truncated \.npy array: its header says uint8 \(10, 16\)"):
        load_input(tmp_path / "x.npz")


def test_npz_that_is_really_npy_and_npy_that_is_really_npz(images_npy, tmp_path):
    (tmp_path / "y.npz").write_bytes(images_npy.read_bytes())
    with pytest.raises(DataError, match=r"y\.npz: not a readable \.npz archive"):
        load_input(tmp_path / "y.npz")
    np.savez(tmp_path / "z.npz", x=np.zeros((2, 4)))
    (tmp_path / "z.npy").write_bytes((tmp_path / "z.npz").read_bytes())
    with pytest.raises(DataError, match=r"z\.npy: not a NumPy \.npy array \(it does not start with \\x93NUMPY\)"):
        load_input(tmp_path / "z.npy")


@pytest.mark.parametrize("keep, match", [
    (5, r"not a NumPy \.npy array"),
    (60, r"damaged \.npy array \(EOF"),
    (300, r"truncated \.npy array: its header says uint8 \(4, 28, 28\), 3264 bytes, but there are 300"),
])
def test_truncated_npy_input(images_npy, tmp_path, keep, match):
    cut = tmp_path / "cut.npy"
    cut.write_bytes(images_npy.read_bytes()[:keep])
    with pytest.raises(DataError, match=match):
        load_input(cut)


def test_npy_header_claiming_huge_shape_is_refused_before_allocating(tmp_path):
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 784), }"
    header += b" " * (117 - len(header)) + b"\n"
    (tmp_path / "big.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64)
    with pytest.raises(DataError, match=r"big\.npy: truncated \.npy array: its header says float64 \(1000000000000, 784\)"):
        load_input(tmp_path / "big.npy")


def test_npz_member_compressed_in_a_way_numpy_never_writes(tmp_path):
    import zipfile

    np.save(tmp_path / "a.npy", np.zeros((2, 16), np.uint8))
    with zipfile.ZipFile(tmp_path / "x.npz", "w", compression=zipfile.ZIP_BZIP2) as z:
        z.write(tmp_path / "a.npy", "x.npy")
    with pytest.raises(DataError, match=r"x\.npz\[x\]: compression method 12 is not one numpy\.savez writes"):
        load_input(tmp_path / "x.npz")


def test_png_whose_header_claims_a_huge_image(tmp_path):
    """Found by benchmarks/fuzz.py: PIL would allocate the claimed 64 MB before failing."""
    import zlib

    from PIL import Image

    (tmp_path / "png").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "png" / "a.png")
    data = bytearray((tmp_path / "png" / "a.png").read_bytes())
    data[16:24] = struct.pack(">II", 8000, 8000)  # IHDR width and height: 64 million pixels
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    (tmp_path / "png" / "a.png").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"a\.png: a 8000x8000 image is larger than aekit reads \(16,777,216 pixels\)"):
        load_input(tmp_path / "png")


@pytest.mark.parametrize("header", [
    b"{'descr': '<f4', 'fortran_order': False, b'shape': (2, 16), }",  # found by benchmarks/fuzz.py: a TypeError
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 16), '\\c': 1}",  # an escape warning
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 16 ",  # tokenize.TokenError
])
def test_npy_header_that_numpy_cannot_parse(tmp_path, header):
    import warnings

    header += b" " * (117 - len(header)) + b"\n"
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 128)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=r"x\.npy: damaged \.npy array \(.*\); re-create or re-copy the file"):
            load_input(tmp_path / "x.npy")


def test_npy_with_a_deprecated_dtype_alias_is_refused_without_a_warning(tmp_path):
    """Found by benchmarks/fuzz.py: numpy warns about the header's 'a' alias when it reads the array."""
    import warnings

    header = b"{'descr': '|a2', 'fortran_order': False, 'shape': (2, 2), }"
    header += b" " * (117 - len(header)) + b"\n"
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=r"x\.npy: expected a non-empty numeric array .* got \|S2 \(2, 2\)"):
            load_input(tmp_path / "x.npy")


# ---- C12: damaged checkpoints ----

def _edit_config(checkpoint: Path, edit) -> None:
    meta = json.loads((checkpoint / "config.json").read_text())
    edit(meta)
    (checkpoint / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.pop("kind"), r"config\.json: 'kind' \(the saved model's class.*\) is missing"),
    (lambda m: m.update(kind="Transformer"), r"config\.json: cannot rebuild a Transformer.*model kind 'Transformer' is unknown"),
    (lambda m: m.update(kind=7), r"config\.json: 'kind' .* is 7; expected a string"),
    (lambda m: m["config"].update(colour="blue"), r"config\.json: cannot rebuild a StackedAutoencoder from its saved "
                                                   r"config \(.*unexpected keyword argument 'colour'\)"),
    (lambda m: m["config"].update(hidden_sizes=[8, 5]),
     r"model\.safetensors: weights do not fit the saved config: encoder\.2\.weight has shape \(4, 8\) in the file, "
     r"the config needs \(5, 8\)"),
    (lambda m: m["config"].update(hidden_sizes=[8]), r"model\.safetensors: weights do not fit the saved config: "
                                                      r"the file has unexpected decoder\.2\.bias, decoder\.2\.weight, encoder\.2\.bias \.\.\."),
    (lambda m: m["config"].update(activation="swish"), r"cannot rebuild a StackedAutoencoder.*activation='swish' is not allowed"),
    (lambda m: m.update(config=[1, 2]), r"config\.json: 'config' \(the model's settings\) is \[1, 2\]; expected a JSON object"),
    (lambda m: m.update(version="1"), r"config\.json: 'version' is '1'; expected an integer"),
    (lambda m: m.update(extra=[]), r"config\.json: 'extra' is list; expected a JSON object"),
])
def test_damaged_checkpoint_config(checkpoint, images_npy, tmp_path, capsys, edit, match):
    _edit_config(checkpoint, edit)
    with pytest.raises(DataError, match=match) as info:
        aekit.load(checkpoint)
    assert str(checkpoint) in str(info.value) and "the checkpoint is damaged" in str(info.value)
    err = _cli_fails(["encode", checkpoint, images_npy, "-o", tmp_path / "codes.npy"], capsys, str(checkpoint))
    assert re.search(match, err), err
    assert not (tmp_path / "codes.npy").exists()


def test_checkpoint_with_nan_weights(checkpoint):
    from safetensors.torch import load_file, save_file

    tensors = load_file(checkpoint / "model.safetensors")
    tensors["decoder.0.bias"][3] = float("nan")
    save_file(tensors, checkpoint / "model.safetensors")
    with pytest.raises(DataError, match=r"model\.safetensors: decoder\.0\.bias holds NaN or infinite values"):
        aekit.load(checkpoint)


def test_checkpoint_config_asking_for_huge_layers_allocates_nothing(checkpoint):
    _edit_config(checkpoint, lambda m: m["config"].update(hidden_sizes=[10**7, 10**7]))
    with pytest.raises(DataError, match=r"encoder\.0\.weight has shape \(8, 784\) in the file, the config needs \(10000000, 784\)"):
        aekit.load(checkpoint)


@pytest.fixture(scope="module")
def estimator_checkpoint(tmp_path_factory) -> Path:
    from aekit.estimators import AutoencoderTransformer

    folder = tmp_path_factory.mktemp("est") / "est"
    x = np.random.default_rng(0).random((32, 16)).astype(np.float32)
    AutoencoderTransformer(hidden_sizes=(8, 4), max_epochs=1, random_state=0, device="cpu").fit(x).save(folder)
    return folder


def _copy(folder: Path, to: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, to))


@pytest.mark.parametrize("damage, match", [
    ("no params", r"est: config\.json lacks extra\.params, the estimator's parameters; the checkpoint is damaged"),
    ("unknown param", r"est: extra\.params has unknown keys \['colour'\]"),
    ("bad param", r"est: extra\.params: .*hidden_sizes"),
    ("no data_min", r"est: model\.safetensors lacks extra\.data_min, the input scaling"),
    ("short data_range", r"est: extra\.data_range must be 16 finite numbers above 0; found float32 \(3,\)"),
    ("bad scaling", r"est: extra\.scaling is 'log'"),
])
def test_damaged_estimator_checkpoint(estimator_checkpoint, tmp_path, capsys, damage, match):
    from safetensors.torch import load_file, save_file

    folder = _copy(estimator_checkpoint, tmp_path / "est")
    if damage == "no params":
        _edit_config(folder, lambda m: m["extra"].pop("params"))
    elif damage == "unknown param":
        _edit_config(folder, lambda m: m["extra"]["params"].update(colour="blue"))
    elif damage == "bad param":
        _edit_config(folder, lambda m: m["extra"]["params"].update(hidden_sizes=["8", 4]))
    elif damage == "bad scaling":
        _edit_config(folder, lambda m: m["extra"].update(scaling="log"))
    else:
        tensors = load_file(folder / "model.safetensors")
        if damage == "no data_min":
            del tensors["extra.data_min"]
        else:
            tensors["extra.data_range"] = tensors["extra.data_range"][:3].clone()
        save_file(tensors, folder / "model.safetensors")
    with pytest.raises(DataError, match=match):
        aekit.load(folder)
    np.save(tmp_path / "x.npy", np.zeros((2, 16), np.float32))
    _cli_fails(["encode", folder, tmp_path / "x.npy", "-o", tmp_path / "codes.npy"], capsys, str(folder))


@pytest.fixture(scope="module")
def classifier_checkpoint(tmp_path_factory) -> Path:
    from aekit.estimators import AutoencoderClassifier

    folder = tmp_path_factory.mktemp("clf") / "clf"
    x = np.random.default_rng(0).random((32, 16)).astype(np.float32)
    AutoencoderClassifier(hidden_sizes=(8, 4), pretrain_epochs=1, finetune_epochs=1, random_state=0, device="cpu") \
        .fit(x, np.arange(32) % 3).save(folder)
    return folder


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["extra"].update(classes=[0, 1]), r"clf: 3 class outputs but classes of shape \(2,\)"),
    (lambda m: m["extra"].pop("classes"), r"clf: the checkpoint holds neither extra\.classes nor a list"),
    (lambda m: m["config"].update(autoencoder_kind="VAE"), r"clf: config\.autoencoder_kind is 'VAE'"),
    (lambda m: m["extra"].update(n_features_in=15), r"clf: extra\.data_min must be 15 finite numbers; found float32 \(16,\)"),
])
def test_damaged_classifier_checkpoint(classifier_checkpoint, tmp_path, edit, match):
    from safetensors.torch import load_file, save_file

    folder = _copy(classifier_checkpoint, tmp_path / "clf")
    tensors = load_file(folder / "model.safetensors")
    tensors.pop("extra.classes", None)  # so that config.json's classes count
    save_file(tensors, folder / "model.safetensors")
    assert list(aekit.load(folder).classes_) == [0, 1, 2]
    _edit_config(folder, edit)
    with pytest.raises(DataError, match=match):
        aekit.load(folder)


def test_undamaged_estimator_checkpoint_still_loads(estimator_checkpoint):
    est = aekit.load(estimator_checkpoint)
    assert est.transform(np.zeros((2, 16), np.float32)).shape == (2, 4)


# ---- C13: unreadable files, folders where files belong, bytes that are not UTF-8 ----

def test_unreadable_idx_file(tmp_path, monkeypatch):
    write_idx(tmp_path / "x-idx3-ubyte", np.zeros((2, 3, 3), np.uint8))
    real = Path.read_bytes

    def denied(self):
        if self.name == "x-idx3-ubyte":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(DataError, match=r"x-idx3-ubyte: cannot read the file \(Permission denied\); check that it is a readable file"):
        read_idx(tmp_path / "x-idx3-ubyte")


def test_idx_path_that_is_a_folder(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").mkdir()
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: cannot read the file"):
        read_idx(tmp_path / "train-images-idx3-ubyte")


def test_config_that_is_a_folder(tmp_path, capsys):
    (tmp_path / "run.toml").mkdir()
    _cli_fails(["train", "--config", tmp_path / "run.toml"], capsys, "run.toml: is a folder; expected a TOML file")


def test_config_that_is_not_utf8(tmp_path, capsys):
    (tmp_path / "run.toml").write_bytes(b'program = "stacked"\ndataset = "caf\xe9"\n')
    _cli_fails(["train", "--config", tmp_path / "run.toml"], capsys,
               "run.toml: not UTF-8 text (byte 0xe9 at offset 34); save the TOML file as UTF-8")


@pytest.mark.parametrize("command, option", [("encode", "-o"), ("reconstruct", "-o"), ("score", "-o"), ("score", "--figure")])
def test_output_that_is_an_existing_folder(checkpoint, images_npy, tmp_path, capsys, command, option):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    _cli_fails([command, checkpoint, images_npy, option, tmp_path / "out"], capsys, "out is an existing folder")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_output_below_a_file(checkpoint, images_npy, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    _cli_fails(["encode", checkpoint, images_npy, "-o", tmp_path / "file" / "codes.npy"], capsys, "file is a file, not a folder")


# ---- D14: NaN in float images ----

def test_nan_images_name_the_count_and_first_row():
    x = np.full((6, 4), 0.5, np.float32)
    x[3, 1] = x[5, 0] = np.nan
    x[4, 2] = np.inf
    with pytest.raises(DataError, match=r"train images: 3 NaN or infinite values, the first in row 3; float images must lie in \[0, 1\]"):
        as_uint8_images(x, "train images")
    with pytest.raises(DataError, match=r"found min -1, max 0\.5"):
        as_uint8_images(np.where(np.isfinite(x), x, -1), "train images")


def test_nan_in_an_npz_dataset_names_the_file(tmp_path):
    x = np.full((20, 16), 0.5, np.float32)
    x[7, 2] = np.nan
    np.savez(tmp_path / "d.npz", x_train=x, x_test=np.zeros((3, 16), np.float32))
    with pytest.raises(DataError, match=r"d\.npz: d training images: 1 NaN or infinite values, the first in row 7"):
        load_custom(tmp_path / "d.npz")


def test_nan_in_an_input_names_the_row(tmp_path):
    x = np.zeros((5, 16), np.float32)
    x[2, 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(DataError, match=r"x\.npy: 1 NaN or infinite values, the first in row 2"):
        load_input(tmp_path / "x.npy")


# ---- D15: IDX headers whose sizes overflow ----

def test_idx_header_whose_size_overflows_int64():
    data = struct.pack(">HBB3I", 0, 0x0D, 3, 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"\0" * 100
    with pytest.raises(DataError) as info:
        parse_idx(data, "x.idx")
    msg = str(info.value)
    assert "x.idx: IDX file truncated: header says shape (4294967295, 4294967295, 4294967295) of float32" in msg
    assert f"({16 + 4 * (2**32 - 1) ** 3} bytes), file has 116 bytes" in msg and not re.search(r"-\d", msg)


def test_idx_header_of_an_empty_array_numpy_cannot_index():
    """Found by benchmarks/fuzz.py: 0 bytes of data match the header, but NumPy refuses the shape."""
    data = struct.pack(">HBB4I", 0, 0x08, 4, 0, 2**32 - 1, 2**32 - 1, 2**32 - 1)
    with pytest.raises(DataError, match=r"x\.idx: IDX header shape \(0, 4294967295, 4294967295, 4294967295\) is not an "
                                        r"array NumPy can hold"):
        parse_idx(data, "x.idx")


def test_gzip_idx_header_claiming_more_than_the_file_can_hold(tmp_path):
    data = struct.pack(">HBB2I", 0, 0x08, 2, 60000, 60000) + b"\0" * 1000
    (tmp_path / "x-idx2-ubyte.gz").write_bytes(gzip.compress(data))
    with pytest.raises(DataError, match=r"x-idx2-ubyte\.gz: damaged IDX header: it claims 3600000012 bytes, more than a "
                                        r"gzip file of \d+ bytes can hold"):
        read_idx(tmp_path / "x-idx2-ubyte.gz")


def test_gzip_idx_with_trailing_data_reads_only_one_byte_past_the_header(tmp_path):
    data = encode_idx(np.zeros((4, 5), np.uint8)) + b"\0" * 100000
    (tmp_path / "x.gz").write_bytes(gzip.compress(data))
    with pytest.raises(DataError, match=r"IDX file has trailing bytes: header says shape \(4, 5\) of uint8 \(32 bytes\), file has 33 bytes"):
        read_idx(tmp_path / "x.gz")


def test_gzip_idx_round_trip_still_reads(tmp_path):
    x = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    write_idx(tmp_path / "x.gz", x)
    np.testing.assert_array_equal(read_idx(tmp_path / "x.gz"), x)


# ---- D16: where an unknown config key came from ----

def test_unknown_toml_config_key_names_the_file_table(tmp_path, capsys):
    (tmp_path / "run.toml").write_text('program = "stacked"\n[config]\ntrain_epochs = 3\n')
    spec = read_toml(tmp_path / "run.toml")
    with pytest.raises(ConfigError, match=r"run\.toml \[config\] train_epochs: unknown key; did you mean 'train.epochs'\?"):
        build_configs(spec)
    err = _cli_fails(["train", "--config", tmp_path / "run.toml"], capsys, "run.toml [config] train_epochs: unknown key")
    assert "--set" not in err


def test_bad_toml_config_value_names_the_file_table(tmp_path):
    (tmp_path / "run.toml").write_text('program = "stacked"\n[config]\nbatch_size = 0\n')
    with pytest.raises(ConfigError, match=r"run\.toml \[config\] batch_size=0 must be an int in the range \[1, inf\)"):
        build_configs(read_toml(tmp_path / "run.toml"))


def test_set_keys_still_say_set():
    with pytest.raises(ConfigError, match=r"^--set training_epoch: unknown key"):
        build_configs(RunSpec(program="stacked", config={"training_epoch": "3"}))


def test_config_source_is_not_a_toml_key(tmp_path):
    (tmp_path / "run.toml").write_text('config_source = "x"\n')
    with pytest.raises(ConfigError, match=r"run\.toml: config_source: unknown key"):
        read_toml(tmp_path / "run.toml")


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_seed_out_of_range(seed):
    with pytest.raises(ConfigError, match=rf"seed={seed} must be an integer from 0 to 2\*\*32 - 1"):
        build_configs(RunSpec(program="stacked", seed=seed))
