"""Regenerate every results table in README.md and docs/*.md from benchmarks/results.

A table is everything between a line ``<!-- table:VIEW -->`` and the next ``<!-- /table -->``. The views: headline,
fidelity:DATASET, recipe-search, quality.reconstruction, quality.classification, quality.fewlabels:DATASET,
quality.ladder:DATASET, fewlabels-conv:DATASET, fewlabels-propagate:DATASET, throughput, throughput-avx2, streaming,
scaling, anomaly, knn-space, tables, color, pretrain-gain, explore, frontier, frontier-search; and recipe-keys, every --set key from the
recipe's constraint tables (docs/cli.md). Under each table a "Source:" line links the JSON files (or the code) it came from,
with the machine (and commit, where recorded) they hold. The markdown each benchmark writes beside its JSON
(benchmarks/results/quality.md, ...) is regenerated too. --check writes nothing and exits 1 when a file is out of
date; otherwise the files that changed are rewritten atomically.
"""

# Its imports stay light (``python -m benchmarks report --help`` imports it); the benchmarks' renderers,
# and torch with them, are imported only when a report runs.

from __future__ import annotations

import json
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from aekit.errors import ConfigError, DataError
from aekit.fileio import atomic_open
from benchmarks.common import markdown_table

NAME = "report"
RESULTS = Path("benchmarks", "results")
OPEN = re.compile(r"^<!-- table:(?P<name>[\w.-]+)(?::(?P<key>[\w.-]+))? -->\n", re.M)  # a line of its own
CLOSE = "<!-- /table -->"
CLOSE_LINE = re.compile(r"^<!-- /table -->$", re.M)


# -- helpers for the benchmarks --------------------------------------------------------------------













# -- the views: results JSON -> markdown -----------------------------------------------------------

@dataclass
class Context:
    """What a view reads: results files by name (``quality``, ``fewlabels-ladder/mnist-5k``), each read once;
    it remembers which ones the current table used, and makes links relative to the page being written."""

    root: Path
    page: Path = Path("README.md")
    cache: dict = field(default_factory=dict)
    used: list = field(default_factory=list)
    code: list = field(default_factory=list)  # source files a view of the code read (recipe-keys)

    def __call__(self, name: str) -> dict:
        if name not in self.cache:
            path = self.root / RESULTS / f"{name}.json"
            if not path.is_file():
                raise DataError(f"{path}: no such results file (a table in {self.page} needs it); "
                                f"run the benchmark that writes it")
            self.cache[name] = json.loads(path.read_text())
        if name not in self.used:
            self.used.append(name)
        return self.cache[name]

    def link(self, target: str | Path) -> str:
        """``target`` (relative to the repository root) as a link from the page being written."""
        return Path(os.path.relpath(self.root / target, (self.root / self.page).parent)).as_posix()


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _mean_std(summary: dict, arm: str) -> str:
    return f"{100 * summary[f'{arm}_mean']:.2f} ± {100 * summary[f'{arm}_std']:.2f}%"


def _entry(table: dict, key: str, what: str) -> dict:
    if key not in table:
        raise DataError(f"{what}: no {key!r} in the results; have {', '.join(map(str, table)) or 'nothing'}")
    return table[key]


