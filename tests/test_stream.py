"""Datasets bigger than memory: the .npy folder format, its lazy training view, streamed batches, and
``aekit data convert``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_arrays, write_tiny_idx

from aekit.cli import main
from aekit.data.batches import DeviceBatches, iterate_in_chunks, make_batches
from aekit.data.catalog import load_dataset
from aekit.data.rows import RowView
from aekit.data.stream import StreamBatches
from aekit.errors import DataError


def numbered_folder(folder: Path, n: int = 3000, labels: bool = True) -> Path:
    """Images whose first 4 bytes spell their row number (so a batch says which rows it holds)."""
    folder.mkdir(parents=True)
    x = np.random.default_rng(0).integers(0, 255, size=(n, 8, 8), dtype=np.uint8)
    x.reshape(n, -1)[:, :4] = np.arange(n, dtype="<u4").view(np.uint8).reshape(n, 4)
    np.save(folder / "x_train.npy", x)
    np.save(folder / "x_test.npy", x[:50])
    if labels:
        np.save(folder / "y_train.npy", np.arange(n) % 7)
        np.save(folder / "y_test.npy", np.arange(50) % 7)
    return folder


def row_ids(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(np.rint(x.numpy()[:, :4] * 255).astype(np.uint8)).view("<u4").ravel()


@pytest.fixture
def folder(tmp_path) -> Path:
    return numbered_folder(tmp_path / "big")


def small_stream(images, labels=None, **kw) -> StreamBatches:
    kw = {"batch_size": 64, "seed": 3, "chunk_rows": 200, "buffer_chunks": 3, **kw}
    return StreamBatches(images, labels, **kw)


def test_train_split_is_a_lazy_view_of_the_memory_mapped_file(folder):
    data = load_dataset(str(folder), seed=1)
    train = data.train.images
    assert isinstance(train, RowView) and isinstance(train.base, np.memmap)
    assert Path(train.base.filename) == (folder / "x_train.npy").resolve()
    assert train.shape == (2700, 64) and len(train) == 2700 and train.dtype == np.uint8 and train.ndim == 2
    assert len(data.validation) == 300 and isinstance(data.validation.images, np.ndarray)
    assert data.image_shape == (8, 8) and data.classes == tuple(str(i) for i in range(7))
    # the split is aekit's seeded stratified split, the train rows those the validation split left
    ids = lambda a: np.ascontiguousarray(a[:, :4]).view("<u4").ravel()  # noqa: E731
    assert set(ids(train[:])) | set(ids(data.validation.images)) == set(range(3000))
    assert not set(ids(train[:])) & set(ids(data.validation.images))
    assert (data.train.labels == ids(train[:]) % 7).all()


def test_row_view_indexes_like_an_array(folder):
    x = np.load(folder / "x_train.npy").reshape(3000, -1)
    rows = np.sort(np.random.default_rng(0).choice(3000, 2000, replace=False))
    view = RowView(np.load(folder / "x_train.npy", mmap_mode="r").reshape(3000, -1), rows)
    want = x[rows]
    idx = np.array([5, -1, 3, 3, 1999])
    assert np.array_equal(view[:10], want[:10]) and np.array_equal(view[idx], want[idx])
    assert np.array_equal(view[7], want[7]) and np.array_equal(view[-2], want[-2])
    assert np.array_equal(view[want[:, 4] > 128], want[want[:, 4] > 128])
    assert np.array_equal(view[10:20, :4], want[10:20, :4])
    chunked = lambda a: torch.cat(list(iterate_in_chunks(a, torch.device("cpu"), chunk=300)))  # noqa: E731
    assert torch.equal(chunked(view), chunked(want))
    with pytest.raises(IndexError):
        view[2000]


def test_make_batches_streams_a_view_and_copies_an_array(folder):
    data = load_dataset(str(folder))
    assert isinstance(make_batches(data.train.images, batch_size=32), StreamBatches)
    assert isinstance(make_batches(data.validation.images, batch_size=32), DeviceBatches)


def test_an_epoch_covers_every_row_once_in_an_order_of_seed_and_epoch(folder, monkeypatch):
    from aekit.data import stream as stream_module

    reads = []
    real = stream_module.read_rows
    monkeypatch.setattr(stream_module, "read_rows", lambda mm, rows, out=None: reads.append(len(rows)) or real(mm, rows, out))
    data = load_dataset(str(folder))
    stream = small_stream(data.train.images, data.train.labels)
    seen, labels = [], []
    for x, y in stream.epoch(0):
        assert x.dtype == torch.float32 and x.shape == (64, 64) and 0 <= x.min() and x.max() <= 1
        seen.append(row_ids(x))
        labels.append(y.numpy())
    seen = np.concatenate(seen)
    assert len(seen) == len(stream) * 64 == 2700 // 64 * 64  # the remainder is dropped
    assert len(np.unique(seen)) == len(seen)
    assert np.array_equal(np.concatenate(labels), seen % 7)
    assert max(reads) == 600 and sum(reads) == 2700  # read a window (3 chunks of 200 rows) at a time, once
    assert np.array_equal(seen, data.train.images.file_rows(stream.order(0))[:len(seen)])
    order = stream.order(0)
    assert np.array_equal(np.sort(order), np.arange(2700))
    # a pure function of (seed, epoch): a fresh object, prefetch or not, gives the same order
    again = small_stream(data.train.images, data.train.labels, prefetch=False)
    assert np.array_equal(np.concatenate([row_ids(x) for x, _ in again.epoch(0)]), seen)
    assert not np.array_equal(stream.order(1), order)
    assert not np.array_equal(stream.reseeded(4).order(0), order)
    assert np.array_equal(stream.reseeded(3).order(0), order)


@pytest.mark.parametrize("batch_size, world_size", [(64, 4), (600, 2), (1000, 2)])  # 600, 1000: > a window
def test_ranks_take_disjoint_slices_that_make_the_one_process_batches(folder, batch_size, world_size):
    view = load_dataset(str(folder)).train.images
    one = [row_ids(x) for (x,) in small_stream(view, batch_size=batch_size).epoch(2)]
    ranks = [[row_ids(x) for (x,) in small_stream(view, batch_size=batch_size, rank=r, world_size=world_size).epoch(2)]
             for r in range(world_size)]
    assert all(len(r) == len(one) == 2700 // batch_size for r in ranks)
    for b, batch in enumerate(one):
        parts = [r[b] for r in ranks]
        assert all(len(p) == batch_size // world_size for p in parts)
        assert np.array_equal(np.concatenate(parts), batch)


def test_stream_refuses_bad_shards_and_batches(folder):
    view = load_dataset(str(folder)).train.images
    with pytest.raises(Exception, match="batch_size=65 does not split evenly over 2"):
        small_stream(view, batch_size=65, world_size=2)
    with pytest.raises(Exception, match="batch_size=5000 is larger than the 2700 training images"):
        small_stream(view, batch_size=5000)


def test_given_validation_split_is_used(folder):
    x = np.load(folder / "x_train.npy")
    np.save(folder / "x_val.npy", x[:10])
    np.save(folder / "y_val.npy", np.arange(10) % 7)
    data = load_dataset(str(folder))
    assert len(data.train) == 3000 and data.train.images.rows is None and len(data.validation) == 10
    assert data.split == "given (x_val.npy)"


@pytest.mark.parametrize("edit, match", [
    (lambda f: (f / "x_test.npy").unlink(), r"big: no x_test\.npy"),
    (lambda f: (f / "x_train.npy").unlink(), r"big: no x_train\.npy"),
    (lambda f: np.save(f / "x_train.npy", np.zeros((5, 4), np.float32)), r"x_train\.npy: images are float32 \(5, 4\); expected .*uint8"),
    (lambda f: np.save(f / "x_train.npy", np.zeros(5, np.uint8)), r"x_train\.npy: images are uint8 \(5,\)"),
    (lambda f: np.save(f / "y_train.npy", np.zeros(7, np.int64)), r"y_train\.npy: 7 labels but x_train\.npy has 3000 rows"),
    (lambda f: np.save(f / "y_test.npy", np.full(50, -1)), r"y_test\.npy: expected 50 non-negative integer labels"),
    (lambda f: np.save(f / "x_test.npy", np.zeros((5, 3), np.uint8)), r"x_test\.npy: images have 3 features but x_train\.npy has 64"),
    (lambda f: (f / "x_train.npy").write_bytes((f / "x_train.npy").read_bytes()[:1000]), r"x_train\.npy: truncated \.npy"),
    (lambda f: (f / "x_train.npy").write_bytes(b"junk" * 40), r"x_train\.npy: not a NumPy \.npy array"),
])
def test_bad_folders_are_one_line_errors(folder, edit, match):
    edit(folder)
    with pytest.raises(DataError, match=match):
        load_dataset(str(folder))


def _same_splits(a, b) -> None:
    for split in ("train", "validation", "test"):
        sa, sb = getattr(a, split), getattr(b, split)
        assert np.array_equal(np.asarray(sa.images), np.asarray(sb.images)), split
        assert np.array_equal(sa.labels, sb.labels), split


def test_convert_an_idx_folder_then_train_on_it(tmp_path, capsys):
    write_tiny_idx(tmp_path / "idx", n_train=400, n_test=80)
    out = tmp_path / "npy"
    assert main(["data", "convert", str(tmp_path / "idx"), str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["x_test.npy", "x_train.npy", "y_test.npy", "y_train.npy"]
    assert np.load(out / "x_train.npy", mmap_mode="r").shape == (400, 28, 28)
    _same_splits(load_dataset(str(out), seed=2), load_dataset(str(tmp_path / "idx"), seed=2))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    run = tmp_path / "run"
    assert main(["reproduce", "stacked", "--dataset", str(out), "--epochs-scale", "0.02", "--out", str(run),
                 "--set", "batch_size=64", "--no-progress", "--device", "cpu"]) == 0
    metrics = json.loads((run / "stacked" / "metrics.json").read_text())
    assert metrics["n_train"] == 360 and metrics["n_test"] == 80 and np.isfinite(metrics["test_mse"])


def test_convert_an_npz_round_trip_and_replace_an_earlier_dataset(tiny_npz, tmp_path):
    out = tmp_path / "npy"
    out.mkdir()  # an empty folder may be written into
    assert main(["data", "convert", str(tiny_npz), str(out)]) == 0
    _same_splits(load_dataset(str(out)), load_dataset(str(tiny_npz)))
    xtr, ytr, xte, yte = tiny_arrays(n_train=120, n_test=30, seed=5)
    np.savez(tmp_path / "floats.npz", x_train=xtr / 255.0, x_test=xte / 255.0)  # floats in [0, 1], no labels
    assert main(["data", "convert", str(tmp_path / "floats.npz"), str(out)]) == 0  # replaces the earlier dataset
    assert sorted(p.name for p in out.iterdir()) == ["x_test.npy", "x_train.npy"]
    assert np.array_equal(np.load(out / "x_train.npy"), xtr)


def test_convert_a_png_folder_with_class_subfolders(tmp_path):
    from PIL import Image

    xtr, ytr, xte, _ = tiny_arrays(n_train=12, n_test=5)
    for i, (im, c) in enumerate(zip(xtr, ytr)):
        (tmp_path / "png" / "train" / f"class{c}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(tmp_path / "png" / "train" / f"class{c}" / f"{i:03d}.png")
    (tmp_path / "png" / "test").mkdir()
    for i, im in enumerate(xte):
        Image.fromarray(im).save(tmp_path / "png" / "test" / f"{i:03d}.png")
    out = tmp_path / "npy"
    assert main(["data", "convert", str(tmp_path / "png"), str(out)]) == 0
    y = np.load(out / "y_train.npy")
    classes = sorted(set(ytr))
    assert np.array_equal(y, np.sort([classes.index(c) for c in ytr]))
    order = sorted(range(12), key=lambda i: (ytr[i], i))
    assert np.array_equal(np.load(out / "x_train.npy"), xtr[order])
    assert np.array_equal(np.load(out / "x_test.npy"), xte) and not (out / "y_test.npy").exists()


@pytest.mark.parametrize("setup, match", [
    (lambda t: (t / "out").mkdir() or (t / "out" / "notes.txt").write_text("mine"), r"out: holds files that are not a dataset"),
    (lambda t: np.savez(t / "in.npz", x_train=np.zeros((4, 3, 3), np.uint8), x_test=np.zeros((2, 4, 4), np.uint8)),
     r"images differ in size between splits"),
    (lambda t: np.savez(t / "in.npz", x_train=np.zeros((4, 3)), x_test=np.zeros((2, 3)), y_train=np.zeros(3, int)),
     r"in\.npz\[x_train\] labels \(y_train\.npy\): expected 4"),
    (lambda t: np.savez(t / "in.npz", x_train=np.full((4, 3), 2.0), x_test=np.zeros((2, 3))), r"in\.npz\[x_train\] rows 0\.\.3: float images must lie in \[0, 1\]"),
    (lambda t: np.savez(t / "in.npz", x_test=np.zeros((2, 3))), r"in\.npz: \.npz lacks x_train"),
])
def test_convert_refuses_before_writing_anything(tmp_path, capsys, setup, match):
    np.savez(tmp_path / "in.npz", x_train=np.zeros((4, 3), np.uint8), x_test=np.zeros((2, 3), np.uint8))
    setup(tmp_path)
    assert main(["data", "convert", str(tmp_path / "in.npz"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert __import__("re").search(match, err), err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert not (tmp_path / "out").exists() or (tmp_path / "out" / "notes.txt").exists()


def test_convert_refuses_a_truncated_idx_file(tmp_path, capsys):
    write_tiny_idx(tmp_path / "idx", n_train=100, n_test=20)
    from aekit.data.idx import write_idx

    write_idx(tmp_path / "idx" / "train-images-idx3-ubyte", np.zeros((100, 28, 28), np.uint8))
    (tmp_path / "idx" / "train-images-idx3-ubyte.gz").unlink()
    raw = tmp_path / "idx" / "train-images-idx3-ubyte"
    raw.write_bytes(raw.read_bytes()[:-5])
    assert main(["data", "convert", str(tmp_path / "idx"), str(tmp_path / "out")]) == 2
    assert "train-images-idx3-ubyte: IDX header says shape (100, 28, 28)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # runs the benchmark, which measures each mode in a subprocess
def test_streaming_benchmark_writes_json_and_table(tiny_npz, tmp_path):
    from benchmarks.__main__ import main as bench_main

    out = tmp_path / "streaming.json"
    assert bench_main(["streaming", "--images", "1000", "--source", str(tiny_npz), "--repeats", "1",
                       "--tmp", str(tmp_path), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["data"]["n_images"] == 1000 and r["memory"]["batches"] == "DeviceBatches"
    assert r["stream"]["batches"] == "StreamBatches" and r["stream"]["n_images"] == 900 // 256 * 256
    assert all(r[m]["samples_per_s"] > 0 and r[m]["peak_rss_mb"] > 50 for m in ("memory", "stream", "stream-serial"))
    assert "| streamed (read-ahead thread) |" in out.with_suffix(".md").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("aekit-streaming-")]  # the temporary data is gone
