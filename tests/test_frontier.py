"""python -m benchmarks frontier: the peer skipped with a note, the JSON and table, the figure, and the preset by code size
and training-set size. No timings are checked here: the seconds in these results are whatever the tiny runs took."""

import dataclasses
import json
import sys
from types import SimpleNamespace

import pytest

from benchmarks import frontier
from benchmarks.__main__ import main as bench_main


def _curve(label, mses, step, test):
    points = [{"epoch": i + 1, "seconds": step * (i + 1), "validation_mse": m} for i, m in enumerate(mses)]
    return {"label": label, "points": points, "seconds": step * len(mses), "test_mse": test}


@pytest.mark.slow  # probes an interpreter in a subprocess
def test_peer_is_skipped_with_a_note_without_its_interpreter_or_without_pythae(tiny_npz, tmp_path):
    from aekit.data.catalog import load_dataset

    data = load_dataset(str(tiny_npz))
    missing = frontier.peer_curve(data, 8, str(tmp_path / "no-python"), log=lambda s: None)
    assert "no such interpreter" in missing["skipped"] and ".venv-peers" in missing["skipped"]
    pytest.importorskip("torch")
    try:
        import pythae  # noqa: F401
    except ImportError:  # this venv has no pythae (the peers' venv does): the probe says so
        lacking = frontier.peer_curve(data, 8, sys.executable, log=lambda s: None)
        assert lacking["skipped"].startswith(f"--peer-python {sys.executable}: cannot import pythae")


def test_compare_reaches_the_peers_best_validation_mse():
    row = {"dataset": "d", "code_size": 32, "pca": 0.02,
           "peer": _curve("pythae", [0.012, 0.010, 0.008, 0.0085], 10.0, 0.0081),
           "aekit": _curve("aekit", [0.011, 0.0079, 0.007], 6.0, 0.0071)}
    c = frontier.compare(row)
    assert c["peer_validation_mse"] == 0.008 and c["reach_seconds"] == 12.0  # the first point at or below 0.008
    assert c["reach_share"] == pytest.approx(12.0 / 40.0) and c["reach_ok"]
    assert c["over_pca"] == pytest.approx(0.0071 / 0.02) and c["over_pca_ok"]  # 0.355 <= 0.45
    row["aekit"] = _curve("aekit", [0.011, 0.009], 6.0, 0.0095)
    c = frontier.compare(row)
    assert c["reach_seconds"] is None and not c["reach_ok"] and not c["over_pca_ok"]
    assert frontier.reached(row["aekit"], 0.011) == 6.0


@pytest.mark.slow  # runs the benchmark
def test_frontier_writes_json_table_and_figure_with_the_peer_skipped(tiny_npz, tmp_path, capsys):
    out, fig = tmp_path / "f.json", tmp_path / "frontier.png"
    assert bench_main(["frontier", "--datasets", str(tiny_npz), "--codes", "8", "--peer-python",
                 str(tmp_path / "none"), "--json", str(out), "--figure", str(fig)]) == 0
    r = json.loads(out.read_text())
    row = r["rows"][0]
    assert r["complete"] and row["dataset"] == "tiny" and row["code_size"] == 8
    assert "no such interpreter" in row["peer"]["skipped"]
    points = row["aekit"]["points"]
    assert [p["epoch"] for p in points] == list(range(1, len(points) + 1)) and len(points) >= 1
    assert all(p["seconds"] > 0 and 0 < p["validation_mse"] < 1 for p in points)
    assert 0 < row["aekit"]["test_mse"] < 1 and row["compare"]["over_pca"] > 0
    table = out.with_suffix(".md").read_text()
    assert "| tiny | 8 |" in table and "skipped" in table and "Peer skipped:" in table
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out


def test_frontier_figure_and_table_with_a_peer(tmp_path):
    from aekit.figures import frontier_figure

    row = {"dataset": "d", "code_size": 32, "pca": 0.02, "peer": _curve("pythae", [0.012, 0.008], 10.0, 0.0081),
           "aekit": _curve("aekit", [0.009, 0.007], 4.0, 0.0071)}
    row["compare"] = frontier.compare(row)
    r = {"rows": [row, {**row, "code_size": 128}], "seconds": 60, "date": "2000-01-01", "peer_epochs": 2,
         "epochs_scale": 1.0, "complete": True}
    table = frontier.to_markdown(r)
    assert "| d | 32 | auto | 0.0200 | 0.0081 (0.405×) | 20 s | 0.0071 (0.355×) | 8 s | 8 s (0.40×) |" in table
    frontier_figure(r["rows"], tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_bad_codes_are_named(capsys):
    assert bench_main(["frontier", "--codes", "32,x"]) == 2
    assert "--codes '32,x': expected comma-separated integers" in capsys.readouterr().err


def test_modern_stacked_preset_picks_its_recipe_by_code_size_and_training_set_size():
    from aekit.experiments import presets
    from aekit.experiments.overrides import with_code_size
    from aekit.runner import RunSpec, build_configs

    table = presets.BY_SIZE["modern-stacked"]
    assert table[-1][:2] == (None, None)  # the last row takes any size
    small_small, small_code, small_data, large = (cfg for _, _, cfg in table)
    n = presets.SMALL_DATA

    def pick(code, n_train=None, shape=None):
        return presets.get_preset("stacked", "modern", code, n_train, shape)

    assert pick(32, n) == small_small and small_small.augment_shift == 1 and small_small.train.weight_decay == 1.0
    assert pick(32, n + 1) == pick(32) == pick(64, 55_000) == small_code and small_code.batch_size == 512
    assert small_code.augment_shift == 1 and small_code.train.weight_decay == 1e-4
    assert pick(65, 3_600) == pick(128, n) == small_data and small_data.train.learning_rate == 1e-3
    assert pick(128, n + 1) == pick(10**9) == pick(None) == large == presets.PRESETS["modern-stacked"]
    assert pick(None, 3_600) == small_data  # no code size: the largest code's row, here for small data
    # Translation augmentation needs images: on other data the row runs without it, and nothing else changes.
    flat = pick(32, 3_600, (784,))
    assert flat.augment_shift == 0 and flat == dataclasses.replace(small_small, augment_shift=0)
    assert pick(32, 3_600, (28, 28)) == pick(32, 3_600, (28, 28, 3)) == small_small
    # aekit reproduce picks the row from the loaded data; without data (validation before loading), the large one.
    small = SimpleNamespace(train=range(3_600), image_shape=(28, 28))
    cfg = build_configs(RunSpec(program="stacked", preset="modern", code_size=32), small)["stacked"]
    assert cfg.hidden_sizes[-1] == 32 and cfg.augment_shift == 1 and cfg.train.epochs == small_small.train.epochs
    cfg = build_configs(RunSpec(program="stacked", preset="modern", code_size=32))["stacked"]
    assert cfg == with_code_size(small_code, 32)
    # The tutorial preset has no table: the code size changes the code layer only, whatever the data.
    tutorial = build_configs(RunSpec(program="stacked", preset="tutorial", code_size=32), small)["stacked"]
    assert tutorial == with_code_size(presets.get_preset("stacked"), 32)
