"""One description of a run, from ``aekit reproduce`` flags or an ``aekit train`` TOML file, and its execution."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import presets
from .errors import ConfigError, DataError


@dataclass
class RunSpec:
    program: str = "all"  # stacked, pretrain or all
    preset: str = "seed"  # hyperparameter preset; seed is the tutorial's
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
    config: dict = field(default_factory=dict)  # preset field -> value (text or typed)


def read_toml(path: str | Path) -> RunSpec:
    """A RunSpec from TOML: top-level keys are RunSpec fields, the ``[config]`` table overrides preset fields."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from None
    valid = [f.name for f in dataclasses.fields(RunSpec)]
    for key in table:
        if key not in valid:
            raise presets.unknown_key_error(key, valid, where=f"{path}:")
    if "config" in table and not isinstance(table["config"], dict):
        raise ConfigError(f"{path}: 'config' must be a table ([config]) of preset fields")
    hints = {"program": str, "preset": str, "dataset": str, "data_dir": str, "seed": int, "device": str, "out": str,
             "epochs_scale": float, "compile": bool, "tensorboard": str, "progress": bool, "code_size": int}
    values = {k: presets._coerce(k, v, hints[k]) for k, v in table.items() if k != "config"}
    return RunSpec(**values, config=dict(table.get("config", {})))


def build_configs(spec: RunSpec) -> dict[str, object]:
    """The typed, validated config of every program the spec runs; unknown keys are rejected."""
    if spec.program not in (*presets.PROGRAMS, "all"):
        raise ConfigError(f"program={spec.program!r} is not allowed; choose one of: stacked, pretrain, all")
    programs = list(presets.PROGRAMS) if spec.program == "all" else [spec.program]
    configs = {}
    for program in programs:
        cfg = presets.get_preset(program, spec.preset)
        mine = {k: v for k, v in spec.config.items() if k in presets.field_names(cfg)}
        cfg = presets.with_code_size(presets.apply_overrides(cfg, mine), spec.code_size)
        configs[program] = presets.scale_epochs(cfg, spec.epochs_scale)
    known = set().union(*(presets.field_names(c) for c in configs.values()))
    for key in spec.config:
        if key not in known:
            raise presets.unknown_key_error(key, sorted(known))
    return configs


def _tensorboard(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise DataError("--tensorboard needs the tensorboard package: pip install 'aekit[tensorboard]'") from None
    return SummaryWriter(str(folder))


def execute(spec: RunSpec) -> dict[str, dict]:
    """Validate everything, then run each program and write its run directory; returns metrics per program."""
    from .datasets import load_dataset
    from .programs import check_fits, run_pretrain, run_stacked, write_run
    from .runtime import select_device, setup

    configs = build_configs(spec)  # every config is checked before any work is done
    device = select_device(spec.device)
    setup(device)
    data = load_dataset(spec.dataset, data_dir=spec.data_dir)
    for cfg in configs.values():
        check_fits(cfg, data)
    out_root = Path(spec.out) if spec.out else Path("runs") / data.name
    print(data.summary())
    runners = {"stacked": run_stacked, "pretrain": run_pretrain}
    results = {}
    for program, cfg in configs.items():
        print(f"== {program} ({spec.preset} preset) on {device} ==")
        writer = _tensorboard(Path(spec.tensorboard) / program) if spec.tensorboard else None
        hook = (lambda phase, epoch, loss: writer.add_scalar(f"loss/{phase}", loss, epoch)) if writer else None
        result = runners[program](cfg, data, device, seed=spec.seed, compile=spec.compile, on_epoch=hook,
                                   progress=spec.progress)
        m = result.metrics
        if writer is not None:
            _log_images(writer, result, data.image_shape)
            writer.add_scalar("test/mse", m["test_mse"])
            if "test_accuracy" in m:
                writer.add_scalar("test/accuracy", m["test_accuracy"])
            writer.close()
        write_run(result, out_root / program, data)
        line = f"{program}: test MSE {m['test_mse']:.4f}"
        if "test_accuracy" in m:
            line += f", test accuracy {100 * m['test_accuracy']:.2f}%"
        print(f"{line}, {m['seconds']['total']:.1f} s  -> {out_root / program}", file=sys.stdout)
        results[program] = m
    return results


def _log_images(writer, result, image_shape) -> None:
    import numpy as np

    if len(image_shape) != 2:
        return
    top = result.examples.astype(np.float32) / 255.0
    grid = np.concatenate([top, result.reconstructions], axis=0).reshape(-1, 1, *image_shape)
    writer.add_images("reconstruction (inputs, then outputs)", grid, dataformats="NCHW")
