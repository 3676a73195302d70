from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt_broker import Broker


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own per-user directories, never the developer's real ones."""
    home = tmp_path / "acudevice-home"
    monkeypatch.setenv("ACUDEVICE_HOME", str(home))
    return home


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto on a free loopback port, anonymous, stopped afterwards."""
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()
