"""CONTRIBUTING.md's worked example: one new architecture file plus one registry line, and every command works."""

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import aekit
from aekit.cli import main
from aekit.models import registry

CONTRIBUTING = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"


@pytest.fixture
def linear_registered(monkeypatch):
    code = re.findall(r"```python\n(.*?)```", CONTRIBUTING.read_text(), flags=re.S)[0]
    module = types.ModuleType("aekit.models.linear")
    exec(compile(code, "CONTRIBUTING.md", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    line = re.search(r'^\s*"linear": Architecture\(LinearAutoencoder\),$', CONTRIBUTING.read_text(), flags=re.M)
    assert line, "the registry line of the example"
    monkeypatch.setitem(registry.ARCHITECTURES, "linear", registry.Architecture(module.LinearAutoencoder))
    return module


def test_a_new_architecture_trains_saves_loads_and_serves_every_command(linear_registered, tiny_npz, tmp_path):
    out = tmp_path / "run"
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), "--no-progress",
                 "--set", "architecture=linear", "--set", "hidden_sizes=8", "--set", "epochs=2",
                 "--set", "optimizer=adam", "--set", "learning_rate=0.01", "--set", "batch_size=64"]) == 0
    model = aekit.load(out / "stacked")
    assert isinstance(model, linear_registered.LinearAutoencoder) and model.config.code_size == 8
    x = np.load(tiny_npz)["x_test"][:6]
    np.save(tmp_path / "x.npy", x)
    assert main(["encode", str(out / "stacked"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "c.npy")]) == 0
    assert np.load(tmp_path / "c.npy").shape == (6, 8)
    assert main(["score", str(out / "stacked"), str(tmp_path / "x.npy")]) == 0
    assert main(["export", str(out / "stacked"), "--onnx", str(tmp_path / "d.onnx"), "--part", "decoder"]) == 0


def test_an_unregistered_architecture_is_refused_with_the_registered_ones(tiny_npz, tmp_path, capsys):
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(tmp_path / "r"),
                 "--set", "architecture=linear"]) == 2
    assert "architecture='linear' must be one of: 'mlp', 'conv', 'vae', 'pca-residual'" \
        in capsys.readouterr().err
