"""What a run leaves on disk: figures, a checkpoint and ``metrics.json`` (written last), or the few-label
tables and plot. Each file is written atomically; ``aekit.rundir`` makes the folder as a whole appear at once."""

from __future__ import annotations

import time
from pathlib import Path

from aekit import figures
from aekit.data.arrays import Dataset
from aekit.experiments.builders import first_layer_images
from aekit.experiments.fewlabels import to_markdown
from aekit.experiments.programs import RunResult
from aekit.fileio import atomic_open, write_json

MIN_MAP_ROWS = 3  # a 2-D projection of fewer codes says nothing (and PCA needs 2 rows for 2 components)


def write_run(result: RunResult, out: Path, data: Dataset) -> None:
    """Figures, then the checkpoint (``out`` itself; the classifier in ``out/classifier``), ``metrics.json`` last;
    the seconds each took join ``metrics["seconds"]`` (``python -m benchmarks throughput`` reads the command's
    parts there)."""
    m = result.metrics
    t0 = time.perf_counter()
    image_shape, classes = data.image_shape, data.classes
    name = f"{m['program']} on {m['dataset']}"
    if data.table is not None:  # rows of numbers: the error of each column, not pictures
        figures.column_errors(result.column_mse, out / "columns.png",
                              title=f"{name}: test MSE per column (standardized units)")
    else:
        figures.reconstruction_grid(result.examples / 255.0, result.reconstructions, image_shape,
                                    out / "reconstruction.png", title=f"{name}: test MSE {m['test_mse']:.4f}")
    figures.loss_curves({k: h.epoch_loss for k, h in result.curves.items()}, out / "loss.png", title=name,
                        validation={k: v for k, h in result.curves.items() if (v := h.validation())})
    if len(result.test_codes) >= MIN_MAP_ROWS:
        figures.code_map(result.test_codes, result.test_labels, out / "codes.png", classes=classes,
                         title=f"{name}: test codes")
    else:
        print(f"note: codes.png skipped: the test split has {len(result.test_codes)} image(s); "
              f"a 2-D map of codes needs at least {MIN_MAP_ROWS}")
    filters = first_layer_images(result.autoencoder, image_shape)
    if filters is not None:
        figures.filters(filters, filters.shape[1:], out / "filters.png", title=f"{name}: first-layer filters")
    if hasattr(result.autoencoder, "sample") and len(image_shape) == 2:
        figures.vae_figures(result.autoencoder, data.test.images, image_shape, out)
    if data.table is None:
        figures.reconstruction_grid(data.test.images[result.worst] / 255.0, result.worst_reconstructions, image_shape,
                                    out / "anomalies.png",
                                    title=f"{name}: the 10 worst-reconstructed test images (most anomalous)",
                                    labels=[f"{result.test_errors[i]:.3f}" for i in result.worst])
    t1 = time.perf_counter()
    extra = {"dataset": m["dataset"], "program": m["program"], "test_mse": m["test_mse"]}
    if data.table is not None:
        extra["table"] = data.table.to_json()  # encode / reconstruct / score apply it to new rows
    if result.neighbors is not None:
        extra["neighbors_norm_power"] = result.neighbors_norm_power
    arrays = {"train_error_quantiles": result.train_error_quantiles,
              "validation_error_quantiles": result.validation_error_quantiles, "neighbors": result.neighbors,
              "validation_neighbor_quantiles": result.validation_neighbor_quantiles}
    arrays = {k: v for k, v in arrays.items() if v is not None}
    result.autoencoder.save(out, extra=extra, arrays=arrays)
    if result.classifier is not None:
        result.classifier.save(out / "classifier", extra={**extra, "test_accuracy": m["test_accuracy"], "classes": list(classes)})
    m["seconds"] = {**m["seconds"], "figures": t1 - t0, "checkpoint": time.perf_counter() - t1}
    write_json(out / "metrics.json", m)


def write_fewlabels(result: dict, out: Path) -> None:
    """``fewlabels.png``, ``fewlabels.md`` and ``fewlabels.json`` of an ``aekit fewlabels`` run."""
    figures.fewlabels_curves(result, out / "fewlabels.png")
    with atomic_open(out / "fewlabels.md", "w") as f:
        f.write(to_markdown(result))
    write_json(out / "fewlabels.json", result)
