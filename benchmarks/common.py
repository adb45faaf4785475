"""What every benchmark shares: the machine and commit that measured a result, markdown tables, and
writing JSON plus markdown atomically. Light imports only: ``python -m benchmarks NAME --help`` imports it."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from aekit.errors import AekitError, ConfigError
from aekit.fileio import atomic_open, write_json


def commit() -> str | None:
    """The short git commit of this code, with ``+dirty`` when tracked files differ; None outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode or dirty.returncode:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine() -> dict:
    """What measured a result: Python, torch, CPUs, processor and the code's commit (stored in each JSON)."""
    import torch

    from aekit.runtime import available_cpus

    return {"python": platform.python_version(), "torch": torch.__version__, "cpus": available_cpus(),
            "processor": platform.processor() or platform.machine(), "cpu_model": cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **({"isa_limits": limits} if (limits := {k: os.environ[k] for k in ISA_LIMITS if k in os.environ}) else {}),
            "commit": commit()}


def cpu_model() -> str | None:
    """The CPU's name as Linux reports it: speed ratios differ between CPU makers with the same vector width."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        return None


# Environment variables that cap the vector instructions PyTorch (ATen, MKL, oneDNN) and TensorFlow's oneDNN use:
# with them an AVX-512 machine runs the code paths of an AVX2-only one (recorded, so that a result says so).
ISA_LIMITS = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")


def timed(fn, min_seconds: float = 0.3) -> float:
    """Seconds per call of ``fn``, after a warm-up call, over at least ``min_seconds`` and 3 calls."""
    fn()
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < min_seconds or n < 3:
        fn()
        n += 1
    return elapsed / n


def positive_ints(option: str, text: str, example: str) -> tuple[int, ...]:
    """``"32,128"`` as (32, 128); anything but comma-separated positive integers is a ConfigError naming ``option``."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected comma-separated integers like {example}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{option} {text!r}: expected positive integers like {example}")
    return values


def markdown_table(header: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:,.3g}" if isinstance(v, float) and abs(v) < 1000 else (f"{v:,.0f}" if isinstance(v, float) else str(v))

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_report(result: dict, markdown: str, json_path: str | Path, md_path: str | Path | None = None) -> None:
    json_path = Path(json_path)
    write_json(json_path, result)
    with atomic_open(md_path or json_path.with_suffix(".md"), "w") as f:
        f.write(markdown)


def finish(result: dict, markdown: str, json_path: str | Path) -> int:
    """Write the report, show the table, say where it went."""
    write_report(result, markdown, json_path)
    print(markdown)
    print(f"wrote {json_path} and {Path(json_path).with_suffix('.md')}")
    return 0


def script_main(module, argv=None) -> int:
    """``python -m benchmarks NAME``: the module's arguments and run_cli, with aekit's clean errors (one line on
    stderr and the error's exit code for an AekitError)."""
    prog = f"python -m benchmarks {module.NAME}"
    parser = argparse.ArgumentParser(prog=prog, description=module.__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    module.add_arguments(parser)
    try:
        return module.run_cli(parser.parse_args(argv))
    except AekitError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code