def headline(ctx: Context, key=None) -> str:
    """README's one table: a result of each kind against its baseline (from the same run, but for the TF1 code)."""
    q, fid, anomaly, speed = ctx("quality"), ctx("fidelity"), ctx("anomaly"), ctx("throughput")
    acc = {(c["dataset"], c["preset"]): c["test_accuracy"] for c in q["classification"]}
    fm = "fashion-mnist"
    tutorial = fid[fm]["rows"][-1]
    rows = [
        _headline_reconstruction(ctx, fm),
        ["the tutorial reproduced: test accuracy, 2 runs", fm, ", ".join(map(_pct, tutorial["aekit"])),
         ", ".join(map(_pct, tutorial["tf1"])) + " (the tutorial's TF1 code)", f"[fidelity]({ctx.link('docs/fidelity.md')})"],
        ["pretrain + fine-tune: test accuracy", fm, f"{_pct(acc[(fm, 'modern')])} (modern preset)",
         f"{_pct(acc[(fm, 'seed')])} (tutorial preset)", f"[recipes]({ctx.link('docs/recipes.md')})"],
    ]
    for name, ladder in q.get("ladder", {}).items():
        # each label count the conv preset was run at; the ladder's 100 labels where the conv run lacks them
        conv = ctx.root / RESULTS / "fewlabels-conv" / f"{name}.json"
        runs = [(ctx(f"fewlabels-conv/{name}"), "conv preset")] if conv.is_file() else []  # ctx: listed as a source
        if not any(s["labels"] == 100 for run, _ in runs for s in run["summary"]):
            runs.insert(0, (ladder, "ladder network"))
        for run, method in runs:
            for s in (s for s in run["summary"] if s["labels"] == 100 or method == "conv preset"):
                rows.append([f"{s['labels']:,} labels: test accuracy, {run['seeds']} seeds", name,
                             f"{_mean_std(s, 'pretrained')} ({method})", f"{_mean_std(s, 'scratch')} (same network, "
                             f"labels only)", f"[few labels]({ctx.link('docs/fewlabels.md')})"])
    rows += [
        _headline_anomaly(ctx, anomaly),
        ["training speed: `aekit reproduce stacked`", speed["dataset"], _speed(speed),
         _speed_baseline(speed), f"[performance]({ctx.link('docs/performance.md')})"],
    ]
    return markdown_table(["result", "data", "aekit", "baseline", "details"], rows)


def _headline_anomaly(ctx: Context, anomaly: dict) -> list[str]:
    """The hardest dataset of the one-class benchmark (its last): the score chosen on validation, against PCA."""
    d = anomaly["datasets"][-1]
    chosen = d["chosen"]
    return ["one-class anomaly detection: mean ROC AUC", d["dataset"],
            f"{d[f'mean_{chosen}_test_auc']:.3f} ({'nearest neighbours' if chosen == 'knn' else 'reconstruction'})",
            f"{d['mean_pca_test_auc']:.3f} (PCA)", f"[anomaly]({ctx.link('docs/anomaly.md')})"]


def _headline_reconstruction(ctx: Context, dataset: str) -> list[str]:
    """The modern preset's test MSE and training time at codes 32 and 128, against pythae's default autoencoder
    (PCA's where the peer was skipped), all from one run of ``python -m benchmarks frontier``; docs/recipes.md has both."""
    rows = {r["code_size"]: r for r in ctx("frontier")["rows"] if r["dataset"] == dataset
            and r.get("precision", "auto") == "auto"}
    r32, r128 = _entry(rows, 32, f"frontier ({dataset})"), _entry(rows, 128, f"frontier ({dataset})")
    ours = f"{r32['aekit']['test_mse']:.4f} / {r128['aekit']['test_mse']:.4f} (modern, " \
           f"{r32['aekit']['seconds']:.0f} / {r128['aekit']['seconds']:.0f} s)"
    base = f"{r32['pca']:.4f} / {r128['pca']:.4f} (PCA)"  # when the peer was skipped
    if "skipped" not in r32["peer"] and "skipped" not in r128["peer"]:
        base = f"{r32['peer']['test_mse']:.4f} / {r128['peer']['test_mse']:.4f} (pythae, " \
               f"{r32['peer']['seconds']:.0f} / {r128['peer']['seconds']:.0f} s)"
    return ["reconstruction: test MSE at code 32 / 128", dataset, ours, base,
            f"[recipes]({ctx.link('docs/recipes.md')})"]


def _speed(speed: dict) -> str:
    """The command users run (its training epochs), where the run measured it; else the benchmark's loop."""
    cmd = speed.get("command", {})
    if "pairs_with_tf1" in cmd:  # run in turn with the TF1 code: the medians, as the ratio is
        rate = statistics.median(p["samples_per_s"] for p in cmd["pairs_with_tf1"])
        return f"{rate:,.0f} samples/s (median of {len(cmd['pairs_with_tf1'])} runs; {cmd['speedup_vs_tf1']:.2f}× the TF1 code)"
    if "samples_per_s" in cmd:
        return f"{cmd['samples_per_s']:,.0f} samples/s ({cmd['fraction_of_matmul']:.2f} of the matmul limit)"
    return f"{speed['aekit_samples_per_s']:,.0f} samples/s, the loop ({speed['gflops_fraction_of_matmul']:.2f} of the limit)"


