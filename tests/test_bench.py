import json

from aekit.cli import main


def test_throughput_benchmark_writes_json_and_table(tiny_npz, tmp_path, capsys):
    out = tmp_path / "tp.json"
    assert main(["bench", "throughput", "--dataset", str(tiny_npz), "--warm-epochs", "1", "--epochs", "1", "--json", str(out),
                 "--no-peers", "--recipe-images", "256", "--quality-epochs", "1", "--command-epochs-scale", "0.02"]) == 0
    r = json.loads(out.read_text())
    for key in ("aekit_samples_per_s", "reference_samples_per_s", "matmul_gflops", "aekit_gflops", "peak_rss_mb"):
        assert r[key] > 0, key
    assert r["peak_rss_images"] == 300  # train + validation
    assert 0 < r["modern_fraction_of_matmul"] == r["recipes"]["modern-stacked"]["fraction_of_matmul"]
    assert set(r["recipes"]) == {"modern-stacked", "modern-stacked at batch 512 (diagnostic)",
                              "modern-pretrain (pretraining)", "conv (modern training)"}
    assert all(m["training_flops_per_sample"] > 0 for m in r["recipes"].values())
    assert r["command"]["seconds_per_epoch"] > 0 and r["command"]["fraction_of_matmul"] > 0
    assert all("skipped" in p for p in r["peers"].values()) and "cost" in r["resume_snapshot"]
    assert 0 < r["seed_step"]["optimizer_seconds"] < r["seed_step"]["step_seconds"]
    assert len(r["command"]["command"]) and r["command"]["first_epoch_seconds"] > 0
    assert r["time_to_quality"]["pca_test_mse"] > 0 and r["time_to_quality"]["points"]
    table = out.with_suffix(".md").read_text()
    assert table.count("\n|") >= 12 and "aekit / reference" in table
    assert "speedup" in capsys.readouterr().out
