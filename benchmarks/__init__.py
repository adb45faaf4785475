"""aekit's benchmarks: throughput (speed, memory), streaming, scaling, the explorer page, one-class anomaly
detection, quality, the quality-per-second frontier, fuzzing the readers, and the report of them all.

They live at the repository root, outside the wheel, and import aekit as a user would. Run one from a
checkout with ``python -m benchmarks NAME [options]`` (``python -m benchmarks --help`` lists them); each
writes JSON and a markdown table into benchmarks/results/. The peers' requirements (TensorFlow, Keras,
pythae) are in benchmarks/requirements.txt.

Each benchmark module defines ``NAME`` (the command's name: the module's name, with ``-`` for ``_``),
``add_arguments(parser)``, ``run_cli(args)`` and a docstring. ``python -m benchmarks --help`` reads the
docstrings without importing the modules, and ``python -m benchmarks NAME`` imports only that one; all but
fuzz keep torch, scikit-learn and matplotlib out of their top-level imports, so their ``--help`` is fast.
"""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path
from types import ModuleType

# the order `python -m benchmarks --help` lists them in
NAMES = ("throughput", "fidelity", "streaming", "scaling", "explore", "anomaly", "knn-space", "tables", "color",
         "pretrain-gain", "quality", "frontier", "frontier-search", "fuzz", "report")
ROOT = Path(__file__).resolve().parent.parent  # the repository root, which holds this package


def module_name(name: str) -> str:
    """``benchmarks.frontier_search`` for ``frontier-search``."""
    return f"{__name__}.{name.replace('-', '_')}"


def load(name: str) -> ModuleType:
    return importlib.import_module(module_name(name))


def benchmarks() -> list[ModuleType]:
    """The benchmark modules of :data:`NAMES`, imported (fuzz imports torch)."""
    return [load(name) for name in NAMES]


def summary(name: str) -> str:
    """The first line of a benchmark's docstring, read from its source without importing it."""
    path = Path(__file__).with_name(module_name(name).rsplit(".", 1)[1] + ".py")
    doc = ast.get_docstring(ast.parse(path.read_text())) or name
    return doc.strip().splitlines()[0].rstrip(".")


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment with the repository root first on PYTHONPATH, so ``python -m benchmarks.X`` in a child
    process finds this package whatever its working directory."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}
