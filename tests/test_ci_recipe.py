"""The "use it in your CI" recipe in docs/simulator.md runs as written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from acudevice.conformance import CHECKS

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "conformance-sim.sh"

pytestmark = pytest.mark.wire


def test_the_documented_script_is_the_tested_one() -> None:
    doc = (ROOT / "docs" / "simulator.md").read_text()
    assert "```bash\n" + SCRIPT.read_text() + "```" in doc


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("link", ["tcp", "pty"])
def test_the_ci_script_runs_conformance_and_writes_junit(tmp_path: Path, link: str) -> None:
    bin_dir = Path(sys.executable).parent  # where acudevice and acudevice-sim are installed
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["ACUDEVICE_HOME"] = str(tmp_path / "home")
    report = tmp_path / "conformance.xml"
    done = subprocess.run(
        ["bash", str(SCRIPT), str(report), link],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    suite = ET.parse(report).getroot()
    assert suite.get("failures") == "0"
    assert [c.get("name") for c in suite.iter("testcase")] == [name for name, _ in CHECKS]
    assert "passed, 0 failed" in done.stdout
    device = next(p.get("value") for p in suite.iter("property") if p.get("name") == "device")
    assert device.startswith("tcp://" if link == "tcp" else "serial:///dev/")
