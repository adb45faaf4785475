import json
import subprocess
import sys

import pytest

from aekit.cli import main

QUICK = ["--set", "epochs=2", "--set", "finetune.epochs=3",
         "--set", "batch_size=64", "--no-progress"]


def test_reproduce_all_end_to_end(tiny_npz, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reproduce", "all", "--dataset", str(tiny_npz), "--out", str(out), "--device", "cpu", *QUICK]) == 0
    stdout = capsys.readouterr().out
    assert "tiny: 270 train, 30 validation, 60 test" in stdout
    assert "Epoch    0  loss" in stdout and "Epoch    0  pretraining loss" in stdout and "Epoch    0  fine-tuning loss" in stdout
    figures = ["anomalies.png", "codes.png", "filters.png", "loss.png", "reconstruction.png"]
    for program in ("stacked", "pretrain"):
        files = sorted(p.name for p in (out / program).iterdir() if p.is_file())
        assert files == sorted(["config.json", "metrics.json", "model.safetensors", *figures])
        m = json.loads((out / program / "metrics.json").read_text())
        assert m["dataset"] == "tiny" and m["n_train"] == 270 and m["n_test"] == 60
        assert 0 < m["test_mse"] < 1 and m["config"]["batch_size"] == 64
        assert m["precision"] == "fp32"  # the tutorial presets train in fp32, and metrics.json says what ran
        assert (out / program / "reconstruction.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    m = json.loads((out / "pretrain" / "metrics.json").read_text())
    assert 0 <= m["test_accuracy"] <= 1 and set(m["seconds"]) == {"pretrain", "finetune", "total", "figures", "checkpoint"}
    assert len(m["history"]["finetune"]["epoch_loss"]) == 3


def test_epochs_scale_and_seed(tiny_npz, tmp_path):
    runs = []
    for i in range(2):
        out = tmp_path / f"r{i}"
        main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), "--epochs-scale", "0.04",
              "--seed", "7", "--no-progress", "--set", "batch_size=64"])
        runs.append(json.loads((out / "stacked" / "metrics.json").read_text()))
    assert runs[0]["config"]["train"]["epochs"] == 2
    assert runs[0]["test_mse"] == runs[1]["test_mse"]


def _fails_cleanly(argv, capsys, out, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert match in err, err
    assert not out.exists() or not any(out.rglob("*")), list(out.rglob("*"))


@pytest.mark.parametrize("extra, match", [
    (["--set", "batch_sise=3"], "unknown key; did you mean 'batch_size'?"),
    (["--set", "batch_size=0"], "batch_size=0 must be an int in the range [1, inf)"),
    (["--set", "epochs=0"], "train.epochs=0 must be an int in the range [1, 100000]"),
    (["--set", "finetune.epochs=-2"], "finetune.epochs=-2 must be an int"),
    (["--set", "batch_size=100000"], "batch_size=100000 is larger than the 270 training images"),
    (["--set", "finetune.learning_rate=-1"], "finetune.learning_rate=-1.0 must be a float in the range (0, 1e+30]"),
    (["--device", "tpu"], "--device 'tpu' is not a device"),
    (["--set", "0\n0=1"], "--set '0\\n0': unknown key"),  # a newline in the key: quoted, the error one line
    (["--set", "a\tb=1", "--set", "a\tb=2"], "--set 'a\\tb' is given twice"),
])
def test_user_mistakes_exit_2_without_output(tiny_npz, tmp_path, capsys, extra, match):
    out = tmp_path / "run"
    _fails_cleanly(["reproduce", "all", "--dataset", str(tiny_npz), "--out", str(out), "--no-progress", *extra], capsys, out, match)


def test_missing_dataset(clean_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AEKIT_OFFLINE", "1")
    out = tmp_path / "run"
    _fails_cleanly(["reproduce", "stacked", "--dataset", "kmnist", "--out", str(out)], capsys, out,
                   "dataset 'kmnist' not found; looked in")


def test_corrupt_file(clean_env, tmp_path, capsys):
    from conftest import write_tiny_idx

    folder = tmp_path / "mine"
    write_tiny_idx(folder)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    out = tmp_path / "run"
    _fails_cleanly(["reproduce", "stacked", "--dataset", str(folder), "--out", str(out)], capsys, out,
                   "train-images-idx3-ubyte.gz: corrupt gzip file")


def test_datasets_command(clean_env, capsys):
    from conftest import write_tiny_idx

    write_tiny_idx(clean_env / "dd" / "kmnist")
    assert main(["datasets", "--data-dir", str(clean_env / "dd")]) == 0
    out = capsys.readouterr().out
    assert f"kmnist         {clean_env / 'dd' / 'kmnist'}" in out
    assert "mnist          not found" in out


@pytest.mark.parametrize("command", [[], ["reproduce"], ["datasets"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0
    assert "usage: aekit" in capsys.readouterr().out


@pytest.mark.slow  # a fresh interpreter
def test_console_script_has_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "aekit", "reproduce", "stacked", "--dataset", str(tmp_path / "nope.npz")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("aekit reproduce: error: --dataset") and "Traceback" not in r.stderr


def test_pretrain_on_unlabeled_data_fails_before_any_output(tmp_path, capsys):
    import numpy as np

    path = tmp_path / "unlabeled.npz"
    np.savez(path, x_train=np.zeros((1000, 16), np.uint8), x_test=np.zeros((10, 16), np.uint8))
    out = tmp_path / "run"
    _fails_cleanly(["reproduce", "all", "--dataset", str(path), "--out", str(out)], capsys, out,
                   "has no labels; the pretrain program needs y_train and y_test")