def _speed_baseline(speed: dict) -> str:
    """The tutorial's TF1 code measured in the same run where it was (benchmarks/requirements.txt), else the DataLoader loop."""
    pairs = speed.get("command", {}).get("pairs_with_tf1")
    if pairs:
        return f"{statistics.median(p['tf1_samples_per_s'] for p in pairs):,.0f} samples/s (TF1 code, in turn with aekit)"
    tf1 = speed.get("peers", {}).get("tf1", {})
    if "samples_per_s" in tf1:
        return f"{tf1['samples_per_s']:,.0f} samples/s (TF1 code, same run)"
    return f"{speed['reference_samples_per_s']:,.0f} samples/s (a DataLoader loop, same run)"


def fidelity(ctx: Context, key=None) -> str:
    """The tutorial's programs: aekit against the tutorial's TF1 code (fashion-mnist), or ``make demo`` (mnist-5k)."""
    f = _entry(ctx("fidelity"), key, "fidelity")
    if "rows" in f:
        rows = [[r["program"], r["metric"], *(", ".join(_pct(v) if "accuracy" in r["metric"] else f"{v:.4f}" for v in r[who])
                                               for who in ("tf1", "aekit")), r["target"]] for r in f["rows"]]
        seeds = ", ".join(map(str, f["seeds"]))
        table = markdown_table(["program", "metric", "TF1 code (2 runs)", f"aekit (seeds {seeds})", "target"], rows)
        return table + f"\nThe mean training image alone scores test MSE {f['mean_image_test_mse']:.4f}.\n"
    rows = [["stacked", f"{f['stacked']['test_mse']:.4f}", "–"],
            ["pretrain", f"{f['pretrain']['test_mse']:.4f} (after pretraining)", _pct(f["pretrain"]["test_accuracy"])]]
    return markdown_table(["program", "test MSE", "test accuracy"], rows)


def recipe_search(ctx: Context, key=None) -> str:
    """The single runs that chose the modern-stacked preset, as a fraction of PCA's test MSE."""
    r = ctx("recipe-search")
    pca = r["pca_test_mse"]  # "dataset:code" -> PCA's test MSE
    rows = [[t["dataset"], t["code_size"], t["recipe"], f"{t['test_mse']:.4f}",
             f"{t['test_mse'] / pca[str(t['dataset']) + ':' + str(t['code_size'])]:.2f}"] for t in r["trials"]]
    return markdown_table(["data", "code", "recipe", "test MSE", "× PCA"], rows)


def quality_reconstruction(ctx: Context, key=None) -> str:
    from benchmarks.quality import reconstruction_table

    return reconstruction_table(ctx("quality"))


def quality_classification(ctx: Context, key=None) -> str:
    from benchmarks.quality import classification_table

    return classification_table(ctx("quality"))


def _fewlabels_view(section: str) -> Callable[[Context, str], str]:
    def view(ctx: Context, key=None) -> str:
        from aekit.experiments.fewlabels import to_markdown

        return to_markdown(_entry(ctx("quality")[section], key, f"quality.{section}"))

    view.__doc__ = f"quality.json's {section} table for one dataset (fewlabels.to_markdown)."
    return view


# Benchmarks whose results file is rendered whole by their own module's ``to_markdown``: the table in the
# docs and the markdown the benchmark writes beside its JSON are the same text.
WHOLE_TABLES = ("throughput", "streaming", "scaling", "explore", "anomaly", "knn-space", "tables", "color", "pretrain-gain", "frontier")


def _whole_view(name: str) -> Callable[[Context, str | None], str]:
    def view(ctx: Context, key=None) -> str:
        import importlib

        from benchmarks import module_name

        return importlib.import_module(module_name(name)).to_markdown(ctx(name))

    view.__doc__ = f"{name}.json rendered by benchmarks.{name}.to_markdown."
    return view


