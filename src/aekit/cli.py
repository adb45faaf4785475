"""The ``aekit`` command line.

A user's mistake (bad data, bad key, bad value) prints one line on stderr and exits 2;
only bugs show a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import AekitError

EPILOG = "Each command has its own --help."


def _add_reproduce(sub) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run the tutorial's programs (stacked autoencoder; pretraining + fine-tuning)",
        description="Run the tutorial's stacked autoencoder ('stacked'), its pretraining + fine-tuning "
        "classifier ('pretrain'), or both ('all'). Each writes metrics.json, reconstruction.png and "
        "loss.png into OUT/<program>/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("program", choices=("stacked", "pretrain", "all"), help="which program to run")
    p.add_argument("--dataset", default="mnist",
                   help="mnist, fashion-mnist, kmnist, mnist-5k, an .npz file, or a folder of IDX files")
    p.add_argument("--data-dir", default=None, help="folder searched first for DATASET/ (then $AEKIT_DATA, the cache, /usr/share/datasets)")
    p.add_argument("--preset", default="seed", help="hyperparameter preset; 'seed' is the tutorial's")
    p.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every epoch count by this factor")
    p.add_argument("--seed", type=int, default=0, help="random seed for init and shuffling")
    p.add_argument("--device", default="auto", help="auto (cuda if present, else cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--out", default=None, help="output folder (default: runs/<dataset>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field, e.g. --set batch_size=128 --set hidden_sizes=512,64; repeatable")
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile (not faster on the 2-core CPU measured; see README)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark; writes JSON and a markdown table",
                       description="Benchmarks that write JSON and a markdown table.")
    bench = p.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    from .bench import throughput

    t = bench.add_parser("throughput", help="training speed vs the matmul limit and a reference loop; memory",
                         description=throughput.__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    throughput.add_arguments(t)


def _add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="list the datasets and where each is found",
                       description="List every named dataset, whether it is available locally, and where.")
    p.add_argument("--data-dir", default=None, help="also search DATA_DIR/<name>/ first")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="aekit", description="Autoencoders on PyTorch: the tutorial, reproduced and beyond.",
                                     epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_reproduce(sub)
    _add_datasets(sub)
    _add_bench(sub)
    return parser


def cmd_reproduce(args) -> int:
    from . import presets
    from .datasets import load_dataset
    from .programs import check_fits, run_pretrain, run_stacked, write_run
    from .runtime import select_device, setup

    programs = list(presets.PROGRAMS) if args.program == "all" else [args.program]
    overrides = presets.parse_overrides(args.overrides)
    configs = {}
    for program in programs:  # validate every config before any work is done
        cfg = presets.get_preset(program, args.preset)
        mine = {k: v for k, v in overrides.items() if k in presets.field_names(cfg)}
        configs[program] = presets.scale_epochs(presets.apply_overrides(cfg, mine), args.epochs_scale)
    known = set().union(*(presets.field_names(c) for c in configs.values()))
    for key in overrides:
        if key not in known:
            raise presets.unknown_key_error(key, sorted(known))
    device = select_device(args.device)
    setup(device)
    data = load_dataset(args.dataset, data_dir=args.data_dir)
    for cfg in configs.values():
        check_fits(cfg, data)
    out_root = Path(args.out) if args.out else Path("runs") / data.name
    print(data.summary())
    runners = {"stacked": run_stacked, "pretrain": run_pretrain}
    for program in programs:
        print(f"== {program} ({args.preset} preset) on {device} ==")
        result = runners[program](configs[program], data, device, seed=args.seed, compile=args.compile)
        m = result.metrics
        line = f"{program}: test MSE {m['test_mse']:.4f}"
        if "test_accuracy" in m:
            line += f", test accuracy {100 * m['test_accuracy']:.2f}%"
        line += f", {m['seconds']['total']:.1f} s"
        write_run(result, out_root / program, data.image_shape)
        print(f"{line}  -> {out_root / program}")
    return 0


def cmd_datasets(args) -> int:
    from .datasets import availability

    rows = availability(args.data_dir)
    width = max(len(n) for n, _ in rows)
    for name, where in rows:
        print(f"{name:<{width}}  {where}")
    return 0


def cmd_bench(args) -> int:
    from .runtime import setup, select_device

    setup(select_device("cpu"))
    from .bench import throughput

    return {"throughput": throughput.run_cli}[args.bench](args)


COMMANDS = {"reproduce": cmd_reproduce, "datasets": cmd_datasets, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AekitError as e:
        print(f"aekit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aekit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
