"""The ``aekit`` command line: argument parsing only; the work is in :mod:`aekit.commands`.

A user's mistake (bad data, bad key, bad value) prints one line on stderr and exits with the
error's ``exit_code`` (2; 3 when training diverged); only bugs show a traceback.

Parsing imports nothing heavy: ``aekit --help``, an argument error or ``aekit datasets`` answers
without loading torch, scikit-learn or matplotlib (tests/test_startup.py checks it); each command
imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys

from aekit.errors import AekitError

Formatter = argparse.ArgumentDefaultsHelpFormatter


def _add_run_options(p) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed for init and shuffling")
    p.add_argument("--device", default="auto", help="auto (cuda if present, else cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile (not faster on the 2-core CPU measured; see docs/performance.md)")
    p.add_argument("--tensorboard", default=None, metavar="DIR", help="write TensorBoard loss scalars and reconstruction images")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run saved in the output folder from its last epoch")


def _add_table_options(p) -> None:
    p.add_argument("--label-column", default=None, metavar="NAME", help="a table's label column (default: unlabeled rows)")
    p.add_argument("--impute", default="none", choices=("none", "mean"),
                   help="a table's missing values: none (an error naming the column) or mean (numbers: the training "
                   "mean; text: the most frequent value)")
    p.add_argument("--test-size", type=float, default=0.2,
                   help="the share of a table's rows held out for testing (stratified by label), when no test table is given")


def _add_reproduce(sub) -> None:
    p = sub.add_parser(
        "reproduce", formatter_class=Formatter,
        help="run the tutorial's programs (stacked autoencoder; pretraining + fine-tuning)",
        description="Run the tutorial's stacked autoencoder ('stacked'), its pretraining + fine-tuning classifier "
        "('pretrain'), or both ('all'). Each writes metrics.json, figures and a checkpoint into OUT/<program>/.",
    )
    p.add_argument("program", choices=("stacked", "pretrain", "all"), help="which program to run")
    p.add_argument("--dataset", default="mnist",
                   help="mnist, fashion-mnist, kmnist, mnist-5k, an .npz file, a table (.csv, .parquet, or a folder "
                   "with train.csv and test.csv), a folder of images (train/, test/), a folder of IDX files, "
                   "or a folder of .npy files (see aekit data convert)")
    p.add_argument("--data-dir", default=None, help="folder searched first for DATASET/ (then $AEKIT_DATA, the cache, /usr/share/datasets)")
    p.add_argument("--preset", default="tutorial", choices=("tutorial", "modern", "conv", "seed"),
                   help="hyperparameters: 'tutorial' is the TF1 tutorial's, 'modern' the best recipe found, 'conv' "
                   "(pretrain only) a convolutional autoencoder and classifier ('seed' is the old name of 'tutorial')")
    p.add_argument("--code-size", type=int, default=None, help="the innermost layer (the code), for both programs")
    p.add_argument("--image-size", default=None, metavar="WxH",
                   help="resize a folder of image files to W x H pixels (without it, all must have one size)")
    _add_table_options(p)
    p.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every epoch count by this factor")
    p.add_argument("--out", default=None, help="output folder (default: runs/<dataset>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change a recipe key: a field (hidden_sizes=512,64, noise=mask) or a phase's (epochs=5 and "
                        "learning_rate=0.01 are the autoencoder's training, finetune.epochs=20 the fine-tuning's); "
                        "repeatable")
    _add_run_options(p)


def _add_train(sub) -> None:
    p = sub.add_parser("train", formatter_class=Formatter, help="run what a TOML file describes",
                       description="Run a program described by a TOML file. Top-level keys: program, preset, dataset, "
                       "data_dir, seed, device, out, epochs_scale, code_size, compile, tensorboard, progress, resume; the "
                       "[config] table sets recipe keys as --set does (a [config.finetune] table, or dotted keys like "
                       "finetune.epochs, the fine-tuning phase's). Unknown keys are rejected.")
    p.add_argument("--config", required=True, metavar="RUN.toml", help="the run description")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run saved in the output folder from its last epoch")


def _add_model_io(sub, name: str, help: str, description: str):
    p = sub.add_parser(name, help=help, description=description, formatter_class=Formatter)
    p.add_argument("model", metavar="MODEL", help="a checkpoint folder: a run directory, or one written by save()")
    p.add_argument("input", metavar="INPUT", help=".npy, .npz (see --key), an IDX file, a folder of images, or a table "
                   "(.csv, .parquet) for a model trained on one")
    p.add_argument("--key", default=None, help="array name inside an .npz INPUT (default: x, x_test, x_train, or the only one)")
    p.add_argument("--unknown", default="error", choices=("error", "ignore"),
                   help="a table's text value unseen in training: an error naming it, or encoded as none of the known ones")
    return p


def _add_inference(sub) -> None:
    p = _add_model_io(sub, "encode", "write the codes of INPUT as .npy", "Encode INPUT with MODEL's encoder.")
    p.add_argument("-o", "--output", default="codes.npy", help="output .npy file")
    p = _add_model_io(sub, "reconstruct", "draw INPUT above its reconstructions",
                      "Save a grid of the first N images of INPUT above MODEL's reconstructions; for a model trained on "
                      "a table, write every row's reconstruction (in the table's units) as CSV.")
    p.add_argument("-o", "--output", default="reconstruction.png", help="output .png file (for a table: .csv, by default "
                   "reconstruction.csv)")
    p.add_argument("-n", type=int, default=10, help="images to show")
    p = _add_model_io(sub, "score", "per-sample anomaly scores and an outlier threshold",
                      "Score INPUT (higher = more anomalous) by the mean distance to the 5 nearest training samples the "
                      "model keeps (--method knn, the default where it keeps them), or by reconstruction error. The "
                      "threshold is the (1 - contamination) quantile of the training errors (PyOD's meaning of "
                      "contamination; of the validation samples' distances for knn), or a quantile of the validation "
                      "scores (--quantile). Each flagged sample is explained: the columns (tables) or the image region "
                      "that carry most of its score (its distance to the nearest training samples, or its "
                      "reconstruction error).")
    p.add_argument("--method", choices=("knn", "reconstruction"), default=None,
                   help="the score: knn where the model keeps training samples, else reconstruction")
    p.add_argument("--contamination", type=float, default=0.01, help="expected share of outliers in the training data")
    p.add_argument("--quantile", type=float, default=None,
                   help="instead, flag errors above this quantile of the validation errors (e.g. 0.99)")
    p.add_argument("-o", "--output", default=None, help="write index,score,outlier,where rows to this .csv file (the "
                   "score column is named error or distance)")
    p.add_argument("--figure", default=None, metavar="PNG", help="draw the worst-scored samples: images above "
                   "their reconstructions; rows of a table (or of other vectors) as each column's share of their scores")


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", formatter_class=Formatter, help="draw several models' reconstructions of the same images",
                       description="Draw the first N test images, then each MODEL's reconstructions of them, one row per "
                       "model, with its test MSE over the whole test split: e.g. the tutorial's and the modern preset's.")
    p.add_argument("models", metavar="MODEL", nargs="+", help="run directories or checkpoint folders with a decoder")
    p.add_argument("-o", "--output", default="compare.png", help="output .png file")
    p.add_argument("-n", type=int, default=10, help="images to show")
    p.add_argument("--names", default=None, help="comma-separated row names, one per MODEL (default: their folders)")
    p.add_argument("--dataset", default=None, help="dataset whose test split to draw (default: the first model's)")
    p.add_argument("--data-dir", default=None, help="folder searched first for DATASET/")


def _add_export(sub) -> None:
    p = sub.add_parser("export", formatter_class=Formatter, help="export a model to ONNX",
                       description="Export MODEL's encoder (or decoder, or whole autoencoder) to ONNX, input scaling included.")
    p.add_argument("model", metavar="MODEL", help="a checkpoint folder")
    p.add_argument("--onnx", required=True, metavar="FILE", help="output .onnx file")
    p.add_argument("--part", default="encoder", choices=("encoder", "decoder", "autoencoder"), help="what to export")


def _add_explore(sub) -> None:
    p = sub.add_parser("explore", formatter_class=Formatter, help="write an interactive HTML page of a model's codes",
                       description="Write one self-contained HTML page (no network; opens from file://): a zoomable 2-D map "
                       "of the test set's codes coloured by label or reconstruction error, each image beside its "
                       "reconstruction, the worst reconstructed first, and interpolations decoded in the page.")
    p.add_argument("model", metavar="RUN", help="a run directory or any checkpoint folder with a decoder")
    p.add_argument("-o", "--output", default="explore.html", help="output .html file")
    p.add_argument("--dataset", default=None, help="dataset whose test split to map (default: the one the run was trained on)")
    p.add_argument("--data-dir", default=None, help="folder searched first for DATASET/")
    p.add_argument("--input", default=None, metavar="FILE", help="map these images instead: .npy, .npz, an IDX file or a folder of .png")
    p.add_argument("--key", default=None, help="array name inside an .npz INPUT")
    p.add_argument("--map", default="pca", choices=("pca", "tsne"), help="how codes become 2-D: PCA, or t-SNE (slower)")
    p.add_argument("--max-points", type=int, default=None, help="at most this many images, drawn at random (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random subset and of t-SNE")
    p.add_argument("--weights", default="auto", choices=("auto", "float32", "float16"),
                   help="the in-page decoder's weights; auto: float16 only where float32 would take the page over 10 MB")


def _add_fewlabels(sub) -> None:
    p = sub.add_parser("fewlabels", formatter_class=Formatter, help="pretrained vs from-scratch accuracy with few labels",
                       description="Pretrain on all training images, fine-tune on N class-balanced labels, and compare "
                       "with the same network trained from scratch on the same labels. The modern recipe then goes on "
                       "fine-tuning with the other training images as confident pseudo-labels (kept only if that helps "
                       "on validation); two more columns show each ingredient alone. Writes fewlabels.json, "
                       "fewlabels.md and fewlabels.png into OUT.")
    p.add_argument("--dataset", default="mnist-5k", help="a labeled dataset name or path")
    p.add_argument("--data-dir", default=None, help="folder searched first for DATASET/")
    _add_table_options(p)
    p.add_argument("--labels", default="100,300,1000,all", help="comma-separated label counts; 'all' uses every label")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..SEEDS-1, each with its own pretraining and label draw")
    p.add_argument("--out", default="runs/fewlabels", help="output folder")
    p.add_argument("--method", choices=("autoencoder", "ladder", "propagate"), default="autoencoder",
                   help="autoencoder: the pretrain program's recipe (--preset); ladder: a ladder network (Rasmus et al. "
                   "2015), pretrained with its denoising cost, then fine-tuned with it on the unlabeled images; "
                   "propagate: the autoencoder pretrained (--preset), then Poisson learning on a kNN graph of its codes "
                   "instead of fine-tuning")
    p.add_argument("--preset", default=None, choices=("tutorial", "modern", "conv"),
                   help="the pretrain program's preset, for --method autoencoder or propagate (default: modern)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change a key of the method's recipe, as reproduce takes them (the ladder's: its preset's "
                   "recipe, architecture='ladder'); repeatable")
    p.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every epoch count by this")
    p.add_argument("--code-size", type=int, default=None, help="the innermost layer (--method autoencoder)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run saved in OUT/resume")


def _add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="list the datasets and where each is found",
                       description="List every named dataset, whether it is available locally, and where.")
    p.add_argument("--data-dir", default=None, help="also search DATA_DIR/<name>/ first")


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="convert a dataset into a folder of .npy files for datasets bigger than memory",
                       description="Dataset tools.")
    data = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = data.add_parser("convert", formatter_class=Formatter, help="write SRC as a dataset folder of .npy files",
                        description="Write SRC as a folder of x_train.npy, x_test.npy (uint8) and the labels y_*.npy, "
                        "chunk by chunk; training opens it memory-mapped and streams it, so it may be bigger than "
                        "memory. SRC: a dataset name (mnist, fashion-mnist, kmnist, mnist-5k; keeps its validation "
                        "split as x_val.npy), a folder of IDX files, an .npz with x_train and x_test, or a folder of "
                        "images (PNG, JPEG, ...) with train/ and test/ subfolders (one subfolder per class for labels).")
    c.add_argument("src", metavar="SRC", help="dataset name, IDX folder, .npz file or image folder")
    c.add_argument("--image-size", default=None, metavar="WxH", help="resize an image folder's images to W x H pixels")
    c.add_argument("dir", metavar="DIR", help="the folder to write (empty, new, or an earlier dataset folder it replaces)")
    c.add_argument("--data-dir", default=None, help="folder searched first for a named SRC")


def build_parser() -> argparse.ArgumentParser:
    from aekit import __version__

    parser = argparse.ArgumentParser(prog="aekit", description="Autoencoders on PyTorch: the tutorial, reproduced and beyond.",
                                     epilog="Each command has its own --help.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_reproduce, _add_train, _add_fewlabels, _add_datasets, _add_data, _add_inference, _add_compare,
                _add_export, _add_explore):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # --help and argument errors (exit 2) end here
    from aekit import commands

    try:
        return commands.COMMANDS[args.command](args)
    except AekitError as e:
        print(f"aekit {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("aekit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
