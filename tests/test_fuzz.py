"""Property-based fuzzing of every reader of outside data (issue 10, part E).

The property: whatever the bytes or values, a reader either loads them or raises :class:`AekitError`
(whose message the CLI prints as one line); never another exception. Inputs are valid seed files
mutated (bit flips, truncation, byte edits, inserted bytes, header edits) or plain random bytes.
``benchmarks/fuzz.py`` runs the same readers on >= 100,000 cases; this file keeps to a few hundred.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aekit
from aekit.data.catalog import load_custom
from aekit.data.idx import encode_idx, parse_idx, read_idx
from aekit.data.inputs import load_input
from aekit.errors import AekitError
from aekit.experiments import presets
from aekit.experiments.overrides import applies, apply_overrides, parse_overrides
from aekit.experiments.recipe import keys as recipe_keys
from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
from aekit.runner import RunSpec, build_configs, read_toml

# Floats are drawn without subnormals: aekit's runtime setup (run by conftest) flushes them to zero.


def fuzz_settings(n: int):
    # No example database: each run draws afresh (a failure prints the seed that reproduces it).
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def loads_or_aekit_error(read) -> None:
    """The property itself: ``read()`` returns, or raises AekitError; anything else fails the test."""
    try:
        read()
    except AekitError as e:
        assert str(e) and "\n" not in str(e), repr(str(e))  # one line for the CLI


@st.composite
def mutated(draw, seed: bytes, header: int = 64):
    """``seed`` with one to four edits: bit flips, byte edits (anywhere, or in the first ``header`` bytes),
    truncation, inserted bytes; or, one time in six, random bytes."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=2 * len(seed)))
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        op = draw(st.sampled_from(("flip", "byte", "header", "truncate", "insert")))
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[i] = draw(st.integers(0, 255))
        elif op == "header":
            data[i % min(header, len(data))] = draw(st.sampled_from((0x00, 0x01, 0x7F, 0x80, 0xFF)))
        elif op == "truncate":
            del data[i:]
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# ---- IDX, raw and gzipped ----

IDX_SEEDS = [encode_idx(a) for a in (np.arange(48, dtype=np.uint8).reshape(3, 4, 4), np.arange(5, dtype=np.uint8),
                                     np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3), np.arange(4, dtype=">i2"))]


@fuzz_settings(150)
@given(data=st.sampled_from(IDX_SEEDS).flatmap(mutated))
def test_idx_bytes(data):
    loads_or_aekit_error(lambda: parse_idx(data, "x.idx"))


@fuzz_settings(80)
@given(data=st.sampled_from(IDX_SEEDS).flatmap(mutated))
def test_idx_files_raw_and_gzip(work, data):
    """Mutated content as a raw file, and gzipped (a valid gzip stream of a damaged IDX)."""
    (work / "raw-idx3-ubyte").write_bytes(data)
    loads_or_aekit_error(lambda: read_idx(work / "raw-idx3-ubyte"))
    (work / "x-idx3-ubyte.gz").write_bytes(gzip.compress(data, mtime=0))
    loads_or_aekit_error(lambda: read_idx(work / "x-idx3-ubyte.gz", ndim=3))


@fuzz_settings(80)
@given(data=st.sampled_from([gzip.compress(s, mtime=0) for s in IDX_SEEDS]).flatmap(mutated))
def test_idx_gzip_bytes(work, data):
    (work / "m-idx3-ubyte.gz").write_bytes(data)
    loads_or_aekit_error(lambda: read_idx(work / "m-idx3-ubyte.gz"))


# ---- .npy and .npz, as INPUT and as --dataset ----