def _fewlabels_run(folder: str) -> Callable[[Context, str | None], str]:
    """The table of one ``aekit fewlabels`` run, from benchmarks/results/FOLDER/DATASET.json."""
    def view(ctx: Context, key=None) -> str:
        from aekit.experiments.fewlabels import to_markdown

        return to_markdown(ctx(f"{folder}/{key}"))

    view.__doc__ = f"An aekit fewlabels run's table, from benchmarks/results/{folder}/DATASET.json."
    return view


def throughput_capped(ctx: Context, key=None) -> str:
    """The throughput benchmark run with the vector instructions capped at AVX2 (throughput-avx2.json)."""
    from benchmarks.throughput import to_markdown

    return to_markdown(ctx("throughput-avx2"))


def frontier_search(ctx: Context, key=None) -> str:
    from benchmarks.frontier import search_table

    return search_table(ctx("frontier-search"))


VIEWS: dict[str, Callable[[Context, str | None], str]] = {
    "headline": headline,
    "fidelity": fidelity,  # :fashion-mnist or :mnist-5k
    "recipe-search": recipe_search,
    "quality.reconstruction": quality_reconstruction,
    "quality.classification": quality_classification,
    "quality.fewlabels": _fewlabels_view("fewlabels"),  # :DATASET
    "quality.ladder": _fewlabels_view("ladder"),  # :DATASET
    "fewlabels-conv": _fewlabels_run("fewlabels-conv"),  # :DATASET, --preset conv
    "fewlabels-propagate": _fewlabels_run("fewlabels-propagate"),  # :DATASET, --method propagate
    **{name: _whole_view(name) for name in WHOLE_TABLES},
    "frontier-search": frontier_search,
    "throughput-avx2": throughput_capped,
}


def recipe_keys(ctx: Context, key=None) -> str:
    """Every ``--set`` key from the recipe's constraint tables: what it takes, its default (the tutorial's) and
    what it sets (the field's comment in src/aekit/experiments/recipe.py). ``key`` "ladder": the keys whose value
    the ladder preset changes, with that value."""
    from aekit.experiments.presets import get_preset
    from aekit.experiments.recipe import CONSTRAINTS, Finetune, Phase, Recipe

    ctx.code.append("src/aekit/experiments/recipe.py")
    ladder = get_preset("pretrain", "ladder") if key == "ladder" else None
    rows = []
    for prefix, cls in (("", Recipe), ("train.", Phase), ("finetune.", Finetune)):
        notes = _field_comments(cls)
        default, mine = cls(), ladder and {"": ladder, "train.": ladder.train, "finetune.": ladder.finetune}[prefix]
        for name, allowed in CONSTRAINTS[cls].items():
            value = getattr(mine or default, name)
            if mine is not None and value == getattr(default, name):
                continue
            shown = ",".join(map(str, value)) if isinstance(value, tuple) else json.dumps(value)
            rows.append([f"`{prefix}{name}`", str(allowed).replace("|", "\\|"), f"`{shown}`",
                         notes.get(name, "as for `train`" if prefix == "finetune." else "")])
    return markdown_table(["key", "takes", "ladder preset" if ladder else "default", "what it sets"], rows)


def _field_comments(cls) -> dict[str, str]:
    """``{field: comment}`` of a dataclass, from the ``name: type = default  # comment`` lines of its source
    and its bases' (a subclass's own comment wins)."""
    import inspect

    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        for line in inspect.getsource(klass).splitlines():
            m = re.match(r"\s+(\w+): [^=]+=.*?  # (.*)$", line)
            if m:
                out[m[1]] = m[2]
    return out


VIEWS["recipe-keys"] = recipe_keys  # docs/cli.md: every --set key, from the constraint tables


