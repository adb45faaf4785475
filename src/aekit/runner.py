"""One description of a run, from ``aekit reproduce`` flags or an ``aekit train`` TOML file, and its execution."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from aekit import rundir
from aekit.data.arrays import data_fingerprint, split_warnings
from aekit.data.catalog import load_dataset
from aekit.data.images import is_image_shape, parse_size
from aekit.errors import ConfigError, DataError
from aekit.experiments import overrides, presets
from aekit.experiments.programs import arithmetic, check_fits, run_pretrain, run_stacked
from aekit.experiments.recipe import LADDER, Recipe
from aekit.experiments.recipe import keys as recipe_keys
from aekit.outputs import write_run
from aekit.runtime import World, distributed, launched_world, select_device, setup
from aekit.training.resume import ResumeStore, as_saved, check_fingerprint, read_state


@dataclass
class RunSpec:
    program: str = "all"  # stacked, pretrain or all
    preset: str = "tutorial"  # hyperparameter preset: tutorial (the TF1 tutorial's) or modern; "seed" = tutorial
    dataset: str = "mnist"  # a dataset name, an .npz file or a folder of IDX files
    data_dir: str | None = None  # searched first for <dataset>/
    seed: int = 0  # init and shuffling
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    out: str | None = None  # default runs/<dataset>
    epochs_scale: float = 1.0  # multiplies every epoch count
    code_size: int | None = None  # the innermost layer, for both programs
    compile: bool = False  # train through torch.compile
    tensorboard: str | None = None  # write TensorBoard scalars and images under this folder
    progress: bool | None = None  # progress bar (None: when stderr is a terminal)
    resume: bool = False  # continue the interrupted run saved in ``out``
    config: dict = field(default_factory=dict)  # recipe key (``noise``, ``finetune.epochs``) -> value, text or typed
    config_source: str = "--set"  # where ``config`` came from, for messages: --set, or "<file> [config]"
    image_size: str | None = None  # "WxH": resize a folder of image files to it
    label_column: str | None = None  # a table's label column
    impute: str = "none"  # a table's missing values: none (an error) or mean
    test_size: float = 0.2  # the share of a table's rows held out for testing, without a test table

    def table_options(self):
        from aekit.data.tables import TableOptions

        return TableOptions(self.label_column, self.impute, self.test_size).check()

    def load_data(self):
        """The dataset this run trains on."""
        return load_dataset(self.dataset, data_dir=self.data_dir, seed=self.seed, image_size=parse_size(self.image_size),
                            table=self.table_options())


def read_toml(path: str | Path) -> RunSpec:
    """A RunSpec from TOML: top-level keys are RunSpec fields, the ``[config]`` table sets recipe keys (a
    ``[config.finetune]`` table, or dotted keys, the fine-tuning phase's)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"--config {path}: is a folder; expected a TOML file like run.toml") from None
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot read the file ({e.strerror or e}); check its permissions") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
                          "save the TOML file as UTF-8") from None
    except (ValueError, RecursionError) as e:  # TOMLDecodeError, an over-long integer, deep nesting
        raise ConfigError(f"{path}: invalid TOML ({e})") from None
    valid = [f.name for f in dataclasses.fields(RunSpec) if f.name != "config_source"]
    for key in table:
        if key not in valid:
            raise overrides.unknown_key_error(key, valid, where=f"{path}:")
    if "config" in table and not isinstance(table["config"], dict):
        raise ConfigError(f"{path}: 'config' must be a table ([config]) of preset fields")
    hints = {"program": str, "preset": str, "dataset": str, "data_dir": str, "seed": int, "device": str, "out": str,
             "epochs_scale": float, "compile": bool, "tensorboard": str, "progress": bool, "code_size": int,
             "resume": bool, "image_size": str, "label_column": str, "impute": str, "test_size": float}
    try:
        values = {k: overrides.coerce(k, v, hints[k]) for k, v in table.items() if k != "config"}
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return RunSpec(**values, config=overrides.flatten(table.get("config", {})), config_source=f"{path} [config]")


