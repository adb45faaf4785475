"""Tables as datasets: CSV or Parquet rows become standardized feature vectors, and the model keeps how.

A :class:`TableSchema` is fitted on the training rows only: numeric columns are standardized (the mean and
the population standard deviation, as scikit-learn's ``StandardScaler``; a constant column is centred only),
text columns are one-hot encoded over the categories seen in training (sorted), and an optional label column
becomes the class index. The schema is plain JSON: a run saves it in its checkpoint, and ``aekit encode`` /
``reconstruct`` / ``score`` apply it to new rows, so they are transformed exactly as the training rows were.

pandas reads the files (pyarrow for Parquet): ``pip install 'aekit[tables]'``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from aekit.errors import DataError

SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
IMPUTE = ("none", "mean")  # missing values: an error, or the training mean (numbers) / most frequent value (text)
UNKNOWN = ("error", "ignore")  # a category unseen in training: an error, or all zeros in its one-hot block
MIN_ROWS = 2
MAX_CATEGORIES = 1000  # one-hot columns per text column; more is an identifier, not a category


@dataclass(frozen=True)
class TableOptions:
    """How a table becomes a dataset: ``--label-column``, ``--impute``, ``--test-size``."""

    label: str | None = None  # the label column's name; None: unlabeled rows
    impute: str = "none"  # missing values: none (an error naming the column), or mean
    test_size: float = 0.2  # the share of rows held out for testing, where no test table is given

    def check(self) -> "TableOptions":
        if self.impute not in IMPUTE:
            raise DataError(f"--impute {self.impute!r} is not allowed; choose one of: {', '.join(IMPUTE)}")
        if not 0 < self.test_size < 1:
            raise DataError(f"--test-size {self.test_size} must be between 0 and 1 (the share of rows held out for "
                            "testing)")
        return self


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "number" or "text"
    mean: float = 0.0  # numbers: the training mean (also what a missing value becomes, with impute="mean")
    scale: float = 1.0  # numbers: the training standard deviation (1 for a constant column)
    categories: tuple[str, ...] = ()  # text: the training values, sorted; one feature each
    fill: str = ""  # text: the most frequent training value (a missing value's, with impute="mean")

    @property
    def width(self) -> int:
        return 1 if self.kind == "number" else len(self.categories)


@dataclass(frozen=True)
class TableSchema:
    columns: tuple[Column, ...]
    label: str | None = None  # the label column's name
    classes: tuple[str, ...] = ()  # the label values, sorted: label i is classes[i]
    impute: str = "none"
    source: dict = field(default_factory=dict)  # where the training rows came from (file, rows), for messages

    @property
    def feature_names(self) -> list[str]:
        """One name per feature: the column's, or ``column=value`` for a one-hot feature."""
        return [c.name if c.kind == "number" else f"{c.name}={v}" for c in self.columns
                for v in ([None] if c.kind == "number" else c.categories)]

    @property
    def feature_column(self) -> np.ndarray:
        """The index of the column each feature comes from, (D,)."""
        return np.repeat(np.arange(len(self.columns)), [c.width for c in self.columns])

    def column_errors(self, squared: np.ndarray) -> np.ndarray:
        """Per-feature squared errors (N, D) summed into their columns, (N, n_columns): a one-hot block counts
        once, as its column."""
        out = np.zeros((len(squared), len(self.columns)), dtype=np.float64)
        np.add.at(out.T, self.feature_column, np.asarray(squared, dtype=np.float64).T)
        return out

    def transform(self, frame, what: str, unknown: str = "error", training: bool = False) -> np.ndarray:
        """(N, D) float32 features of ``frame`` (a pandas DataFrame with at least the schema's columns; others,
        the label column included, are ignored). ``training``: the rows come with the training command (whose
        messages advise its options), not to a saved model."""
        import pandas as pd

        missing = [c.name for c in self.columns if c.name not in frame.columns]
        if missing:
            raise DataError(f"{what}: lacks the column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
                            f"the model was trained on; it has {_names(frame.columns)}")
        if len(frame) == 0:
            raise DataError(f"{what}: has no rows")
        parts = []
        for c in self.columns:
            values = frame[c.name]
            _check_missing(values, c.name, what, self.impute, None if training else
                           "the model was trained without --impute: fill or drop those rows, or retrain with --impute mean")
            if c.kind == "number":
                numbers = pd.to_numeric(values, errors="coerce")
                bad = numbers.isna() & values.notna()
                if bad.any():
                    row = int(np.flatnonzero(bad.to_numpy())[0])
                    raise DataError(f"{what}: column {c.name!r} holds numbers in training, but row {row} has "
                                    f"{values.iloc[row]!r}; fix the value or drop the row")
                x = numbers.fillna(c.mean).to_numpy(dtype=np.float64)
                with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: refused just below
                    z = ((x - c.mean) / c.scale).astype(np.float32)
                if not np.isfinite(z).all():
                    row = int(np.flatnonzero(~np.isfinite(z))[0])
                    raise DataError(f"{what}: column {c.name!r} row {row} is {x[row]:g}, too far from the training rows "
                                    f"(mean {c.mean:.4g}, standard deviation {c.scale:.4g}) to standardize; expected a "
                                    "finite number on that scale")
                parts.append(z[:, None])
            else:
                text = values.astype("string").fillna(c.fill)
                codes = _codes(text, c.categories)
                unseen = codes < 0
                if unseen.any() and unknown == "error":
                    row = int(np.flatnonzero(unseen)[0])
                    fix = ("every test value must appear in the training table: fix it or drop the row" if training else
                           "fix it, or pass --unknown ignore to encode unseen values as none of the known ones")
                    raise DataError(f"{what}: column {c.name!r} row {row} has {str(text.iloc[row])!r}, a value "
                                    f"{'the training rows never have' if training else 'the model never saw in training'} "
                                    f"(known: {_names(c.categories)}); {fix}")
                onehot = np.zeros((len(codes), len(c.categories)), dtype=np.float32)
                onehot[np.flatnonzero(~unseen), codes[~unseen]] = 1.0
                parts.append(onehot)
        return np.concatenate(parts, axis=1).astype(np.float32)

    def transform_array(self, x: np.ndarray, what: str) -> np.ndarray:
        """(N, D) float32 features of an array of raw numbers, one column each (a schema of number columns only,
        as :func:`numeric_schema` fits on a float array)."""
        if any(c.kind != "number" for c in self.columns):
            raise DataError(f"{what}: the model was trained on a table with text columns; give new rows as a table "
                            "(.csv, .parquet) with its columns")
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if x.shape[1] != len(self.columns):
            raise DataError(f"{what} has {x.shape[1]} values per row; the model was trained on {len(self.columns)}")
        mean = np.array([c.mean for c in self.columns])
        scale = np.array([c.scale for c in self.columns])
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: refused just below
            z = ((x - mean) / scale).astype(np.float32)
        if not np.isfinite(z).all():
            row, col = np.argwhere(~np.isfinite(z))[0]
            raise DataError(f"{what}: row {row} value {col} is {x[row, col]:g}, too far from the training rows to "
                            "standardize; expected finite numbers on their scale")
        return z

    def labels(self, frame, what: str) -> np.ndarray | None:
        """The label column as class indices, (N,) int64; None when the schema has no label column or the
        frame lacks it (new rows to score need none)."""
        if self.label is None or self.label not in frame.columns:
            return None
        values = frame[self.label]
        _check_missing(values, self.label, what, "none", LABEL_GAPS)
        codes = _codes(values.astype("string"), self.classes)
        if (codes < 0).any():
            row = int(np.flatnonzero(codes < 0)[0])
            raise DataError(f"{what}: label column {self.label!r} row {row} has {str(values.iloc[row])!r}, a class the "
                            f"training rows do not have ({_names(self.classes)}); fix it or drop the row")
        return codes

    def unscale(self, features: np.ndarray) -> list[list]:
        """Rows of features (N, D) back in the table's units: numbers unstandardized, each one-hot block as
        its most likely category."""
        rows, start = [[] for _ in range(len(features))], 0
        for c in self.columns:
            block = features[:, start:start + c.width]
            start += c.width
            values = block[:, 0] * c.scale + c.mean if c.kind == "number" else [c.categories[i] for i in block.argmax(1)]
            for row, v in zip(rows, values):
                row.append(float(v) if c.kind == "number" else v)
        return rows

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d, where: str) -> "TableSchema":
        """The schema a checkpoint saved; anything malformed is a DataError naming ``where``."""
        try:
            columns = tuple(Column(**{**c, "categories": tuple(c.get("categories", ()))}) for c in d["columns"])
            schema = cls(columns, d.get("label"), tuple(d.get("classes", ())), d.get("impute", "none"),
                         dict(d.get("source", {})))
        except (TypeError, KeyError, AttributeError) as e:
            raise DataError(f"{where}: extra.table is not a table schema ({type(e).__name__}: {e}); the checkpoint "
                            "is damaged: rerun the training") from None
        bad = [c.name for c in columns if c.kind not in ("number", "text") or (c.kind == "number" and not (
            math.isfinite(c.mean) and math.isfinite(c.scale) and c.scale > 0)) or (c.kind == "text" and not c.categories)]
        if not columns or bad or schema.impute not in IMPUTE:
            raise DataError(f"{where}: extra.table has malformed columns ({', '.join(map(str, bad)) or 'none'}); the "
                            "checkpoint is damaged: rerun the training")
        return schema


