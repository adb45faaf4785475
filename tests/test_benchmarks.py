"""The benchmarks at the repository root: ``python -m benchmarks NAME`` runs each, ``--help`` lists them, and the
throughput benchmark writes its JSON and table."""

import json
import subprocess
import sys

import pytest

from benchmarks import NAMES, benchmarks, module_name, subprocess_env, summary
from benchmarks.__main__ import main


def test_every_benchmark_is_listed_by_its_module_name():
    modules = benchmarks()
    assert [module_name(m.NAME) for m in modules] == [m.__name__ for m in modules] and len(modules) == len(NAMES)
    assert {"throughput", "anomaly", "quality", "frontier-search", "fuzz", "report"} <= {m.NAME for m in modules}
    assert all(m.__doc__ and callable(m.add_arguments) and callable(m.run_cli) for m in modules)
    assert all(summary(m.NAME) == m.__doc__.strip().splitlines()[0].rstrip(".") for m in modules)


def test_an_unknown_benchmark_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        main(["nosuchbenchmark"])
    assert e.value.code == 2 and "invalid choice: 'nosuchbenchmark'" in capsys.readouterr().err


def test_the_user_command_line_has_no_bench(capsys):
    from aekit.cli import main as aekit_main

    with pytest.raises(SystemExit) as e:
        aekit_main(["bench", "throughput"])
    assert e.value.code == 2 and "invalid choice: 'bench'" in capsys.readouterr().err


@pytest.mark.slow  # fresh interpreters
@pytest.mark.parametrize("argv", [["--help"], ["throughput", "--help"], ["report", "--help"]], ids=" ".join)
def test_help_lists_the_benchmarks_and_imports_nothing_heavy(argv, tmp_path):
    """From any folder, with the repository root on PYTHONPATH, as the benchmarks run their own subprocesses."""
    code = ("import runpy, sys; sys.argv = ['benchmarks', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('benchmarks', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print([m for m in ('torch', 'numpy', 'sklearn', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=tmp_path,
                         env=subprocess_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    if argv == ["--help"]:
        assert out.stdout.startswith("usage: python -m benchmarks") and all(f"  {n} " in out.stdout for n in NAMES)
    else:
        assert out.stdout.startswith(f"usage: python -m benchmarks {argv[0]}")


@pytest.mark.slow  # runs the benchmark (and a subprocess of it)
def test_throughput_benchmark_writes_json_and_table(tiny_npz, tmp_path, capsys):
    out = tmp_path / "tp.json"
    assert main(["throughput", "--dataset", str(tiny_npz), "--warm-epochs", "1", "--epochs", "1", "--json", str(out),
                 "--no-peers", "--recipe-images", "256", "--quality-epochs", "1", "--command-epochs-scale", "0.02"]) == 0
    r = json.loads(out.read_text())
    for key in ("aekit_samples_per_s", "reference_samples_per_s", "matmul_gflops", "aekit_gflops", "peak_rss_mb"):
        assert r[key] > 0, key
    assert r["peak_rss_images"] == 300  # train + validation
    assert 0 < r["modern_fraction_of_matmul"] == r["recipes"]["modern-stacked"]["fraction_of_matmul"]
    color = "conv preset (pretraining, fp32), color 32x32x3 patches"
    assert set(r["recipes"]) == {"modern-stacked", "modern-stacked at batch 512 (diagnostic)",
                                 "modern-pretrain (pretraining)", "conv preset (pretraining, fp32)",
                                 "conv 32-64-128 (diagnostic)", color}
    assert r["recipes"]["conv preset (pretraining, fp32)"]["precision"] == "fp32"  # the target is the fp32 limit
    assert r["recipes"][color]["precision"] == "fp32" and r["recipes"][color]["images"] == 256
    # a color patch holds three times a gray one's pixels: the first convolution does three times the work
    assert r["recipes"][color]["training_flops_per_sample"] > r["recipes"]["conv preset (pretraining, fp32)"][
        "training_flops_per_sample"]
    targets = out.with_suffix(".md").read_text()
    assert "the conv preset's training: fraction of the fp32 matmul limit" in targets
    assert "the conv preset's training on color 32x32x3 patches: fraction of the fp32 matmul limit" in targets
    assert all(m["training_flops_per_sample"] > 0 for m in r["recipes"].values())
    assert r["command"]["seconds_per_epoch"] > 0 and r["command"]["fraction_of_matmul"] > 0
    assert all("skipped" in p for p in r["peers"].values()) and "cost" in r["resume_snapshot"]
    assert 0 < r["seed_step"]["optimizer_seconds"] < r["seed_step"]["step_seconds"]
    assert len(r["command"]["command"]) and r["command"]["first_epoch_seconds"] > 0
    assert r["time_to_quality"]["pca_test_mse"] > 0 and r["time_to_quality"]["points"]
    table = out.with_suffix(".md").read_text()
    assert table.count("\n|") >= 12 and "aekit / reference" in table
    assert "speedup" in capsys.readouterr().out


def test_pca_components_for_an_error_match_pca_refitted_at_that_size():
    """The color benchmark's count of PCA components for an error, from one fit, is what PCA refitted
    with that many components reaches, and one fewer does not."""
    import numpy as np
    from sklearn.decomposition import PCA

    from benchmarks.color import pca_components_for

    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 20)) * np.linspace(3, 0.1, 20)  # rank 6
    fit, test = (rng.normal(size=(n, 6)) * np.linspace(3, 1, 6) @ mixing for n in (300, 100))

    def error(k):
        pca = PCA(k).fit(fit)
        return float(((pca.inverse_transform(pca.transform(test)) - test) ** 2).mean())

    goal = 0.5 * error(2)
    k = pca_components_for(fit, test, goal, 20)
    assert 2 < k < 6 and error(k) <= goal * (1 + 1e-6) and error(k - 1) > goal
    assert pca_components_for(fit, test, 0.0, 3) is None  # three components cannot reach zero on rank 6


def test_color_table_says_when_pca_never_reaches_the_target():
    from benchmarks.color import to_markdown

    rows = [{"model": "PCA", "code": c, "test_mse": 0.01, "vs_pca": 1.0, "seconds": 1.0, "components_for_target": n}
            for c, n in ((8, None), (32, 0))]
    text = to_markdown({"n_train": 10, "n_test": 5, "epochs": 1, "seconds": 1.0, "rows": rows, "target": 0.7})
    assert "more than 64 components at code 8" in text and "0 components at code 32" in text
