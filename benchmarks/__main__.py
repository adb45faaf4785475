"""``python -m benchmarks NAME [options]``: run one benchmark from a checkout; ``--help`` lists them."""

from __future__ import annotations

import argparse
import sys

from benchmarks import NAMES, load, summary
from benchmarks.common import script_main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in NAMES:  # import only the benchmark that runs
        return script_main(load(argv[0]), argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="aekit's benchmarks, run from a checkout; each writes JSON and a markdown table into "
                    "benchmarks/results/.",
        usage="python -m benchmarks [-h] NAME [options]",
        epilog="benchmarks:\n" + "\n".join(f"  {name:17} {summary(name)}" for name in NAMES)
               + "\n\nEach benchmark has its own --help: python -m benchmarks NAME --help")
    parser.add_argument("name", choices=NAMES, metavar="NAME", help="the benchmark to run (listed below)")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")
    if not argv:
        parser.error(f"name a benchmark: {', '.join(NAMES)}")
    args = parser.parse_args(argv)  # --help, and an unknown NAME (exit 2), end here
    return script_main(load(args.name), args.options)


if __name__ == "__main__":
    sys.exit(main())
