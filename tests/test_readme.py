"""The README's Python example runs as written and says what it shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_python_example_runs_in_under_30_seconds(data_root):
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace('"../shared/datasets"', repr(str(data_root)))
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    elapsed = time.perf_counter() - start
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.split()
    assert float(lines[0]) > 0.5 and float(lines[1]) == pytest.approx(0.9)
    assert float(lines[2]) == pytest.approx(0.8, abs=1e-5)  # round(0.8 n) of n weights
    assert float(lines[3]) > 0
    assert elapsed < 30, elapsed