def build_configs(spec: RunSpec, data=None) -> dict[str, Recipe]:
    """The checked recipe of every program the spec runs; unknown keys are refused. A preset whose recipe depends
    on the data (``presets.BY_SIZE``) takes it from ``data``, the loaded dataset; without it, the recipe for a
    large image dataset. Called once before any work, and again with the data."""
    if spec.program not in (*presets.PROGRAMS, "all"):
        raise ConfigError(f"program={spec.program!r} is not allowed; choose one of: stacked, pretrain, all")
    programs = list(presets.PROGRAMS) if spec.program == "all" else [spec.program]
    if spec.preset in presets.PRESET_ALIASES:
        new = presets.PRESET_ALIASES[spec.preset]
        if data is None:
            print(f"note: preset {spec.preset!r} is now called {new!r}; the old name will go", file=sys.stderr)
        spec = dataclasses.replace(spec, preset=new)
    configs = {}
    for program in programs:
        sizes = {} if data is None else {"n_train": len(data.train), "image_shape": data.image_shape}
        recipe = presets.get_preset(program, spec.preset, spec.code_size, **sizes)
        mine = {k: v for k, v in spec.config.items() if overrides.applies(recipe, k) or len(programs) == 1}
        recipe = overrides.apply_overrides(recipe, mine, where=spec.config_source)
        if data is not None:
            table = getattr(data, "table", None) is not None and recipe.architecture not in LADDER  # no code there
            recipe, notes = presets.fit_to_data(recipe, len(data.train), data.n_features if table else None,
                                                set(mine) | ({"hidden_sizes"} if spec.code_size else set()))
            for note in notes:
                print(f"note: {program}: {note}", file=sys.stderr)
        recipe = overrides.with_code_size(recipe, spec.code_size)
        configs[program] = overrides.scale_epochs(recipe, spec.epochs_scale)
    for key in spec.config:  # under program=all, each key must reach one of the programs
        if not any(overrides.applies(r, key) for r in configs.values()):
            known = sorted(set().union(*(recipe_keys(r) for r in configs.values())))
            raise overrides.unknown_key_error(key, known, where=spec.config_source)
    if not 0 <= spec.seed < 2**32:  # numpy's generators refuse negative seeds, torch's more than 64 bits
        raise ConfigError(f"seed={spec.seed} must be an integer from 0 to 2**32 - 1")
    return configs