def _sorted_values(values) -> tuple[str, ...]:
    """Sorted as numbers where every value is one ("2" before "10"), else as text."""
    values = [str(v) for v in values]
    try:
        return tuple(sorted(values, key=float))
    except ValueError:
        return tuple(sorted(values))


def _names(names, show: int = 8) -> str:
    names = [str(n) for n in names]
    return ", ".join(names[:show]) + (f" and {len(names) - show} more" if len(names) > show else "")


def _codes(text, categories) -> np.ndarray:
    """The index of each value of ``text`` among ``categories``, -1 for a value not among them, (N,) int64."""
    import pandas as pd

    return np.asarray(pd.Index(list(categories), dtype="string").get_indexer(text), dtype=np.int64)


LABEL_GAPS = "labels are never imputed: fill them or drop those rows"


def _check_missing(values, name: str, what: str, impute: str, fix: str | None = None) -> None:
    """Refuse missing values unless imputed; ``fix`` says what to do (default: the training command's options)."""
    gaps = values.isna().to_numpy()
    if gaps.any() and impute == "none":
        fix = fix or ("fill them, drop those rows, or pass --impute mean (numbers get the training mean, text its most "
                      "frequent value)")
        raise DataError(f"{what}: column {name!r} has {int(gaps.sum())} missing value{'s' if gaps.sum() > 1 else ''} "
                        f"(the first in row {int(np.flatnonzero(gaps)[0])}); {fix}")


