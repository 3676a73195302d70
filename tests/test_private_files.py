"""Bond keys and health records are private to the user: dirs 0700, files 0600."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acudevice.cli.main import app
from acudevice.paths import make_private
from acudevice.store import Journal
from acudevice.transport.ble import radio_config
from tests.ble_helpers import ble_rig

runner = CliRunner()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(root: Path) -> None:
    assert mode(root) == 0o700, root
    for path in root.rglob("*"):
        assert mode(path) == (0o700 if path.is_dir() else 0o600), (path, oct(mode(path)))


@pytest.mark.sim
def test_a_session_leaves_only_private_files(isolated_home: Path) -> None:
    ran = runner.invoke(app, ["run", "nausea-relief", "--device", "sim://?speed=max", "--json"])
    assert ran.exit_code == 0, ran.output
    data = isolated_home / "data"
    assert (data / "journal.sqlite3").exists()
    with Journal():  # while open, the -wal and -shm files exist too
        assert_private(data)


@pytest.mark.unit
def test_identity_and_ble_folder_are_private(isolated_home: Path) -> None:
    config = radio_config()
    assert config.keystore_path is not None
    assert_private(config.keystore_path.parent)


@pytest.mark.wire
async def test_bond_keys_written_by_bumble_end_up_private(isolated_home: Path) -> None:
    async with ble_rig() as rig:
        entry = await rig.pair(alias="left-wrist")
    keystore = Path(entry.bond.keystore)
    assert_private(keystore.parent)
    assert keystore.name in {p.name for p in keystore.parent.iterdir()}
    assert_private(isolated_home / "data")


@pytest.mark.unit
def test_existing_readable_files_are_fixed_on_start_with_one_line(isolated_home: Path) -> None:
    data = isolated_home / "data"
    (data / "ble").mkdir(parents=True, mode=0o755)
    data.chmod(0o755)
    sqlite3.connect(data / "journal.sqlite3").close()  # as an older version left it
    (data / "journal.sqlite3").chmod(0o644)
    (data / "ble" / "bonds.json").write_text("{}")
    (data / "ble" / "bonds.json").chmod(0o644)
    config = isolated_home / "config" / "programs"
    config.mkdir(parents=True, mode=0o755)
    (config / "mine.toml").write_text("")
    (config / "mine.toml").chmod(0o664)
    result = runner.invoke(app, ["history"])
    assert result.exit_code == 0, result.output
    assert_private(data)
    notices = [line for line in result.stderr.splitlines() if "private" in line]
    assert len(notices) == 1 and str(data) in notices[0], result.stderr
    listed = runner.invoke(app, ["programs", "list"])
    assert_private(isolated_home / "config")
    assert [line for line in listed.stderr.splitlines() if "private" in line]
    again = runner.invoke(app, ["history"])
    assert "private" not in again.stderr  # said once, when it was fixed


@pytest.mark.unit
def test_make_private_keeps_narrower_modes_and_skips_links(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir(mode=0o700)
    (root / "f").write_text("x")
    (root / "f").chmod(0o400)
    shared = tmp_path / "shared.txt"
    shared.write_text("x")
    shared.chmod(0o644)
    (root / "link").symlink_to(shared)
    make_private(root)
    assert mode(root / "f") == 0o400
    assert mode(shared) == 0o644  # a link's target outside is never touched


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 000: anything created with a default mode would be world-readable at once."""
    saved = os.umask(0)
    try:
        yield
    finally:
        os.umask(saved)


@pytest.mark.sim
def test_a_fresh_home_is_private_from_creation_and_the_first_run_says_nothing(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_umask: None
) -> None:
    assert not isolated_home.exists()
    monkeypatch.chdir(tmp_path)
    commands = [
        ["run", "nausea-relief", "--device", "sim://?speed=max&seed=1", "--json"],
        ["history"],
        ["programs", "list"],
        ["profile", "init", "me.toml"],
        ["export", "-o", "study"],
        ["report", "1", "-o", "session-1.png"],
    ]
    for argv in commands:
        done = runner.invoke(app, argv)
        assert done.exit_code == 0, (argv, done.output)
        assert "private" not in done.stderr, (argv, done.stderr)  # nothing needed fixing
    assert mode(isolated_home) == 0o700  # the ACUDEVICE_HOME it created
    assert_private(isolated_home)
    with Journal():  # the -wal and -shm too, while they exist
        assert_private(isolated_home / "data")
    assert mode(tmp_path / "me.toml") == 0o600  # a health profile
    assert mode(tmp_path / "session-1.png") == 0o600  # a session's record
    assert mode(tmp_path / "study") == 0o700
    exported = sorted(p.name for p in (tmp_path / "study").iterdir())
    assert exported == [
        "comfort_events.csv",
        "faults.csv",
        "intensity_changes.csv",
        "samples.csv",
        "sessions.csv",
    ]
    for name in exported:
        assert mode(tmp_path / "study" / name) == 0o600, name


@pytest.mark.unit
def test_an_export_into_an_existing_file_never_widens_it(
    isolated_home: Path, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    old = tmp_path / "out" / "sessions.csv"
    old.write_text("old")
    old.chmod(0o644)
    done = runner.invoke(app, ["export", "-o", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert mode(old) == 0o600 and old.read_text().startswith("session_id")


@pytest.mark.unit
def test_a_plot_of_a_program_is_not_private(tmp_path: Path) -> None:
    """Not about a person: the user's usual mode, as any file they ask for."""
    saved = os.umask(0o022)
    try:
        done = runner.invoke(
            app, ["programs", "plot", "nausea-relief", "-o", str(tmp_path / "p.png")]
        )
    finally:
        os.umask(saved)
    assert done.exit_code == 0, done.output
    assert mode(tmp_path / "p.png") == 0o644
