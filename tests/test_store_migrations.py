"""The store's schema moves forward step by step, and nobody is locked out of their history.

`tests/data/journal-v1.sqlite3` was written by acudevice 0.1.0 (schema version 1: three
sessions with samples, a fault, a comfort event and ratings) and is never changed by tests.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import pytest

from acudevice.store import SCHEMA_VERSION, Journal, PairedDevices, StoreError, database

pytestmark = pytest.mark.unit

V1 = Path(__file__).parent / "data" / "journal-v1.sqlite3"


def _copy_v1(tmp_path: Path) -> Path:
    target = tmp_path / "data" / "journal.sqlite3"
    target.parent.mkdir(parents=True)
    shutil.copyfile(V1, target)
    return target


def _version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_the_fixture_is_a_version_1_database() -> None:
    assert _version(V1) == 1


def test_a_version_1_journal_opens_with_every_session_kept(tmp_path: Path) -> None:
    path = _copy_v1(tmp_path)
    with Journal(path) as journal:
        sessions = journal.sessions(10)
        assert [s.program for s in sorted(sessions, key=lambda s: s.id)] == [
            "nausea-relief",
            "headache",
            "sleep",
        ]
        assert [s.outcome for s in sorted(sessions, key=lambda s: s.id)] == [
            "completed",
            "stopped",
            "faulted",
        ]
        assert all(len(journal.samples(s.id)) == 40 for s in sessions)
        assert [f.code for s in sessions for f in journal.faults(s.id)] == ["SENSOR"]
        assert journal.comfort_max("pressure") == {"PC6": 8400}
        assert journal.integrity_ok()
    assert _version(path) == SCHEMA_VERSION


def test_paired_bands_live_in_the_migrated_journal_database(tmp_path: Path) -> None:
    path = _copy_v1(tmp_path)
    with PairedDevices(path) as paired:
        assert paired.all() == []
    with Journal(path) as journal:
        assert len(journal.sessions(10)) == 3


@pytest.mark.parametrize("start", range(SCHEMA_VERSION))
def test_every_earlier_version_migrates_to_the_current_one(start: int, tmp_path: Path) -> None:
    """Build a database at `start` with the steps of that time, then open it today."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        for step in database.MIGRATIONS[:start]:
            step(db)
        db.execute(f"PRAGMA user_version={start}")
    with Journal(path) as journal:
        assert journal.sessions(1) == []
    with PairedDevices(path) as paired:
        assert paired.all() == []
    assert _version(path) == SCHEMA_VERSION


