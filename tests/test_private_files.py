"""Bond keys and health records are private to the user: dirs 0700, files 0600."""

from __future__ import annotations

import sqlite3
import stat
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
