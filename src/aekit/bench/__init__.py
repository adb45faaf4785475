"""Benchmarks: throughput (speed, memory), one-class anomaly detection, quality, and the report of them all.
Run them with ``aekit bench ...`` or ``python benchmarks/<name>.py``; each writes JSON and a markdown table.

Each benchmark module defines ``NAME`` (its module name), ``add_arguments(parser)``, ``run_cli(args)``
and a docstring, and keeps torch, scikit-learn and matplotlib out of its top-level imports: the CLI
imports every benchmark to build ``aekit bench --help``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

NAMES = ("throughput", "streaming", "scaling", "explore", "anomaly", "quality", "frontier", "report")  # the order `aekit bench --help` lists them in


def benchmarks() -> list[ModuleType]:
    """The benchmark modules of :data:`NAMES`, imported; one not written yet is left out."""
    found = []
    for name in NAMES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            continue
        if hasattr(module, "run_cli"):  # report.py is a helper until it becomes a benchmark (issue 13)
            found.append(module)
    return found