def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npz(compressed: bool, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


NPY_SEEDS = [_npy(np.arange(48, dtype=np.uint8).reshape(3, 16)), _npy(np.linspace(0, 1, 32, dtype=np.float32).reshape(2, 16)),
             _npy(np.zeros((2, 2, 2), ">f8"))]
# Labels stay uint8: int64 labels with a flipped high bit ask from_arrays for 2**62 class names (reported).
NPZ_ARRAYS = dict(x_train=np.arange(320, dtype=np.uint8).reshape(20, 16), y_train=np.arange(20, dtype=np.uint8) % 3,
                  x_test=np.arange(80, dtype=np.uint8).reshape(5, 16), y_test=np.arange(5, dtype=np.uint8) % 3)
NPZ_SEEDS = [_npz(False, **NPZ_ARRAYS), _npz(True, **NPZ_ARRAYS), _npz(False, x=np.linspace(0, 1, 32).reshape(2, 16))]


@fuzz_settings(100)
@given(data=st.sampled_from(NPY_SEEDS).flatmap(mutated))
def test_npy_input(work, data):
    (work / "x.npy").write_bytes(data)
    loads_or_aekit_error(lambda: load_input(work / "x.npy"))


@fuzz_settings(150)
@given(data=st.sampled_from(NPZ_SEEDS).flatmap(lambda s: mutated(s, header=128)))
def test_npz_input_and_dataset(work, data):
    (work / "x.npz").write_bytes(data)
    loads_or_aekit_error(lambda: load_input(work / "x.npz"))
    loads_or_aekit_error(lambda: load_custom(work / "x.npz"))


@fuzz_settings(60)
@given(member=st.sampled_from(NPY_SEEDS).flatmap(mutated), name=st.sampled_from(["x.npy", "x", "x_test.npy", "../x.npy"]))
def test_npz_with_a_mutated_member(work, member, name):
    """A whole archive whose member is damaged (zip CRCs would catch a flipped archive; not this)."""
    with zipfile.ZipFile(work / "m.npz", "w") as z:
        z.writestr(name, member)
    loads_or_aekit_error(lambda: load_input(work / "m.npz"))


# ---- folders of images: PNG and JPEG, as INPUT and as a --dataset with train/ and test/ ----

def _image(arr, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


_png = _image
PNG_SEEDS = [_png(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16), _png(np.full((4, 4, 3), 200, np.uint8))]
JPEG_SEEDS = [_image(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4, "JPEG"),
              _image(np.full((8, 8, 3), 90, np.uint8), "JPEG")]


@fuzz_settings(60)
@given(data=st.sampled_from(PNG_SEEDS).flatmap(mutated))
def test_png_folder(work, data):
    folder = work / "png"
    folder.mkdir(exist_ok=True)
    (folder / "000.png").write_bytes(PNG_SEEDS[0])
    (folder / "001.png").write_bytes(data)
    loads_or_aekit_error(lambda: load_input(folder))


@fuzz_settings(60)
@given(data=st.sampled_from(JPEG_SEEDS).flatmap(mutated), split=st.sampled_from(["train", "test"]))
def test_image_folder_dataset(work, data, split):
    folder = work / "imgds"
    for s in ("train", "test"):
        (folder / s / "a").mkdir(parents=True, exist_ok=True)
        (folder / s / "a" / "0.jpg").write_bytes(JPEG_SEEDS[0])
    (folder / split / "a" / "1.jpg").write_bytes(data)
    loads_or_aekit_error(lambda: load_custom(folder))


# ---- checkpoints: a fuzzed config.json beside valid or fuzzed weights ----

@pytest.fixture(scope="module")
def seed_checkpoints(tmp_path_factory):
    """(config.json text, model.safetensors bytes) of a bare model and of both fitted estimators."""
    from aekit.estimators import AutoencoderClassifier, AutoencoderTransformer

    root = tmp_path_factory.mktemp("seeds")
    StackedAutoencoder(AutoencoderConfig(input_size=16, hidden_sizes=(4, 2))).save(root / "model")
    x = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    AutoencoderTransformer(hidden_sizes=(4, 2), max_epochs=1, random_state=0, device="cpu").fit(x).save(root / "est")
    AutoencoderClassifier(hidden_sizes=(4, 2), pretrain_epochs=1, finetune_epochs=1, random_state=0, device="cpu") \
        .fit(x, np.arange(16) % 3).save(root / "clf")
    return [((root / d / "config.json").read_text(), (root / d / "model.safetensors").read_bytes())
            for d in ("model", "est", "clf")]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_subnormal=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=6)


@st.composite
def fuzzed_meta(draw, text: str):
    """A config.json: one to three fields (top level, config, extra, extra.params) replaced or deleted."""
    meta = json.loads(text)
    for _ in range(draw(st.integers(1, 3))):
        tables = [meta] + [v for v in (meta.get("config"), meta.get("extra"),
                                       (meta.get("extra") or {}).get("params") if isinstance(meta.get("extra"), dict) else None)
                           if isinstance(v, dict)]
        table = draw(st.sampled_from(tables))
        key = draw(st.sampled_from(sorted(table)) | st.text(max_size=8)) if table else draw(st.text(max_size=8))
        if draw(st.booleans()) and key in table:
            del table[key]
        else:
            table[key] = draw(json_values)
    return json.dumps(meta)


@fuzz_settings(150)
@given(which=st.integers(0, 2), how=st.sampled_from(["meta", "bytes", "weights"]), seed=st.data())
def test_checkpoint(work, seed_checkpoints, which, how, seed):
    config, weights = seed_checkpoints[which]
    if how == "meta":
        config = seed.draw(fuzzed_meta(config))
    elif how == "bytes":
        config = seed.draw(mutated(config.encode(), header=len(config))).decode("utf-8", "surrogateescape")
    else:
        weights = seed.draw(mutated(weights, header=200))
    folder = work / "ckpt"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(config, encoding="utf-8", errors="surrogateescape")
    (folder / "model.safetensors").write_bytes(weights)
    loads_or_aekit_error(lambda: aekit.load(folder))


# ---- TOML runs and --set values ----

STACKED, PRETRAIN = presets.get_preset("stacked"), presets.get_preset("pretrain")
FIELDS = sorted(set(recipe_keys(STACKED)) | set(recipe_keys(PRETRAIN)))
RUN_KEYS = ["program", "preset", "dataset", "data_dir", "seed", "device", "out", "epochs_scale", "code_size",
            "compile", "tensorboard", "progress"]
toml_scalars = (st.integers(-(2**63), 2**63 - 1) | st.floats(allow_subnormal=False) | st.booleans()
                | st.text(max_size=12) | st.sampled_from(["stacked", "pretrain", "all", "seed", "modern", "mlp", "conv"]))
toml_values = toml_scalars | st.lists(st.integers(-5, 2**40) | st.floats(allow_subnormal=False), max_size=4)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(repr(value), repr(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string, escapes included
    return str(value)


VALID_TOML = 'program = "stacked"\ndataset = "x.npz"\nseed = 3\n\n[config]\nepochs = 2\nhidden_sizes = [64, 16]\n'


@fuzz_settings(150)
@given(top=st.dictionaries(st.sampled_from(RUN_KEYS) | st.text(max_size=6), toml_values, max_size=3),
       config=st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), toml_values, max_size=3),
       raw=st.none() | mutated(VALID_TOML.encode(), header=len(VALID_TOML)))
def test_toml_run(work, top, config, raw):
    if raw is None:
        lines = [f"{json.dumps(k)} = {_toml(v)}" for k, v in top.items()]
        lines += ["[config]"] + [f"{json.dumps(k)} = {_toml(v)}" for k, v in config.items()]
        raw = "\n".join(lines).encode()
    (work / "run.toml").write_bytes(raw)
    loads_or_aekit_error(lambda: build_configs(read_toml(work / "run.toml")))


set_text = st.text(alphabet="0123456789-+.,eE[]() xinfatrueFNlsg_", max_size=12)


@fuzz_settings(200)
@given(pairs=st.lists(st.tuples(st.sampled_from(FIELDS) | st.text(max_size=6), set_text | st.text(max_size=8)), max_size=3),
       raw=st.lists(st.text(max_size=10), max_size=2))
def test_set_overrides(pairs, raw):
    argv = [f"{k}={v}" for k, v in pairs] + raw

    def apply():
        overrides = parse_overrides(argv)
        for config in (STACKED, PRETRAIN):
            apply_overrides(config, {k: v for k, v in overrides.items() if applies(config, k)})
        build_configs(RunSpec(program="all", config=overrides))

    loads_or_aekit_error(apply)