def _source_line(ctx: Context) -> str:
    if not ctx.used:  # a view of the code, not of results
        return "Source: " + "; ".join(f"[{c}]({ctx.link(c)})" for c in ctx.code) + "."
    machines = {name: m for name in ctx.used if (m := ctx.cache[name].get("machine"))}
    kinds = {_machine(m) for m in machines.values()}
    parts = []
    for name in ctx.used:
        m = machines.get(name)
        about = [_machine(m)] * (len(kinds) > 1) if m else []
        about += [f"commit {m['commit']}"] if m and m.get("commit") else []
        path = RESULTS / f"{name}.json"
        parts.append(f"[{path.as_posix()}]({ctx.link(path)})" + (f" ({', '.join(about)})" if about else ""))
    where = " where recorded" if len(machines) < len(ctx.used) else ""
    shared = f" Machine{where}: {kinds.pop()}." if len(kinds) == 1 else ""  # said once where every file agrees
    return "Source: " + "; ".join(parts) + "." + shared


def _machine(m: dict) -> str:
    return f"{m['cpus']} CPUs, {m['processor']}, torch {m['torch']}"


# -- regenerating pages ----------------------------------------------------------------------------

def render_page(text: str, ctx: Context) -> str:
    """``text`` with every marked table regenerated."""
    out, pos = [], 0
    for m in OPEN.finditer(text):
        if m.start() < pos:  # inside the previous table: an opening marker where a closing one was due
            raise ConfigError(f"{ctx.page}: table:{m['name']} opens inside another table; close that one with {CLOSE}")
        close = CLOSE_LINE.search(text, m.end())
        if close is None:
            raise ConfigError(f"{ctx.page}: table:{m['name']} has no closing {CLOSE}")
        if m["name"] not in VIEWS:
            raise ConfigError(f"{ctx.page}: table:{m['name']}: unknown; the views are {', '.join(VIEWS)}")
        ctx.used, ctx.code = [], []
        body = VIEWS[m["name"]](ctx, m["key"])
        out += [text[pos:m.end()], body.rstrip("\n"), "\n\n", _source_line(ctx), "\n"]
        pos = close.start()
    return "".join(out) + text[pos:]


def _bench_markdown(name: str, result: dict) -> str | None:
    """What the benchmark that wrote a results file writes beside it, or None for a file no benchmark writes."""
    if name == "quality" or name in WHOLE_TABLES:
        import importlib

        from benchmarks import module_name

        return importlib.import_module(module_name(name)).to_markdown(result)
    if {"config", "rows", "summary"} <= result.keys():  # aekit fewlabels
        from aekit.experiments.fewlabels import to_markdown

        return to_markdown(result)
    return None


def regenerate(root: str | Path) -> list[tuple[Path, str, str]]:
    """Every generated file under ``root``: (path, text now, text it should have)."""
    root = Path(root)
    results = root / RESULTS
    if not results.is_dir():
        raise ConfigError(f"--root {root}: no {RESULTS} folder there; pass the repository root")
    files = []
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        if page.is_file():
            text = page.read_text()
            files.append((page, text, render_page(text, Context(root, page.relative_to(root)))))
    for path in sorted([*results.glob("*.json"), *results.glob("*/*.json")]):
        name = path.relative_to(results).with_suffix("").as_posix()
        markdown = _bench_markdown(name, json.loads(path.read_text()))
        if markdown is not None:
            md = path.with_suffix(".md")
            files.append((md, md.read_text() if md.is_file() else "", markdown))
    return files


def add_arguments(p) -> None:
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if any table is out of date")
    p.add_argument("--root", default=".", help="the repository root (holding README.md, docs/ and benchmarks/results/)")


def run_cli(args) -> int:
    root = Path(args.root)
    files = regenerate(root)
    stale = [(path, new) for path, old, new in files if old != new]
    if args.check:
        for path, _ in stale:
            print(f"out of date: {path.relative_to(root)}")
        if stale:
            print(f"{len(stale)} of {len(files)} files differ from {RESULTS}; run `python -m benchmarks report` to regenerate them")
            return 1
        print(f"{len(files)} files up to date with {RESULTS}")
        return 0
    for path, new in stale:
        with atomic_open(path, "w") as f:
            f.write(new)
        print(f"wrote {path.relative_to(root)}")
    print(f"{len(stale)} of {len(files)} files rewritten from {RESULTS}")
    return 0
