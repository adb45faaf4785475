"""README.md and docs/: size, generated tables in step with benchmarks/results, links that resolve."""

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aekit.errors import ConfigError, DataError
from benchmarks import report

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def report_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    return report.run_cli(parser.parse_args(list(argv)))


def copy_of_repo(tmp_path: Path) -> Path:
    """README.md, docs/ and benchmarks/results/ copied into a temporary root."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copytree(ROOT / "benchmarks" / "results", tmp_path / "benchmarks" / "results")
    return tmp_path


def test_readme_is_a_short_users_page():
    assert (ROOT / "README.md").stat().st_size <= 12_000


def test_readme_keeps_the_two_commands_as_the_makefile_defines_them():
    makefile, readme = (ROOT / "Makefile").read_text(), (ROOT / "README.md").read_text()
    assert "$(VENV)/bin/aekit reproduce all --dataset mnist-5k --out runs/demo" in makefile
    assert "aekit reproduce all --dataset mnist-5k --out runs/demo" in readme
    assert "$(PY) -m pytest" in makefile and "python -m pytest" in readme


def test_tables_are_up_to_date_with_the_results(capsys):
    assert report_cli("--check", "--root", str(ROOT)) == 0, capsys.readouterr().out


def test_every_page_with_results_has_generated_tables():
    for name in ("README.md", "docs/fidelity.md", "docs/recipes.md", "docs/fewlabels.md", "docs/performance.md",
                 "docs/anomaly.md"):
        assert "<!-- table:" in (ROOT / name).read_text(), name


def test_a_changed_result_makes_check_fail_and_regenerating_fixes_it(tmp_path, capsys):
    root = copy_of_repo(tmp_path)
    path = root / "benchmarks" / "results" / "quality.json"
    result = json.loads(path.read_text())
    row = next(r for r in result["reconstruction"] if (r["dataset"], r["code_size"]) == ("fashion-mnist", 32))
    row["pca"] = 0.0234
    path.write_text(json.dumps(result, indent=2))

    assert report_cli("--check", "--root", str(root)) == 1
    out = capsys.readouterr().out
    for name in ("docs/recipes.md", "benchmarks/results/quality.md"):
        assert f"out of date: {name}" in out
    assert "docs/anomaly.md" not in out and "README.md" not in out  # README's reconstruction is the frontier's
    assert "0.0234" not in (root / "docs" / "recipes.md").read_text()  # --check writes nothing

    assert report_cli("--root", str(root)) == 0
    assert "| fashion-mnist | 32 | 0.0234 |" in (root / "docs" / "recipes.md").read_text()
    assert "| fashion-mnist | 32 | 0.0234 |" in (root / "benchmarks" / "results" / "quality.md").read_text()
    assert report_cli("--check", "--root", str(root)) == 0
    assert not list(root.rglob("*.part"))


def test_text_outside_the_markers_is_kept(tmp_path):
    root = copy_of_repo(tmp_path)
    page = root / "docs" / "anomaly.md"
    page.write_text("# Anomaly\n\nBefore.\n\n<!-- table:anomaly -->\nstale\n<!-- /table -->\n\nAfter.\n")
    assert report_cli("--root", str(root)) == 0
    text = page.read_text()
    assert text.startswith("# Anomaly\n\nBefore.\n\n<!-- table:anomaly -->\nOne-class ROC AUC")
    assert "\n\nSource: [benchmarks/results/anomaly.json](../benchmarks/results/anomaly.json)" in text
    assert text.endswith(".\n<!-- /table -->\n\nAfter.\n")
    assert "stale" not in text


def test_a_source_line_names_a_shared_machine_once(tmp_path):
    root = copy_of_repo(tmp_path)
    path = root / "benchmarks" / "results" / "anomaly.json"
    r = json.loads(path.read_text())
    r["machine"] = {"cpus": 7, "processor": "x86_64", "torch": "9.9", "commit": "aaaaaaa"}
    path.write_text(json.dumps(r))
    assert report_cli("--root", str(root)) == 0

    def source(page: str) -> str:
        return next(ln for ln in (root / page).read_text().splitlines() if ln.startswith("Source:") and "anomaly" in ln)
    # alone under its table: the machine once, at the end; beside files from another machine: per file
    assert source("docs/anomaly.md").endswith("anomaly.json) (commit aaaaaaa). Machine: 7 CPUs, x86_64, torch 9.9.")
    assert "anomaly.json) (7 CPUs, x86_64, torch 9.9, commit aaaaaaa);" in source("README.md")


@pytest.mark.parametrize("page,message", [
    ("<!-- table:nonsense -->\n<!-- /table -->\n", "docs/x.md: table:nonsense: unknown; the views are headline, "),
    ("<!-- table:anomaly -->\n| old |\n", "docs/x.md: table:anomaly has no closing <!-- /table -->"),
    ("<!-- table:anomaly -->\n<!-- table:throughput -->\n<!-- /table -->\n",
     "docs/x.md: table:throughput opens inside another table; close that one with <!-- /table -->"),
])
def test_a_broken_marker_is_named(tmp_path, page, message):
    root = copy_of_repo(tmp_path)
    (root / "docs" / "x.md").write_text(page)
    with pytest.raises(ConfigError) as e:
        report_cli("--check", "--root", str(root))
    assert str(e.value).startswith(message)


def test_a_missing_results_file_or_entry_is_named(tmp_path):
    root = copy_of_repo(tmp_path)
    (root / "docs" / "x.md").write_text("<!-- table:quality.ladder:kmnist -->\n<!-- /table -->\n")
    with pytest.raises(DataError, match=r"^quality.ladder: no 'kmnist' in the results; have mnist-5k, fashion-mnist$"):
        report_cli("--check", "--root", str(root))
    (root / "benchmarks" / "results" / "anomaly.json").unlink()
    with pytest.raises(DataError, match=r"anomaly.json: no such results file \(a table in README.md needs it\)"):
        report_cli("--check", "--root", str(root))


def test_the_command_description_lists_every_view():
    assert all(name in report.__doc__ for name in report.VIEWS)


def test_a_marker_must_be_a_line_of_its_own(tmp_path):
    root = copy_of_repo(tmp_path)
    text = "Markers look like `<!-- table:anomaly -->` and\n<!-- /table -->\n"
    (root / "docs" / "x.md").write_text(text)
    assert report_cli("--root", str(root)) == 0
    assert (root / "docs" / "x.md").read_text() == text


def test_root_without_results_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"^--root .*: no benchmarks/results folder there; pass the repository root$"):
        report_cli("--check", "--root", str(tmp_path))


@pytest.mark.slow  # a fresh interpreter
def test_report_imports_nothing_heavy():
    code = ("import sys, benchmarks.report as r; assert r.NAME == 'report' and r.__doc__; "
            "print([m for m in ('torch', 'numpy', 'sklearn', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_cli_reference_names_every_recipe_key():
    from aekit.experiments.presets import get_preset
    from aekit.experiments.recipe import keys

    cli = (ROOT / "docs" / "cli.md").read_text()
    missing = [k for k in keys(get_preset("pretrain")) if f"`{k}`" not in cli and f"`{k.split('.', 1)[-1]}`" not in cli]
    assert not missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_inside_the_repository_resolve(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path = (page.parent / target).resolve()
        if ROOT in path.parents or path == ROOT:
            assert path.exists(), f"{page.name}: link to {target}"


def test_readme_reconstruction_comes_from_the_frontier_run(tmp_path, capsys):
    root = copy_of_repo(tmp_path)
    path = root / "benchmarks" / "results" / "frontier.json"
    result = json.loads(path.read_text())
    row = next(r for r in result["rows"] if (r["dataset"], r["code_size"]) == ("fashion-mnist", 32))
    row["peer"]["test_mse"] = 0.0234
    path.write_text(json.dumps(result, indent=2))
    assert report_cli("--root", str(root)) == 0
    readme = (root / "README.md").read_text()
    assert "| 0.0234 / " in readme and "(modern, " in readme and "(pythae, " in readme
