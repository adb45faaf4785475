"""Tables (CSV, Parquet) as datasets: standardized from the training rows, saved with the model, applied to new
rows by encode / reconstruct / score / export, and refused with one line where they are wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_line

import aekit
from aekit.cli import main
from aekit.data.catalog import load_dataset
from aekit.data.tables import TableOptions, fit_schema
from aekit.errors import ConfigError, DataError

QUICK = ["--epochs-scale", "0.1", "--no-progress", "--set", "batch_size=16"]


def make_table(n=120, seed=0) -> pd.DataFrame:
    """Two correlated numeric columns far from [0, 1], a text column, a label column (text)."""
    rng = np.random.default_rng(seed)
    size = rng.normal(1000, 200, n)
    return pd.DataFrame({"size": size, "price": 3 * size + rng.normal(0, 50, n), "site": rng.choice(["north", "south"], n),
                         "kind": np.where(np.arange(n) % 3 == 0, "rare", "common")})


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path)
    return path


def test_a_csv_becomes_standardized_features_with_a_stratified_test_split(tmp_path):
    frame = make_table()
    data = load_dataset(str(write(frame, tmp_path / "rows.csv")), table=TableOptions(label="kind", test_size=0.25))
    assert data.kind == "table" and not data.bounded
    assert data.table.feature_names == ["size", "price", "site=north", "site=south"]
    assert data.classes == ("common", "rare")
    assert len(data.test) == 30 and len(data.train) + len(data.validation) == 90
    for split in (data.train, data.validation, data.test):  # one third rare everywhere: stratified
        assert abs(np.mean(split.labels == 1) - 1 / 3) < 0.05
    # The statistics are the training rows' only: the training+validation features average to 0, the test's do not
    fit_rows = np.concatenate([data.train.images, data.validation.images])
    assert np.allclose(fit_rows[:, :2].mean(axis=0), 0, atol=1e-5) and np.allclose(fit_rows[:, :2].std(axis=0), 1, atol=1e-4)
    assert not np.allclose(data.test.images[:, :2].mean(axis=0), 0, atol=1e-3)
    assert set(np.unique(data.train.images[:, 2:])) == {0.0, 1.0}


def test_a_folder_with_train_and_test_tables_and_parquet(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    write(make_table(80, seed=1), folder / "train.parquet")
    write(make_table(20, seed=2), folder / "test.csv")
    data = load_dataset(str(folder))
    assert len(data.test) == 20 and len(data.train) + len(data.validation) == 80 and data.train.labels is None
    assert data.table.feature_names[-2:] == ["kind=common", "kind=rare"]  # unlabeled: kind is a feature


def test_train_score_reconstruct_encode_and_export_a_table(tmp_path, capsys, monkeypatch):
    rows = write(make_table(), tmp_path / "rows.csv")
    assert main(["reproduce", "stacked", "--dataset", str(rows), "--label-column", "kind", "--preset", "modern",
                 "--code-size", "2", "--out", str(tmp_path / "run"), *QUICK]) == 0
    run = tmp_path / "run" / "stacked"
    model = aekit.load(run)
    assert not model.config.bounded  # the PCA-residual model leaves standardized values unclipped
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test_mse_by_column"]) == {"size", "price", "site"}
    assert (run / "columns.png").is_file() and not (run / "reconstruction.png").exists()

    new = make_table(40, seed=5).drop(columns="kind")  # new rows need no label
    new.loc[7, "price"] = 1e5  # one absurd price
    write(new, tmp_path / "new.csv")
    capsys.readouterr()
    figure = tmp_path / "worst.png"
    from aekit import figures

    drawn, draw = {}, figures.row_shares
    monkeypatch.setattr(figures, "row_shares", lambda shares, names, rows, path, **kw: (
        drawn.update(shares=shares, names=names, rows=rows), draw(shares, names, rows, path, **kw)))
    assert main(["score", str(run), str(tmp_path / "new.csv"), "-o", str(tmp_path / "scores.csv"),
                 "--figure", str(figure)]) == 0
    assert figure.read_bytes()[:4] == b"\x89PNG"  # a table's worst rows, drawn by column
    assert drawn["rows"][0].startswith("#7 ") and drawn["names"][int(np.argmax(drawn["shares"][0]))] == "price"
    out = capsys.readouterr().out
    assert "#7 " in out.splitlines()[2] and "price (" in out.splitlines()[2]  # the worst row, explained by its column
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert scores.loc[7, "outlier"] == 1 and scores.loc[7, "where"].startswith("price")

    assert main(["reconstruct", str(run), str(tmp_path / "new.csv"), "-o", str(tmp_path / "back.csv")]) == 0
    back = pd.read_csv(tmp_path / "back.csv")
    assert list(back.columns) == ["size", "price", "site"] and len(back) == 40
    assert set(back["site"]) <= {"north", "south"}
    ok = np.arange(40) != 7  # price follows size, which a 2-d code of a linear relation reconstructs
    assert np.corrcoef(back["price"][ok], new["price"][ok])[0, 1] > 0.8

    assert main(["encode", str(run), str(tmp_path / "new.csv"), "-o", str(tmp_path / "codes.npy")]) == 0
    assert np.load(tmp_path / "codes.npy").shape == (40, 2)


@pytest.mark.slow
def test_a_table_models_onnx_graph_takes_its_encoded_features(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    rows = write(make_table(), tmp_path / "rows.csv")
    assert main(["reproduce", "stacked", "--dataset", str(rows), "--out", str(tmp_path / "run"), *QUICK]) == 0
    run = tmp_path / "run" / "stacked"
    assert main(["export", str(run), "--onnx", str(tmp_path / "m.onnx")]) == 0
    from aekit.inference import open_model

    opened = open_model(run)
    x, _ = opened.read(rows)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    assert np.abs(session.run(None, {"x": x})[0] - opened.encode(x)).max() < 1e-5
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["aekit.table"])["columns"][0]["name"] == "size"


@pytest.mark.parametrize("damage, expect", [
    (lambda f: f.assign(size=f["size"].where(f.index % 10 != 3)), "column 'size' has 12 missing values (the first in row 3)"),
    (lambda f: f.iloc[:1], "has 1 row; a table to train on needs at least 2"),
    (lambda f: f.assign(site=[f"id{i}" for i in range(len(f))]), "text column 'site' has 120 distinct values in 120 rows"),
])
def test_bad_tables_get_one_line_before_any_work(tmp_path, capsys, damage, expect):
    rows = write(damage(make_table()), tmp_path / "rows.csv")
    assert main(["reproduce", "stacked", "--dataset", str(rows), "--test-size", "0.5", "--out", str(tmp_path / "run"),
                 *QUICK]) == 2
    assert expect in one_line(capsys)
    assert not (tmp_path / "run").exists()


def test_a_missing_value_is_imputed_when_asked(tmp_path):
    frame = make_table()
    frame.loc[[3, 50], "size"] = np.nan
    frame.loc[4, "site"] = None
    data = load_dataset(str(write(frame, tmp_path / "rows.csv")), table=TableOptions(impute="mean"))
    assert np.isfinite(data.train.images).all() and np.isfinite(data.test.images).all()


def test_label_column_and_unseen_categories_are_named(tmp_path, capsys):
    rows = write(make_table(), tmp_path / "rows.csv")
    assert main(["reproduce", "stacked", "--dataset", str(rows), "--label-column", "kind2", "--out",
                 str(tmp_path / "x"), *QUICK]) == 2
    assert "--label-column 'kind2': no such column; the table has size, price, site, kind" in one_line(capsys)
    assert not (tmp_path / "x").exists()  # refused before any work
    assert main(["reproduce", "stacked", "--dataset", "mnist-5k", "--label-column", "kind", "--out", str(tmp_path / "y"),
                 *QUICK]) == 2
    assert "are for tables" in capsys.readouterr().err
    assert main(["reproduce", "stacked", "--dataset", str(rows), "--out", str(tmp_path / "run"), *QUICK]) == 0
    new = make_table(10, seed=3)
    new.loc[4, "site"] = "east"
    write(new, tmp_path / "new.csv")
    capsys.readouterr()
    run = str(tmp_path / "run" / "stacked")
    assert main(["score", run, str(tmp_path / "new.csv"), "-o", str(tmp_path / "scores.csv")]) == 2
    err = one_line(capsys)
    assert "column 'site' row 4 has 'east', a value the model never saw in training (known: north, south)" in err
    assert not (tmp_path / "scores.csv").exists()
    assert main(["score", run, str(tmp_path / "new.csv"), "--unknown", "ignore"]) == 0
    assert main(["score", run, str(tmp_path / "new.csv"), "--unknown", "ignore", "--quantile", "0.99"]) == 0
    assert "quantile 0.99 of validation scores" in capsys.readouterr().out
    write(new.drop(columns="price"), tmp_path / "short.csv")
    assert main(["score", run, str(tmp_path / "short.csv")]) == 2
    assert "lacks the column 'price' the model was trained on" in capsys.readouterr().err



def test_a_parquet_file_trains_and_scores_new_parquet_rows(tmp_path, capsys):
    rows = write(make_table(), tmp_path / "rows.parquet")
    assert main(["reproduce", "stacked", "--dataset", str(rows), "--label-column", "kind", "--out",
                 str(tmp_path / "run"), *QUICK]) == 0
    new = write(make_table(10, seed=4).drop(columns="kind"), tmp_path / "new.parquet")
    capsys.readouterr()
    assert main(["score", str(tmp_path / "run" / "stacked"), str(new), "-o", str(tmp_path / "scores.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "scores.csv")) == 10


def test_tables_refuse_what_models_pixels():
    from aekit.data.tables import TableSchema
    from aekit.experiments.programs import check_fits
    from aekit.experiments.recipe import Recipe

    frame = make_table()
    schema = fit_schema(frame, "rows")
    assert isinstance(TableSchema.from_json(json.loads(json.dumps(schema.to_json())), "x"), TableSchema)
    from aekit.data.arrays import Dataset, Split

    x = schema.transform(frame, "rows")
    table = Dataset("rows", Split(x, None), Split(x[:0], None), Split(x, None), (x.shape[1],), table=schema, bounded=False)
    for recipe, expect in ((Recipe(architecture="vae", batch_size=8), "architecture='vae' models pixels"),
                           (Recipe(loss="bce", batch_size=8), "loss='bce' treats values as probabilities"),
                           (Recipe(architecture="pca-residual", batch_size=8), "needs at least as many features")):
        with pytest.raises(ConfigError, match=expect):
            check_fits(recipe, table)


def test_the_estimator_standardizes_a_table_and_finds_its_outliers():
    from sklearn.datasets import load_wine
    from sklearn.metrics import roc_auc_score

    from aekit.estimators import AutoencoderTransformer

    X, y = load_wine(return_X_y=True)
    est = AutoencoderTransformer(hidden_sizes=(64, 8), max_epochs=100, random_state=0, device="cpu").fit(X[y == 0][:40])
    assert est.scaling_ == "standard" and est.model_.config.output_activation == "identity"
    assert np.allclose(est.data_min_, X[y == 0][:40].mean(axis=0), rtol=1e-5)
    auc = roc_auc_score(y[40:] != 0, -est.score_samples(X[40:]))
    assert auc > 0.9  # class 0 is normal; the other wines are anomalies
    normal = X[y == 0][:40]
    back = est.inverse_transform(est.transform(normal))  # in the table's units: a column's mean is kept
    assert (np.abs(back.mean(axis=0) - normal.mean(axis=0)) < 0.5 * normal.std(axis=0)).all()
    assert (((back - normal) / normal.std(axis=0)) ** 2).mean() < 0.5  # the column means alone would give 1


def test_a_damaged_table_schema_is_refused(tmp_path):
    from aekit.data.tables import TableSchema

    with pytest.raises(DataError, match="extra.table is not a table schema"):
        TableSchema.from_json({"columns": "x"}, "cfg")
    with pytest.raises(DataError, match="malformed columns"):
        TableSchema.from_json({"columns": [{"name": "a", "kind": "number", "scale": 0.0}]}, "cfg")


def test_float_arrays_in_any_range_are_standardized_features(tmp_path, capsys):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 2))
    x = np.concatenate([z * 50 + 1000, z @ [[3.0, 1.0], [0.5, -2.0]]], axis=1)  # 4 values per row, far from [0, 1]
    np.savez(tmp_path / "sensors.npz", x_train=x[:160], x_test=x[160:])
    data = load_dataset(str(tmp_path / "sensors.npz"))
    assert data.kind == "table" and [c.name for c in data.table.columns] == ["x0", "x1", "x2", "x3"]
    fit_rows = np.concatenate([data.train.images, data.validation.images])
    assert np.allclose(fit_rows.mean(axis=0), 0, atol=1e-4) and np.allclose(fit_rows.std(axis=0), 1, atol=1e-3)
    assert main(["reproduce", "stacked", "--dataset", str(tmp_path / "sensors.npz"), "--preset", "modern", "--out",
                 str(tmp_path / "run"), *QUICK]) == 0
    odd = x[160:].copy()
    odd[3, 0] = 5000  # one reading far off
    np.save(tmp_path / "new.npy", odd)
    capsys.readouterr()
    assert main(["score", str(tmp_path / "run" / "stacked"), str(tmp_path / "new.npy")]) == 0
    assert "#3 " in capsys.readouterr().out.splitlines()[2]  # the worst row, in raw units in, standardized inside
    assert main(["explore", str(tmp_path / "run" / "stacked"), "-o", str(tmp_path / "page.html")]) == 0


@pytest.mark.parametrize("text, options, expect", [
    ("a;b;c\n1;2;x\n3;4;y\n5;6;x\n", [], "the table seems separated by ';'; aekit reads comma-separated CSV"),
    ("a,a,b\n1,2,3\n4,5,6\n7,8,9\n", [], "column 'a' appears twice in the header"),
    ("0.5,1.5,2\n1,2,3\n4,5,6\n7,8,9\n", [], "its first row holds numbers (0.5, 1.5, 2, ...), not column names"),
    (",a,b\n0,1,2\n1,4,5\n2,7,8\n", [], "column 0 has no name in the header (a row index saved by pandas' to_csv"),
    ("a,b\n1e300,1\n-1e300,2\n3,3\n", [], "column 'a' holds values too large to standardize"),
    ("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(30)) + "?,1\n", [], "column 'a' holds numbers, but row 30 has '?'"),
    ("a,y\n" + "".join(f"{i},{i * 0.37}\n" for i in range(30)), ["--label-column", "y"],
     "label column 'y' has 30 distinct values in 30 rows (fractional numbers): a value to predict"),
    ("a,y\n1,x\n2,\n3,y\n4,x\n", ["--label-column", "y", "--impute", "mean"], "labels are never imputed"),
    ("a,b\n1,2\n3,4\n5,6\n", ["--test-size", "0.5"], "--test-size 0.5 of"),
])
def test_misread_tables_are_refused_before_any_work(tmp_path, capsys, text, options, expect):
    (tmp_path / "rows.csv").write_text(text)
    assert main(["reproduce", "stacked", "--dataset", str(tmp_path / "rows.csv"), *options, "--out", str(tmp_path / "run"),
                 *QUICK]) == 2
    assert expect in one_line(capsys)
    assert not (tmp_path / "run").exists()


def test_new_rows_get_advice_for_the_command_that_reads_them(tmp_path, capsys):
    rows = write(make_table(), tmp_path / "rows.csv")
    assert main(["reproduce", "pretrain", "--dataset", str(write(make_table().assign(kind="common"), tmp_path / "one.csv")),
                 "--label-column", "kind", "--out", str(tmp_path / "one"), *QUICK]) == 2
    assert "training labels are all one class" in capsys.readouterr().err
    assert main(["reproduce", "stacked", "--dataset", str(rows), "--out", str(tmp_path / "run"), *QUICK]) == 0
    new = make_table(10, seed=4)
    new.loc[2, "size"] = np.nan
    write(new, tmp_path / "gap.csv")
    new.loc[2, "size"] = 1e300
    write(new, tmp_path / "huge.csv")
    capsys.readouterr()
    run = str(tmp_path / "run" / "stacked")
    assert main(["score", run, str(tmp_path / "gap.csv")]) == 2
    assert "the model was trained without --impute: fill or drop those rows, or retrain" in capsys.readouterr().err
    assert main(["score", run, str(tmp_path / "huge.csv")]) == 2
    assert "column 'size' row 2 is 1e+300, too far from the training rows" in capsys.readouterr().err
    assert main(["score", run, str(rows), "--quantile", "2"]) == 2
    assert "--quantile 2.0 must be in (0, 1)" in capsys.readouterr().err


def test_data_convert_says_a_table_trains_as_it_is(tmp_path, capsys):
    rows = write(make_table(), tmp_path / "rows.csv")
    assert main(["data", "convert", str(rows), str(tmp_path / "out")]) == 2
    assert "a table trains as it is, read into memory: pass it to --dataset" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_fewlabels_runs_on_a_labeled_table(tmp_path):
    import json

    rows = write(make_table(200), tmp_path / "rows.csv")
    assert main(["fewlabels", "--dataset", str(rows), "--label-column", "kind", "--labels", "10,all", "--seeds", "1",
                 "--preset", "tutorial", "--epochs-scale", "0.02", "--out", str(tmp_path / "few")]) == 0
    summary = json.loads((tmp_path / "few" / "fewlabels.json").read_text())["summary"]
    assert [row["labels"] for row in summary] == [10, "all"]
    for row in summary:  # accuracies over the 40 held-out rows (20% of 200)
        for acc in (row["pretrained_mean"], row["scratch_mean"]):
            assert 0 <= acc <= 1 and abs(acc * 40 - round(acc * 40)) < 1e-9


def test_fewlabels_refuses_image_views_on_a_table_before_any_work(tmp_path, capsys):
    rows = write(make_table(200), tmp_path / "rows.csv")
    assert main(["fewlabels", "--dataset", str(rows), "--label-column", "kind", "--labels", "10", "--seeds", "1",
                 "--set", "finetune.pseudo_label_weight=1", "--set", "finetune.cutout=0.5",
                 "--out", str(tmp_path / "few")]) == 2
    assert "finetune.cutout=0.5 blanks a square of each image" in capsys.readouterr().err
    assert not (tmp_path / "few").exists()