def _tensorboard(folder: Path, purge_step: int | None = None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise DataError("--tensorboard needs the tensorboard package: pip install 'aekit[tensorboard]'") from None
    return SummaryWriter(str(folder), purge_step=purge_step)


def execute(spec: RunSpec) -> dict[str, dict]:
    """Validate everything, then run each program and write its run directory; returns metrics per program.

    The output folder is checked and locked before any work. Each program is built in its partial folder
    (``OUT/.PROGRAM.partial``: the resumable state, then the results) and swapped in whole when complete, so
    a failed run leaves the previous one as it was, and ``resume`` continues from the last saved epoch.
    Under torchrun every rank trains; rank 0 alone writes."""
    if str(spec.config.get("architecture", "")) in LADDER or spec.preset in LADDER:
        raise ConfigError(f"architecture='ladder' is a classifier, trained by {LADDER['ladder']}; "
                          "reproduce and train take the autoencoder architectures")
    configs = build_configs(spec)  # every config is checked before any work is done
    parse_size(spec.image_size)
    spec.table_options()
    spec = dataclasses.replace(spec, preset=presets.PRESET_ALIASES.get(spec.preset, spec.preset))  # noted once
    with distributed(spec.device) as (device, w):
        setup(device)
        data = spec.load_data()
        configs = build_configs(spec, data)  # the recipe for this data's size, where the preset has one
        for cfg in configs.values():
            check_fits(cfg, data, device)
        out_root = Path(spec.out) if spec.out else Path("runs") / data.name
        print(data.summary())
        for line in split_warnings(data) if w.is_main else ():
            print(line, file=sys.stderr)
        with rundir.claim(out_root) if w.is_main else contextlib.nullcontext():
            for program in configs:
                rundir.check_replaceable(out_root / program)  # before any work: never a folder of the user's own
                if (out_root / program).exists() and not spec.resume:
                    print(f"note: {out_root / program} holds a previous run; this run replaces it when it succeeds")
            w.barrier()
            return {program: _run_program(spec, program, cfg, data, device, w, out_root)
                    for program, cfg in configs.items()}


def execute_fewlabels(spec: RunSpec, method: str, labels: str, seeds: int) -> dict:
    """``aekit fewlabels``: the recipe built and checked as for ``reproduce`` (preset, ``--set``, code size, epoch
    scale), then the same prologue (device, data, a locked output folder, a resumable store); one process."""
    from aekit.experiments import fewlabels
    from aekit.outputs import write_fewlabels

    if seeds < 1:
        raise ConfigError(f"--seeds {seeds} must be at least 1")
    if method == "ladder" and spec.code_size is not None:
        raise ConfigError("--code-size is for --method autoencoder; the ladder's widths are hidden_sizes (--set)")
    cfg = build_configs(spec)["pretrain"]  # every value checked before any work
    if (cfg.architecture in LADDER) != (method == "ladder"):
        raise ConfigError(f"--method {method} with architecture={cfg.architecture!r}: the ladder network trains with "
                          "--method ladder only, and --method ladder trains only the ladder")
    if launched_world().size > 1:
        raise ConfigError("aekit fewlabels runs in one process; start it without torchrun (unset WORLD_SIZE)")
    parse_size(spec.image_size)
    spec.table_options()
    device = select_device(spec.device)
    setup(device)
    data = spec.load_data()
    cfg = build_configs(spec, data)["pretrain"]  # the preset's recipe for this data's size
    if method != "ladder":
        check_fits(cfg, data, device)
    counts = fewlabels.parse_labels(labels, len(data.train))
    print(data.summary())
    out = Path(spec.out or Path("runs") / "fewlabels")
    fp = {"command": "fewlabels", "method": method, "config": dataclasses.asdict(cfg), "protocol": fewlabels.PROTOCOL,
          "labels": counts,
          "seeds": seeds, "dataset": data_fingerprint(data), **arithmetic(device, getattr(cfg, "precision", "fp32"))}
    with rundir.claim(out):  # checked and locked before any work
        store = ResumeStore(out / "resume", fp, resume=spec.resume)
        if store.resumed:
            print(f"resuming from {out / 'resume'}")
        run = {"ladder": fewlabels.run_ladder, "propagate": fewlabels.run_propagate}.get(method, fewlabels.run)
        try:
            result = run(data, counts, seeds, device, cfg, store=store)
        finally:
            store.settle()
        write_fewlabels(result, out)
        store.finish()
    print(fewlabels.to_markdown(result))
    print(f"wrote {out / 'fewlabels.json'}, fewlabels.md and fewlabels.png")
    return result


def fingerprint(program: str, cfg, data, spec: RunSpec, w: World, device: torch.device) -> dict:
    """What makes two runs the same run, for --resume: recipe, dataset, seed, number of processes, and what decides
    the arithmetic (torch version, kind of device, resolved precision, torch.compile: :func:`arithmetic`)."""
    return {"program": program, "config": dataclasses.asdict(cfg), "dataset": data_fingerprint(data),
            "seed": spec.seed, "world_size": w.size, **arithmetic(device, cfg.precision, spec.compile)}


def _run_program(spec: RunSpec, program: str, cfg, data, device, w: World, out_root: Path) -> dict:
    target, partial = out_root / program, rundir.partial(out_root, program)
    fp = fingerprint(program, cfg, data, spec, w, device)
    if spec.resume and not (partial / "resume").exists():
        done = read_state(target / "resume")
        if done is not None and done.get("complete"):
            check_fingerprint(target / "resume", done.get("fingerprint", {}), as_saved(fp))
            try:
                metrics = json.loads((target / "metrics.json").read_text())
            except (OSError, ValueError) as e:
                raise DataError(f"{target / 'metrics.json'}: the run is complete but its metrics cannot be read "
                                f"({getattr(e, 'strerror', None) or e}); rerun without --resume to train it again") from None
            print(f"{program}: already complete in {target}; nothing to resume")
            return metrics
        print(f"note: {out_root} holds no saved state of the {program} program; it starts from the beginning")
    print(f"== {program} ({presets.PRESET_ALIASES.get(spec.preset, spec.preset)} preset) on {device}"
          f"{f', {w.size} processes' if w.size > 1 else ''} ==")
    store = ResumeStore(partial / "resume", fp, resume=spec.resume)
    if store.resumed:
        print(f"resuming from {partial / 'resume'}")
    # TensorBoard steps count epochs across the program's phases; a resumed run purges what the killed one
    # logged after its last saved epoch, so that no step appears twice
    offsets = {"train": 0} if program == "stacked" else {"pretrain": 0, "finetune": cfg.train.epochs}
    writer = hook = None
    if spec.tensorboard and w.is_main:
        point = store.resume_point(list(offsets)) if store.resumed else None
        writer = _tensorboard(Path(spec.tensorboard) / program, None if point is None else offsets[point[0]] + point[1])
        hook = lambda phase, epoch, loss: writer.add_scalar(f"loss/{phase}", loss, offsets[phase] + epoch)  # noqa: E731
    try:
        runner = run_stacked if program == "stacked" else run_pretrain
        result = runner(cfg, data, device, seed=spec.seed, compile=spec.compile, on_epoch=hook,
                        progress=spec.progress, store=store)
        m = result.metrics
        if writer is not None:
            _log_images(writer, result, data.image_shape)
            _log_embedding(writer, result, data, program)
            writer.add_scalar("test/mse", m["test_mse"])
            if "test_accuracy" in m:
                writer.add_scalar("test/accuracy", m["test_accuracy"])
    finally:
        store.settle()  # a diverged or failed run exits with its last epoch's state written whole
        if writer is not None:
            writer.close()
    if w.is_main:
        write_run(result, partial, data)
        store.finish()
        rundir.swap_in(partial, target)
    w.barrier()
    line = f"{program}: test MSE {m['test_mse']:.4f}"
    if "test_accuracy" in m:
        line += f", test accuracy {100 * m['test_accuracy']:.2f}%"
    print(f"{line}, {m['seconds']['total']:.1f} s  -> {target}", file=sys.stdout)
    return m


def _log_embedding(writer, result, data, tag: str) -> None:
    """The test codes as a TensorBoard projector embedding: labels (class names) as metadata and the images
    as a sprite. ``label_img`` must be floats in [0, 1] (uint8 sprites come out white); the sprite of 3,000
    28x28 images is 1,540 pixels wide, far inside the projector's 8192 x 8192."""
    codes = result.test_codes  # (n <= MAP_SAMPLES, code)
    n = len(codes)
    metadata = None
    if result.test_labels is not None:
        names = data.classes or tuple(str(i) for i in range(int(result.test_labels.max()) + 1))
        metadata = [names[int(y)] for y in result.test_labels]
    images = None
    if is_image_shape(data.image_shape) and data.table is None:  # (N, C, H, W) in [0, 1]
        images = torch.from_numpy(np.ascontiguousarray(_nchw(data.test.images[:n].astype(np.float32) / 255.0,
                                                             data.image_shape)))
    writer.add_embedding(torch.from_numpy(np.asarray(codes, dtype=np.float32)), metadata=metadata, label_img=images,
                         tag=f"{tag} test codes", global_step=0)


def _nchw(flat: np.ndarray, image_shape) -> np.ndarray:
    """Flat channels-last images (N, D) as (N, C, H, W), gray or color."""
    h, w = image_shape[:2]
    return flat.reshape(len(flat), h, w, -1).transpose(0, 3, 1, 2)[:, :3]


def _log_images(writer, result, image_shape) -> None:
    if not is_image_shape(image_shape) or result.column_mse is not None:  # a table's rows are no images
        return
    top = result.examples.astype(np.float32) / 255.0
    grid = _nchw(np.concatenate([top, result.reconstructions], axis=0), image_shape)
    writer.add_images("reconstruction (inputs, then outputs)", grid, dataformats="NCHW")
