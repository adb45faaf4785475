"""The layer rule of CONTRIBUTING.md: imports run one way, from a higher layer to a lower one, and there are
no import cycles, whether an import sits at the top of a module or inside a function."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "aekit"

# Lowest first; a module may import its own layer and those below it, never above.
LAYERS = [
    ("ground", ["errors", "fileio", "runtime", "constraints", "checkpoint", "rundir"]),
    ("data", ["data"]),
    ("models", ["models"]),
    ("training", ["training"]),
    ("experiments", ["experiments"]),
    ("uses of models", ["estimators", "loading", "inference", "anomalies", "export", "figures", "outputs", "runner",
                        "explore"]),
    ("commands", ["commands"]),
    ("entry points", ["cli", "__main__", "__init__"]),
]
RANK = {name: rank for rank, (_, names) in enumerate(LAYERS) for name in names}


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PKG).with_suffix("").parts): p for p in PKG.rglob("*.py")}


def layer(module: str) -> int:
    head = module.split(".")[0]
    if head not in RANK:
        raise AssertionError(f"aekit.{module} is in no layer of tests/test_layers.py: add it to LAYERS and CONTRIBUTING.md")
    return RANK[head]


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The aekit modules ``module`` imports, anywhere in its code."""
    found = set()
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "aekit" or node.module.startswith("aekit.")):
                target = node.module[len("aekit."):] if node.module != "aekit" else ""
            else:
                continue
            for alias in node.names:  # `from aekit.models import registry` imports a module
                sub = f"{target}.{alias.name}" if target else alias.name
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            found |= {a.name[len("aekit."):] for a in node.names if a.name.startswith("aekit.")}
    found = {f"{m}.__init__" if m not in known and f"{m}.__init__" in known else m for m in found}  # a package
    return {m for m in found if m and m in known and m != module}


GRAPH = {m: imports(m, p, set(modules())) for m, p in modules().items()}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_run_downward(module):
    upward = [t for t in GRAPH[module] if layer(t) > layer(module) and module != "__init__"]
    assert not upward, f"aekit.{module} ({LAYERS[layer(module)][0]}) imports a higher layer: {upward}"


def test_no_import_cycles():
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for t in sorted(GRAPH[m]):
            visit(t)
        stack.pop()

    for m in sorted(GRAPH):
        visit(m)
    assert not cycles, f"import cycles: {cycles}"


def test_the_rule_can_fail(tmp_path):
    """The checker sees an upward import inside a function (the usual way to dodge a cycle)."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from aekit.commands import COMMANDS\n")
    assert imports("models.bad", bad, set(GRAPH) | {"models.bad"}) == {"commands"}
    assert layer("commands") > layer("models.bad")


def test_the_package_never_imports_the_benchmarks():
    """benchmarks/ lives at the repository root, outside the wheel: aekit cannot import it."""
    found = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.relative_to(PKG)}: {n}" for n in names if n == "benchmarks" or n.startswith("benchmarks.")]
    assert not found
