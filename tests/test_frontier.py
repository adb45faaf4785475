"""aekit bench frontier: the peer skipped with a note, the JSON and table, the figure, and the preset by code size.
No timings are checked here: the seconds in these results are whatever the tiny runs took."""

import json
import sys

import pytest

from aekit.bench import frontier


def _curve(label, mses, step, test):
    points = [{"epoch": i + 1, "seconds": step * (i + 1), "validation_mse": m} for i, m in enumerate(mses)]
    return {"label": label, "points": points, "seconds": step * len(mses), "test_mse": test}


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


def test_frontier_writes_json_table_and_figure_with_the_peer_skipped(tiny_npz, tmp_path, capsys):
    from aekit.cli import main

    out, fig = tmp_path / "f.json", tmp_path / "frontier.png"
    assert main(["bench", "frontier", "--datasets", str(tiny_npz), "--codes", "8", "--peer-python",
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
    assert "| d | 32 | 0.0200 | 0.0081 (0.405×) | 20 s | 0.0071 (0.355×) | 8 s | 8 s (0.40×) |" in table
    frontier_figure(r["rows"], tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_bad_codes_are_named(capsys):
    from aekit.cli import main

    assert main(["bench", "frontier", "--codes", "32,x"]) == 2
    assert "--codes '32,x': expected comma-separated integers" in capsys.readouterr().err


def test_modern_stacked_preset_picks_its_recipe_by_code_size():
    from aekit.experiments import presets
    from aekit.runner import RunSpec, build_configs

    table = presets.BY_CODE_SIZE["modern-stacked"]
    assert [most for most, _ in table] == sorted(most for most, _ in table)
    small, large = table[0][1], table[-1][1]
    assert presets.get_preset("stacked", "modern", code_size=32) == small
    assert presets.get_preset("stacked", "modern", code_size=128) == large
    assert presets.get_preset("stacked", "modern", code_size=10**9) == large
    assert presets.get_preset("stacked", "modern") == presets.PRESETS["modern-stacked"] == large
    cfg = build_configs(RunSpec(program="stacked", preset="modern", code_size=32))["stacked"]
    assert cfg.hidden_sizes[-1] == 32 and cfg.architecture == small.architecture
    assert cfg.training_epochs == small.training_epochs
    # The tutorial preset has no table: the code size changes the code layer only.
    tutorial = build_configs(RunSpec(program="stacked", preset="tutorial", code_size=32))["stacked"]
    assert tutorial == presets.with_code_size(presets.StackedProgram(), 32)
