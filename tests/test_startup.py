"""Start-up: --help, argument errors and ``aekit datasets`` load no heavy library; exit codes per error.

Each start-up case runs in a fresh interpreter, since this test process imported torch long ago.
No timings here (they belong in benchmarks): what is checked is which modules got imported.
"""

import importlib
import json
import os
import subprocess
import sys

import pytest

import aekit
from aekit import commands
from aekit.cli import main
from aekit.errors import ConfigError, TrainingDiverged

HEAVY = ("torch", "sklearn", "matplotlib")

# Runs main(argv) and prints, as the last line of stdout, its exit code and which of the given modules it imported.
PROBE = """
import json, sys
from aekit.cli import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "imported": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""


def probe(argv, modules, tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "AEKIT_DATA"} | {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(modules)], capture_output=True,
                         text=True, cwd=tmp_path, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # a fresh interpreter each
@pytest.mark.parametrize("argv, code", [
    (["--help"], 0),
    (["--version"], 0),
    (["reproduce", "--help"], 0),
    (["reproduce", "nosuchprogram"], 2),
    (["train"], 2),
], ids=["help", "version", "reproduce-help", "bad-program", "missing-option"])
def test_parsing_imports_neither_torch_nor_numpy(argv, code, tmp_path):
    assert probe(argv, [*HEAVY, "numpy"], tmp_path) == {"code": code, "imported": []}


def test_datasets_lists_without_torch(tmp_path):
    assert probe(["datasets"], list(HEAVY), tmp_path) == {"code": 0, "imported": []}


def test_public_names_resolve_lazily_to_their_modules():
    for name in aekit.__all__:
        value = getattr(aekit, name)
        assert getattr(importlib.import_module(value.__module__), name) is value
        assert name in dir(aekit)
    from aekit import load, run_stacked  # noqa: F401  (the form users write)

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        aekit.nope


@pytest.mark.parametrize("error, code", [(TrainingDiverged("the loss became nan at epoch 3"), 3),
                                         (ConfigError("--seeds 0 must be at least 1"), 2)])
def test_main_returns_the_errors_exit_code(error, code, monkeypatch, capsys):
    def fail(args):
        raise error

    monkeypatch.setitem(commands.COMMANDS, "datasets", fail)
    assert main(["datasets"]) == code
    assert capsys.readouterr().err == f"aekit datasets: error: {error}\n"