def test_a_failing_step_leaves_the_database_at_the_last_whole_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy_v1(tmp_path)

    def half_done(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(database, "MIGRATIONS", (*database.MIGRATIONS, half_done))
    monkeypatch.setattr(database, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="cannot open the database"):
        Journal(path)
    assert _version(path) == SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables and "paired_devices" in tables


def test_a_newer_database_is_refused_with_its_path(tmp_path: Path) -> None:
    path = _copy_v1(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 7}")
    with pytest.raises(StoreError, match=re.escape(str(path)) + ".*newer than this acudevice"):
        Journal(path)


def test_the_cli_says_so_in_one_line_for_a_newer_database(isolated_home: Path) -> None:
    path = isolated_home / "data" / "journal.sqlite3"
    path.parent.mkdir(parents=True)
    shutil.copyfile(V1, path)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    done = subprocess.run(
        [sys.executable, "-m", "acudevice.cli", "history"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "newer than this acudevice" in done.stderr


def test_bands_paired_before_the_move_are_imported_once(isolated_home: Path) -> None:
    data = isolated_home / "data"
    data.mkdir(parents=True)
    entry = {
        "address": "C0:FF:EE:00:00:01",
        "alias": "left-wrist",
        "name": "AcuBand",
        "model": "wristband-p1",
        "firmware": "sim-1.0",
        "serial": "SIM-1",
        "paired_at": 1_700_000_000.0,
        "bond": {"keystore": str(data / "ble" / "bonds.json"), "identity": "F0:00:00:00:00:01"},
    }
    (data / "devices.json").write_text(json.dumps({"version": 1, "devices": [entry]}))
    with PairedDevices() as paired:
        assert paired.get("LEFT-WRIST").address == "C0:FF:EE:00:00:01"
    assert not (data / "devices.json").exists()
    assert (data / "devices.json.imported").exists()
    with PairedDevices() as paired:
        assert [d.alias for d in paired.all()] == ["left-wrist"]


def test_a_damaged_legacy_file_is_named_and_not_lost(isolated_home: Path) -> None:
    data = isolated_home / "data"
    data.mkdir(parents=True)
    (data / "devices.json").write_text("{not json")
    with pytest.raises(StoreError, match=r"devices\.json is damaged"):
        PairedDevices()
    assert (data / "devices.json").read_text() == "{not json"


def _database_at(start: int, path: Path) -> None:
    """A database left by the acudevice of schema `start`, with what its users had journalled:
    two sessions (one with a fault and a "too strong") and a remembered comfort maximum."""
    with sqlite3.connect(path) as db:
        for step in database.MIGRATIONS[:start]:
            step(db)
        db.execute(f"PRAGMA user_version={start}")
        if start == 0:
            return
        for program in ("nausea-relief", "headache"):
            db.execute(
                "INSERT INTO sessions (program, devices, device_model, actuator, cap_level,"
                " limits, confirmations, schedule, started_at, outcome, repeats_planned, pid)"
                " VALUES (?, '[]', 'wristband-p1', 'pressure', 20000, '{}', '[]', '{}',"
                " 1.7e9, 'completed', 4, 1)",
                (program,),
            )
        if start >= 3:  # from then on every session has its UUID
            for sid in (1, 2):
                db.execute("UPDATE sessions SET session_uuid=? WHERE id=?", (str(uuid4()), sid))
        db.execute("INSERT INTO samples VALUES (1, 0, 0, 100, 100, 2)")

        def add(table: str, **row: object) -> None:
            if start >= 3:  # events are numbered per session from version 3
                row["n"] = db.execute(
                    f"SELECT COUNT(*) + 1 FROM {table} WHERE session_id=?", (row["session_id"],)
                ).fetchone()[0]
            marks = ", ".join("?" * len(row))
            db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", (*row.values(),))

        for sid, t_ms in ((1, 10), (2, 10), (2, 20)):
            add(
                "faults",
                session_id=sid,
                channel=0,
                t_ms=t_ms,
                code="SENSOR",
                message="drift",
                at=1.7e9,
            )
        add(
            "comfort_events",
            session_id=1,
            point="PC6",
            t_ms=5,
            old_level=9000,
            new_level=8000,
            at=1.7e9,
        )
        db.execute(
            "INSERT INTO comfort_max (point, actuator, level, updated_at)"
            " VALUES ('PC6', 'pressure', 8000, 1.7e9)"
        )


@pytest.mark.parametrize("start", range(1, SCHEMA_VERSION))
def test_sessions_of_every_earlier_version_get_a_uuid_and_keep_their_history(
    start: int, tmp_path: Path
) -> None:
    import uuid

    path = tmp_path / "old.sqlite3"
    _database_at(start, path)
    with Journal(path) as journal:
        sessions = sorted(journal.sessions(10), key=lambda s: s.id)
        assert [s.program for s in sessions] == ["nausea-relief", "headache"]
        uuids = {uuid.UUID(s.session_uuid) for s in sessions}
        assert len(uuids) == 2 and all(u.version == 4 for u in uuids)
        assert all(s.participant is None and s.gateway is None for s in sessions)
        assert journal.comfort_max("pressure") == {"PC6": 8000}  # the single-host user's
        assert journal.comfort_max("pressure", participant="P1") == {}
        assert [len(journal.faults(s.id)) for s in sessions] == [1, 2]
        assert journal.outbox_status().entries == 0  # nothing old is queued by itself
        records = [r for session in journal.records("laptop") for r in session]
    faults = [r for r in records if r.kind == "fault"]
    assert sorted((f.session_uuid, f.n) for f in faults) == sorted(  # type: ignore[union-attr]
        [
            (sessions[0].session_uuid, 1),
            (sessions[1].session_uuid, 1),
            (sessions[1].session_uuid, 2),
        ]
    )
