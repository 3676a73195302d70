from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt_broker import Broker
from tests.postgres_server import PostgresServer

SIM_MODES = ("any", "compiled", "pure")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--sim-mode",
        choices=SIM_MODES,
        default="any",
        help="run the simulator's core compiled (the build must be there: make core), "
        "pure Python (ACUDEVICE_SIM_PURE=1), or whichever loads (default)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Set the mode before any test module imports the simulator; a compiled run without a
    build for these sources stops here instead of running pure under the wrong name."""
    mode = config.getoption("--sim-mode")
    if mode == "pure":
        os.environ["ACUDEVICE_SIM_PURE"] = "1"
    elif mode == "compiled":
        from simulator import compiled

        if os.environ.get(compiled.PURE_ENV) or not compiled.in_use():
            raise pytest.UsageError(
                "--sim-mode=compiled: no compiled core for these sources "
                f"(build it: make core), or {compiled.PURE_ENV} is set"
            )


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole run (started on first use, removed at the end)."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """A fresh database of its own for each test, on the session's server."""
    return postgres_server.new_database()
