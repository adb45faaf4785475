"""What the page shows: a saved autoencoder and the images to map, from its run's dataset or a user's file."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from aekit.data.catalog import load_dataset
from aekit.data.inputs import load_input
from aekit.errors import ConfigError, DataError
from aekit.inference import open_model


@dataclass
class PageSource:
    autoencoder: nn.Module  # eval mode, on the CPU
    images: np.ndarray  # (N, D) in the network's space: uint8 pixels or floats in [0, 1]
    labels: np.ndarray | None  # (N,) class indices, or None
    classes: tuple[str, ...]  # class names, where known
    image_shape: tuple[int, ...]
    title: str  # "<model> on <data>"
    table: object | None = None  # a table model's TableSchema: ``images`` are its rows' standardized features


def _table_rows(opened, model: str, path: str | None) -> PageSource:
    """A table model's page: the rows of ``path`` (a table; a folder's test table), else of the table it was
    trained on, through the model's own schema."""
    from pathlib import Path

    from aekit.data.tables import read_table, table_files

    schema = opened.table
    if path is None:
        path = schema.source.get("file")
        if not path or not Path(path).is_file():
            raise DataError(f"the table the model at {model} was trained on ({path or 'unknown'}) is not there; "
                            "pass --input TABLE.csv")
    files = table_files(Path(path))
    if files is None:  # an array of raw numbers (the model was trained on float values)
        x, _ = opened.read(path)
        return PageSource(opened.autoencoder(), x, None, (), (x.shape[1],), f"{model} on {path}", table=schema)
    file = files[1] or files[0]
    frame = read_table(file)
    x = schema.transform(frame, str(file), unknown="ignore")  # an unseen category: none of the known ones, as score --unknown ignore
    try:
        labels = schema.labels(frame, str(file))
    except DataError as e:  # labels only colour the points: the page is drawn without them
        print(f"note: points are coloured by error only: {e}")
        labels = None
    return PageSource(opened.autoencoder(), x, labels, schema.classes, (x.shape[1],), f"{model} on {file}", table=schema)


def open_source(model: str, dataset: str | None = None, data_dir: str | None = None,
                input: str | None = None, key: str | None = None) -> PageSource:
    """The model at ``model`` (a run directory or any checkpoint folder) and the images to show: ``input``
    (any array ``aekit encode`` reads), else the test split of ``dataset``, else of the dataset the run names."""
    opened = open_model(model)  # a bad model fails before any data is read
    if opened.table is not None:
        return _table_rows(opened, model, input or dataset)
    autoencoder = opened.autoencoder()
    if input is not None:
        x, shape = load_input(input, key=key)
        return PageSource(autoencoder, opened.prepare(x, what=input), None, (), shape, f"{model} on {input}")
    name = dataset or getattr(opened.network, "extra", {}).get("dataset")
    if not name:
        raise ConfigError(f"the model at {model} does not say which dataset it was trained on; "
                          "pass --dataset NAME_OR_PATH or --input FILE")
    try:
        data = load_dataset(name, data_dir=data_dir)
    except DataError as e:
        if dataset:
            raise
        raise DataError(f"{e} (the dataset the model at {model} was trained on); "
                        "pass --dataset NAME_OR_PATH (or --data-dir DIR) or --input FILE") from None
    x = opened.prepare(data.test.images, what=f"the test split of {name}")
    return PageSource(autoencoder, x, data.test.labels, tuple(data.classes), tuple(data.image_shape),
                  f"{model} on {name} (test split)")
