"""What each ``aekit`` command does, given its parsed arguments; returns the exit code."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aekit.errors import ConfigError, DataError
from aekit.fileio import atomic_open, check_destination


def cmd_reproduce(args) -> int:
    from aekit.experiments.overrides import parse_overrides
    from aekit.runner import RunSpec, execute

    execute(RunSpec(program=args.program, preset=args.preset, dataset=args.dataset, data_dir=args.data_dir,
                    seed=args.seed, device=args.device, out=args.out, epochs_scale=args.epochs_scale, code_size=args.code_size,
                    compile=args.compile, tensorboard=args.tensorboard, progress=False if args.no_progress else None,
                    image_size=args.image_size, label_column=args.label_column, impute=args.impute,
                    test_size=args.test_size,
                    config=parse_overrides(args.overrides), resume=args.resume))
    return 0


def cmd_train(args) -> int:
    import dataclasses

    from aekit.runner import execute, read_toml

    spec = read_toml(args.config)
    execute(dataclasses.replace(spec, resume=True) if args.resume else spec)
    return 0


def cmd_fewlabels(args) -> int:
    from aekit.experiments.overrides import parse_overrides
    from aekit.runner import RunSpec, execute_fewlabels

    if args.method == "ladder" and args.preset is not None:
        raise ConfigError("--preset is for --method autoencoder or propagate; the ladder network has its own recipe (--set changes it)")
    preset = "ladder" if args.method == "ladder" else args.preset or "modern"
    execute_fewlabels(RunSpec(program="pretrain", preset=preset, dataset=args.dataset, data_dir=args.data_dir,
                              label_column=args.label_column, impute=args.impute, test_size=args.test_size,
                              device=args.device, out=args.out, epochs_scale=args.epochs_scale, code_size=args.code_size,
                              config=parse_overrides(args.overrides), resume=args.resume),
                      method=args.method, labels=args.labels, seeds=args.seeds)
    return 0


def cmd_datasets(args) -> int:
    from aekit.data.catalog import availability

    rows = availability(args.data_dir)
    width = max(len(n) for n, _ in rows)
    for name, where in rows:
        print(f"{name:<{width}}  {where}")
    return 0


def cmd_data(args) -> int:
    from aekit.data.convert import convert
    from aekit.data.images import parse_size

    print(convert(args.src, args.dir, data_dir=args.data_dir, image_size=parse_size(args.image_size)))
    return 0


RECONSTRUCTION_FIGURE = "reconstruction.png"  # aekit reconstruct's -o default


def _open(args):
    from aekit.inference import open_model

    for out in (args.output, getattr(args, "figure", None)):  # an unwritable -o fails before any work
        if out:
            check_destination(out)
    opened = open_model(args.model)  # a bad model fails before the input is read
    if opened.table is not None and args.command == "reconstruct" and args.output == RECONSTRUCTION_FIGURE:
        args.output = str(Path(args.output).with_suffix(".csv"))  # a table's rows come back as rows
        check_destination(args.output)
    x, shape = opened.read(args.input, key=args.key, unknown=args.unknown)
    return opened, x, shape


def cmd_encode(args) -> int:
    opened, x, _ = _open(args)
    codes = opened.encode(x)
    with atomic_open(args.output, "wb") as f:
        np.save(f, codes)
    print(f"encoded {len(x)} samples -> {codes.shape[1]}-d codes in {args.output}")
    return 0


def cmd_reconstruct(args) -> int:
    from aekit.figures import reconstruction_grid

    if args.n < 1:
        raise ConfigError(f"-n {args.n} must be at least 1")
    opened, x, shape = _open(args)
    if opened.table is not None:  # rows of a table: written back in the table's units, as CSV
        if Path(args.output).suffix.lower() != ".csv":
            raise ConfigError(f"-o {args.output}: the model was trained on a table; its reconstructions are written as "
                              "CSV: pass -o FILE.csv")
        import pandas as pd

        rows = opened.table.unscale(opened.reconstruct(x))
        with atomic_open(args.output, "w") as f:
            pd.DataFrame(rows, columns=[c.name for c in opened.table.columns]).to_csv(f, index=False)
        print(f"wrote the reconstructions of {len(x)} rows to {args.output}")
        return 0
    x = x[: args.n]
    recon = opened.reconstruct(x)
    shown = opened.scaled(x)
    reconstruction_grid(shown, recon, shape, args.output, title=f"{Path(args.input).name}: inputs above reconstructions")
    print(f"wrote {args.output}")
    return 0


def cmd_score(args) -> int:
    from aekit.anomalies import explain
    from aekit.inference import check_threshold

    check_threshold(args.contamination, args.quantile)  # before any work
    opened, x, shape = _open(args)
    method = args.method or opened.methods[0]
    if method not in opened.methods:
        raise DataError(f"--method {method}: the model at {opened.source} keeps no training samples to compare with "
                        "(trained before aekit kept them, or an estimator fitted with scoring='reconstruction'); "
                        "use --method reconstruction, or retrain")
    errors = opened.scores(x, method)
    threshold, basis = opened.threshold(args.contamination, errors, args.quantile, method)
    outlier = errors > threshold
    worst = np.argsort(errors)[::-1][:10]
    explained = np.union1d(np.flatnonzero(outlier), worst)  # where the error is, for every flagged row
    squared = opened.differences(x[explained], method)
    why = dict(zip(explained.tolist(), explain(squared, shape, opened.table)))
    if args.output:
        import csv

        with atomic_open(args.output, "w") as f:
            rows = csv.writer(f, lineterminator="\n")
            rows.writerow(["index", "error" if method == "reconstruction" else "distance", "outlier", "where"])
            rows.writerows([i, f"{e:.8g}", int(o), why[i] if o else ""] for i, (e, o) in enumerate(zip(errors, outlier)))
    if args.figure:
        _score_figure(opened, x, worst, errors, squared[np.searchsorted(explained, worst)], shape, args.figure)
    rule = f"quantile {args.quantile}" if args.quantile is not None else f"contamination {args.contamination}"
    what = "reconstruction error" if method == "reconstruction" else "distance to the nearest training samples"
    print(f"{len(x)} samples: mean {what} {errors.mean():.6f}, threshold {threshold:.6f} "
          f"({rule} of {basis}), {int(outlier.sum())} outliers")
    print(f"worst (and where their {'error is' if method == 'reconstruction' else 'distance comes from'}):")
    for i in worst[:5]:
        print(f"  #{i} {errors[i]:.5f}{' outlier' if outlier[i] else ''}: {why[int(i)]}")
    if args.output:
        print(f"wrote {args.output}")
    return 0


def _score_figure(opened, x, worst, errors, squared, shape, path) -> None:
    """Images: the worst-scored above their reconstructions; rows of a table or vectors: how each worst row's
    score divides among its columns."""
    from aekit import figures
    from aekit.anomalies import feature_shares
    from aekit.data.images import is_image_shape

    if opened.table is None and is_image_shape(shape):
        figures.reconstruction_grid(opened.scaled(x[worst]), opened.reconstruct(x[worst]), shape, path,
                                    title="worst-scored samples above their reconstructions",
                                    labels=[f"{errors[i]:.3f}" for i in worst])
        return
    shares, names = feature_shares(squared, opened.table)
    figures.row_shares(shares, names, [f"#{i} ({errors[i]:.3g})" for i in worst], path,
                       title="worst-scored rows: the share of each column in the score")


def cmd_compare(args) -> int:
    from aekit.data.catalog import load_dataset
    from aekit.figures import image_rows
    from aekit.inference import open_model

    if args.n < 1:
        raise ConfigError(f"-n {args.n} must be at least 1")
    names = args.names.split(",") if args.names else [f"{Path(m).parent.name}/{Path(m).name}" for m in args.models]
    if len(names) != len(args.models):
        raise ConfigError(f"--names gives {len(names)} names for {len(args.models)} models; give one per model")
    check_destination(args.output)  # before any work
    models = [open_model(m) for m in args.models]
    for opened in models:
        if opened.table is not None:
            raise DataError(f"the model at {opened.source} was trained on a table; compare draws images "
                            "(aekit score compares rows)")
    dataset = args.dataset or getattr(models[0].autoencoder(), "extra", {}).get("dataset")
    if not dataset:
        raise ConfigError(f"the model at {models[0].source} does not say which dataset it was trained on; "
                          "pass --dataset NAME_OR_PATH")
    data = load_dataset(dataset, data_dir=args.data_dir)
    x = data.test.images
    shown = x[: args.n]
    rows = [("input", models[0].scaled(shown, what=f"the test split of {dataset}"))]
    for name, opened in zip(names, models):
        mse = float(opened.errors(x).mean())  # the whole test split, as the run's test MSE
        rows.append((f"{name}\nMSE {mse:.4f}", opened.reconstruct(shown)))
        print(f"{name}: test MSE {mse:.4f} on {len(x)} test images of {data.name}")
    image_rows(rows, data.image_shape, args.output,
               title=f"{data.name}: test images, then each model's reconstructions (test MSE over the whole test split)")
    print(f"wrote {args.output}")
    return 0


def cmd_export(args) -> int:
    from aekit.export import export_onnx
    from aekit.inference import open_model

    check_destination(args.onnx)  # an unwritable --onnx fails before the model is read
    width, out, contract = export_onnx(open_model(args.model), args.onnx, part=args.part)
    print(f"exported the {args.part} ({width} -> {out}, dynamic batch) to {args.onnx}")
    print(f"its input x: {contract}")
    return 0


def cmd_explore(args) -> int:
    from aekit.explore.page import page_data, render
    from aekit.explore.source import open_source

    check_destination(args.output)  # an unwritable -o fails before any work
    src = open_source(args.model, dataset=args.dataset, data_dir=args.data_dir, input=args.input, key=args.key)
    data = page_data(src, max_points=args.max_points, method=args.map, seed=args.seed, weights=args.weights)
    with atomic_open(args.output, "wb") as f:
        f.write(render(data).encode("utf-8"))
    size = Path(args.output).stat().st_size
    print(f"wrote {args.output} ({size / 1e6:.1f} MB): {data['n']} points of {src.title}; open it in a browser")
    if data["weights_dtype"] == "float16":
        print(f"note: the in-page decoder uses float16 weights (half the size); decoded pixels differ from torch's "
              f"by up to {data['weights_error']:.1e}; --weights float32 keeps them exact")
    return 0


COMMANDS = {
    "reproduce": cmd_reproduce, "train": cmd_train, "fewlabels": cmd_fewlabels, "datasets": cmd_datasets, "data": cmd_data,
    "encode": cmd_encode,
    "reconstruct": cmd_reconstruct, "score": cmd_score, "compare": cmd_compare, "export": cmd_export,
    "explore": cmd_explore,
}
