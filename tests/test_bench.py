import json

from aekit.cli import main


def test_throughput_benchmark_writes_json_and_table(tiny_npz, tmp_path, capsys):
    out = tmp_path / "tp.json"
    assert main(["bench", "throughput", "--dataset", str(tiny_npz), "--warm-epochs", "1", "--epochs", "1", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    for key in ("aekit_samples_per_s", "reference_samples_per_s", "matmul_gflops", "aekit_gflops", "peak_rss_mb"):
        assert r[key] > 0, key
    assert r["peak_rss_images"] == 300  # train + validation
    table = out.with_suffix(".md").read_text()
    assert table.count("\n|") >= 12 and "aekit / reference" in table
    assert "speedup" in capsys.readouterr().out
