"""Every ```python block of python/README.md runs as it stands (so the examples cannot rot).

A block whose first line is ``# needs: torch`` is skipped, visibly (torch is never a test
dependency). Each block runs in a fresh interpreter, so its threads cannot outlive it into
other tests.
"""

import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
NEEDS_TORCH = "# needs: torch"


def python_blocks():
    text = README.read_text(encoding="utf-8")
    blocks = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        line = text.count("\n", 0, m.start()) + 1
        blocks.append(pytest.param(m.group(1), id=f"README.md:{line}"))
    return blocks


def test_the_readme_has_python_blocks():
    assert len(python_blocks()) >= 2


@pytest.mark.parametrize("code", python_blocks())
def test_readme_block_runs(code, tmp_path):
    if code.startswith(NEEDS_TORCH):
        pytest.skip("marked '# needs: torch'")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
