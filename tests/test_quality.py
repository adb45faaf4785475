import json

import numpy as np
import pytest

from benchmarks import quality
from benchmarks.__main__ import main as bench_main
from benchmarks.common import write_report


@pytest.mark.slow  # runs the benchmark
def test_quality_benchmark_runs_on_tiny_data(tiny_npz, tmp_path):
    r = quality.run(datasets=(str(tiny_npz),), codes=(8,), epochs_scale=0.05, few_labels="8,all", seeds=1,
                    members=["mlp", "tied", "modern preset (pca-residual)"], log=lambda s: None,
                    sections=("reconstruction", "classification", "fewlabels"))  # the ladder: below
    row = r["reconstruction"][0]
    assert row["dataset"] == "tiny" and row["code_size"] == 8
    for key in ("pca", "seed preset", "mlp", "tied", "modern preset (pca-residual)"):
        assert 0 < row[key] < 0.5, key
    assert row["best"] in ("mlp", "tied", "modern preset (pca-residual)")
    assert row["best_over_pca"] == row[row["best"]] / row["pca"]
    assert [c["preset"] for c in r["classification"]] == ["seed", "modern"]
    assert [s["labels"] for s in r["fewlabels"]["tiny"]["summary"]] == [8, "all"]
    md = quality.to_markdown(r)
    assert "best / PCA" in md and "Few-label accuracy" in md
    write_report(r, md, tmp_path / "q.json")
    assert json.loads((tmp_path / "q.json").read_text())["reconstruction"][0]["code_size"] == 8

    # Refresh one section: the others are kept, and the report says which run measured what.
    fresh = quality.run(datasets=(str(tiny_npz),), codes=(8,), epochs_scale=0.05, seeds=1, log=lambda s: None,
                        sections=("classification",))
    assert fresh["reconstruction"] == [] and fresh["fewlabels"] == {} and fresh["classification"]
    merged = quality.merge(r, fresh)
    assert merged["reconstruction"] == r["reconstruction"] and merged["fewlabels"] == r["fewlabels"]
    assert merged["classification"] == fresh["classification"]
    assert merged["sections"]["classification"]["seconds"] > 0
    merged["sections"]["reconstruction"]["date"] = "2000-01-01"
    assert "Sections measured: reconstruction: 2000-01-01" in quality.to_markdown(merged)

    # The ladder section: the same four arms with a ladder network, its epochs scaled too.
    ladder = quality.run(datasets=(str(tiny_npz),), epochs_scale=0.02, seeds=1, ladder_labels="8", log=lambda s: None,
                         sections=("ladder",))
    res = ladder["ladder"]["tiny"]
    assert res["method"] == "ladder" and res["config"]["finetune"]["epochs"] == 1 and res["rows"][0]["labels"] == 8
    merged = quality.merge(merged, ladder)
    assert merged["fewlabels"] == r["fewlabels"] and "ladder network" in quality.to_markdown(merged)


def test_pca_baseline_matches_sklearn_definition(tiny_npz):
    from aekit.data.catalog import load_dataset

    data = load_dataset(str(tiny_npz))
    mean_image = float(((data.test.images / 255.0 - data.train.images.mean(0) / 255.0) ** 2).mean())
    errors = [quality.pca_mse(data, k) for k in (1, 4, 16, 64)]
    assert mean_image > errors[0] and errors == sorted(errors, reverse=True)  # more components, less error
    assert np.isfinite(errors).all()


def test_sections_refresh_needs_an_earlier_report_and_known_names(tmp_path, capsys):
    missing = tmp_path / "none.json"
    assert bench_main(["quality", "--sections", "fewlabels", "--json", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "--sections fewlabels: keeps the other sections from --json" in err and "Traceback" not in err
    assert not missing.exists()
    earlier = tmp_path / "q.json"
    earlier.write_text("{}")
    assert bench_main(["quality", "--sections", "bogus", "--json", str(earlier)]) == 2
    assert "--sections bogus: unknown; choose from reconstruction, classification, fewlabels, ladder" in capsys.readouterr().err
