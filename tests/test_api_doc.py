"""docs/api.md as a user reads it: every Python block runs, as written, against the simulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sim

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", API_DOC.read_text(), flags=re.S)


def test_the_api_doc_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_every_api_doc_block_runs_as_written(number: int, tmp_path: Path) -> None:
    env = {**os.environ, "ACUDEVICE_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", BLOCKS[number]],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"block {number} of docs/api.md failed:\n{done.stderr}"
    assert "Traceback" not in done.stderr
    assert done.stdout.strip(), "every example prints what it shows"
