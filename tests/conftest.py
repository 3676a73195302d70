from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own per-user directories, never the developer's real ones."""
    home = tmp_path / "acudevice-home"
    monkeypatch.setenv("ACUDEVICE_HOME", str(home))
    return home