def _pandas():
    try:
        import pandas as pd
    except ImportError:
        raise DataError("tables (.csv, .parquet) are read with pandas, which is not installed; run: "
                        "pip install 'aekit[tables]'") from None
    return pd


def is_table(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def table_files(path: Path) -> tuple[Path, Path | None] | None:
    """(train, test) of a table dataset: one table file (test None: split off), or a folder holding
    ``train.csv`` and ``test.csv`` (or .parquet); None when ``path`` is neither."""
    if path.is_file() and is_table(path):
        return path, None
    if path.is_dir():
        found = {stem: next((path / f"{stem}{s}" for s in SUFFIXES if (path / f"{stem}{s}").is_file()), None)
                 for stem in ("train", "test")}
        if found["train"] is None and found["test"] is not None:
            raise DataError(f"{path}: holds {found['test'].name} but no train.csv (or train.parquet); add the training "
                            "table")
        if found["train"] is not None:
            if found["test"] is None:
                raise DataError(f"{path}: holds {found['train'].name} but no test table (test.csv or test.parquet); "
                                "add one, or pass the training table itself as --dataset to split a test set off it")
            return found["train"], found["test"]
    return None


def read_table(path: Path, what: str | None = None):
    """A pandas DataFrame of the CSV (comma, or tab for .tsv) or Parquet file ``path``; any failure is one line."""
    pd = _pandas()
    what = what or str(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", skipinitialspace=True)
    except ImportError as e:
        raise DataError(f"{what}: reading Parquet needs pyarrow ({e}); run: pip install 'aekit[tables]'") from None
    except FileNotFoundError:
        raise DataError(f"{what}: no such file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{what}: the file is empty; expected a header row of column names, then one row per sample") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{what}: not UTF-8 text (byte 0x{e.object[e.start]:02x}); save the table as UTF-8 CSV") from None
    except (pd.errors.ParserError, ValueError, OSError) as e:
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"{what}: cannot read the table ({detail}); expected a CSV file with a header row, or "
                        "Parquet") from None
    if suffix not in (".parquet", ".pq"):
        _check_header(path, what, frame, "\t" if suffix == ".tsv" else ",")
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise DataError(f"{what}: column {duplicated[0]!r} appears twice; column names must be unique")
    return frame


def _check_header(path: Path, what: str, frame, sep: str) -> None:
    """What pandas accepts but means a misread table: another separator, no header row, a duplicated or an
    empty column name (pandas renames those: ``a.1``, ``Unnamed: 0``)."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f, delimiter=sep), [])
    header = [h.strip() for h in header]
    if len(header) == 1:
        other = next((s for s in (";", "\t", "|") if s in header[0]), None)
        if other is not None:
            raise DataError(f"{what}: its header is one column, {header[0][:40]!r}: the table seems separated by "
                            f"{other!r}; aekit reads comma-separated CSV (.tsv for tabs): save it with commas")
    seen = set()
    for i, name in enumerate(header):
        if name in seen:
            raise DataError(f"{what}: column {name!r} appears twice in the header; column names must be unique")
        seen.add(name)
        if not name:
            raise DataError(f"{what}: column {i} has no name in the header (a row index saved by pandas' to_csv, or a "
                            "trailing comma); save with index=False, or name or drop the column")
    if header and all(_is_number(h) for h in header):
        raise DataError(f"{what}: its first row holds numbers ({', '.join(header[:3])}, ...), not column names; add a "
                        "header row of column names")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def fit_schema(frame, what: str, label: str | None = None, impute: str = "none") -> TableSchema:
    """Learn the schema from the training rows ``frame``."""
    pd = _pandas()
    if label is not None and label not in frame.columns:
        raise DataError(f"{what}: --label-column {label!r}: no such column; the table has {_names(frame.columns)}")
    if len(frame) < MIN_ROWS:
        raise DataError(f"{what}: has {len(frame)} row{'s' if len(frame) != 1 else ''}; a table to train on needs at "
                        f"least {MIN_ROWS} (one header row, then one row per sample)")
    names = [n for n in frame.columns if n != label]
    if not names:
        raise DataError(f"{what}: has no feature columns besides the label column {label!r}")
    columns = []
    for name in names:
        values = frame[name]
        if values.isna().all():
            raise DataError(f"{what}: column {name!r} has no values at all; drop it")
        _check_missing(values, str(name), what, impute)
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_complex_dtype(values):
            x = values.to_numpy(dtype=np.float64)
            x = x[~np.isnan(x)]
            if not np.isfinite(x).all():
                raise DataError(f"{what}: column {name!r} holds infinite values; expected finite numbers")
            with np.errstate(all="ignore"):
                mean, std = float(x.mean()), float(x.std())  # StandardScaler's: the population standard deviation
            if not (np.isfinite(mean) and np.isfinite(std)) or abs(mean) > 1e30 or std > 1e30:
                raise DataError(f"{what}: column {name!r} holds values too large to standardize (up to "
                                f"{np.abs(x).max():.3g}); rescale the column (e.g. to other units, or its logarithm)")
            columns.append(Column(str(name), "number", mean, std if std > 0 else 1.0))  # a constant column: centred
        else:
            _check_not_numbers(values, str(name), what)
            text = values.dropna().astype("string")
            counts = text.value_counts()
            if len(counts) > MAX_CATEGORIES or len(counts) == len(text) > 20:  # an identifier, a free-text note
                raise DataError(f"{what}: text column {name!r} has {len(counts):,} distinct values in {len(text):,} rows "
                                f"(at most {MAX_CATEGORIES} categories, repeated, make a feature); drop the column, or "
                                "make it a number")
            columns.append(Column(str(name), "text", categories=tuple(sorted(counts.index)), fill=str(counts.index[0])))
    classes = ()
    if label is not None:
        _check_missing(frame[label], label, what, "none", LABEL_GAPS)
        y = frame[label]
        classes = _sorted_values(y.astype("string").unique())
        floats = pd.api.types.is_float_dtype(y) and not (y == y.round()).all()
        if floats or (len(classes) > 20 and len(classes) > len(frame) // 2):
            raise DataError(f"{what}: label column {label!r} has {len(classes):,} distinct values in {len(frame):,} rows"
                            f"{' (fractional numbers)' if floats else ''}: a value to predict or an identifier, not a class; "
                            "aekit's labels are classes: name a class column, or leave --label-column out")
    return TableSchema(tuple(columns), label, classes, impute, {"file": what, "rows": len(frame)})


def _check_not_numbers(values, name: str, what: str) -> None:
    """A text column that is numbers but for a few placeholders ('?', 'n/a') is a number column misread: one-hot
    encoding it would be silently wrong."""
    import pandas as pd

    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    odd = numbers.isna().to_numpy()
    if len(present) and odd.any() and odd.mean() <= 0.1:
        row = int(np.flatnonzero(values.notna().to_numpy())[np.flatnonzero(odd)[0]])
        raise DataError(f"{what}: column {name!r} holds numbers, but row {row} has {str(present[odd].iloc[0])!r}; "
                        "fix such values, or leave those cells empty (and pass --impute mean)")


def numeric_schema(x: np.ndarray, source: str) -> TableSchema:
    """The schema of a float array's columns ``x0``, ``x1``, ... (numbers only), from its rows ``x`` (N, D)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant column is centred only, as StandardScaler does
    return TableSchema(tuple(Column(f"x{j}", "number", float(m), float(s)) for j, (m, s) in enumerate(zip(mean, std))),
                       source={"file": source, "rows": len(x)})


def is_unbounded(x) -> bool:
    """A float array of rows (N, D) with values outside [0, 1]: measurements to standardize, not pixels. An
    image-shaped array (N, H, W[, C]), or whole numbers within 0..255, are taken as pixels (and refused as floats
    out of [0, 1], with what to do), never silently as measurements."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating) or x.size == 0 or x.ndim != 2:
        return False
    finite = x[np.isfinite(x)]
    if not finite.size or (finite.min() >= 0 and finite.max() <= 1):
        return False
    return not (finite.min() >= 0 and finite.max() <= 255 and (finite == np.round(finite)).all())


def from_feature_arrays(name: str, x_train, y_train, x_test, y_test, source: str, seed: int = 0):
    """A dataset of float arrays in any range (``.npz`` with ``x_train``, ``x_test``): each value a column,
    standardized with the training rows' statistics (the rows split off for validation included, as for a
    table), the schema kept with the model."""
    from aekit.data.arrays import Split, as_labels, infer_classes, with_validation

    parts = []
    for x, what in ((x_train, "training"), (x_test, "test")):
        x = np.asarray(x)
        if x.ndim < 2 or len(x) == 0 or not np.issubdtype(x.dtype, np.number):
            raise DataError(f"{name} {what} values: expected a non-empty numeric array (N, D), got {x.dtype} {x.shape}")
        x = x.reshape(len(x), -1)
        bad = ~np.isfinite(x)
        if bad.any():
            raise DataError(f"{name} {what} values: {int(bad.sum())} NaN or infinite values, the first in row "
                            f"{int(bad.any(axis=1).argmax())}; expected finite numbers")
        parts.append(x)
    if parts[0].shape[1] != parts[1].shape[1]:
        raise DataError(f"{name}: training rows have {parts[0].shape[1]} values but test rows have {parts[1].shape[1]}")
    schema = numeric_schema(parts[0], source)
    x, xt = schema.transform_array(parts[0], name), schema.transform_array(parts[1], name)
    y, yt = as_labels(y_train, len(x), f"{name} training labels"), as_labels(y_test, len(xt), f"{name} test labels")
    classes = infer_classes(name, {"training": y, "test": yt})
    return with_validation(name, x, y, Split(xt, yt), seed=seed, image_shape=(x.shape[1],), classes=classes,
                           source=f"{source} (values standardized per column)",
                           table=dataclasses.replace(schema, classes=classes), bounded=False)


def load_table(path: Path, options: TableOptions = TableOptions(), seed: int = 0):
    """A table dataset (:class:`aekit.data.arrays.Dataset` with ``table`` set): its training rows standardized
    with their own statistics; without a test table, a test split of ``test_size`` of the rows drawn from ``seed``
    (stratified by label when there is one), then a validation split as for any user's data."""
    from aekit.data.arrays import Split, split_indices, with_validation

    train_path, test_path = table_files(path)
    label, impute, test_size = options.check().label, options.impute, options.test_size
    if test_path is not None and test_size != TableOptions().test_size:
        raise DataError(f"--test-size {test_size}: {path} holds its own test table ({test_path.name}); drop --test-size")
    frame = read_table(train_path)
    fit_schema(frame, str(train_path), label, impute)  # the whole file's problems, named by its own row numbers
    unknown = "error"
    if test_path is None:
        n_test = max(1, round(test_size * len(frame)))
        if len(frame) - n_test < MIN_ROWS:
            raise DataError(f"--test-size {test_size} of {train_path}'s {len(frame)} rows leaves {len(frame) - n_test} to "
                            f"train on; choose a smaller --test-size, or give a test table")
        y = None if label is None or label not in frame.columns else frame[label].astype("string").to_numpy()
        keep, held = split_indices(None if y is None else np.unique(y, return_inverse=True)[1], len(frame), n_test, seed)
        frame, test_frame = frame.iloc[keep].reset_index(drop=True), frame.iloc[held].reset_index(drop=True)
        test_what = f"{train_path} (test rows)"
        unknown = "ignore"  # a rare value of the file's own may fall in the held-out rows only
    else:
        test_frame, test_what = read_table(test_path), str(test_path)
    schema = fit_schema(frame, str(train_path), label, impute)
    schema = dataclasses.replace(schema, source={**schema.source, "file": str(train_path.resolve())})  # explore finds it
    x, y = schema.transform(frame, str(train_path), training=True), schema.labels(frame, str(train_path))
    x_test = schema.transform(test_frame, test_what, unknown, training=True)
    y_test = schema.labels(test_frame, test_what)
    if label is not None and y_test is None:
        raise DataError(f"{test_what}: lacks the label column {label!r} that the training rows have")
    source = f"{train_path}" + (f" and {test_path}" if test_path else f" ({len(test_frame)} rows held out for testing)")
    return with_validation(path.stem if path.is_file() else path.name, x, y, Split(x_test, y_test), seed=seed,
                           image_shape=(x.shape[1],), classes=schema.classes, source=source, table=schema, bounded=False)
