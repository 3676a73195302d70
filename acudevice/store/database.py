"""The one SQLite database behind the store: opening it and migrating its schema.

Migrations are ordered steps, each taking the database from version N to N+1 inside one
transaction, so a database of any earlier version opens after an upgrade and a crash
mid-migration leaves it at the last whole step. A database newer than this acudevice is
refused rather than guessed at.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

from acudevice.errors import AcuDeviceError
from acudevice.paths import private_data_dir, private_file

DATABASE_NAME = "journal.sqlite3"


class StoreError(AcuDeviceError):
    """The database cannot be opened or is not ours."""


_V1 = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    program TEXT NOT NULL,
    devices TEXT NOT NULL,
    device_model TEXT NOT NULL,
    actuator TEXT NOT NULL,
    cap_level INTEGER NOT NULL,
    limits TEXT NOT NULL,
    confirmations TEXT NOT NULL,
    schedule TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    outcome TEXT NOT NULL,
    detail TEXT,
    peak_level INTEGER,
    repeats_done INTEGER NOT NULL DEFAULT 0,
    repeats_planned INTEGER NOT NULL,
    start_skew_ms REAL,
    rating_before INTEGER,
    rating_after INTEGER,
    pid INTEGER NOT NULL
);
CREATE TABLE samples (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    channel INTEGER NOT NULL,
    t_ms INTEGER NOT NULL,
    measured_level INTEGER NOT NULL,
    target_level INTEGER NOT NULL,
    state INTEGER NOT NULL
);
CREATE INDEX samples_by_session ON samples(session_id, channel, t_ms);
CREATE TABLE faults (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    channel INTEGER NOT NULL,
    t_ms INTEGER,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE comfort_events (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    point TEXT NOT NULL,
    t_ms INTEGER,
    old_level INTEGER,
    new_level INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE comfort_max (
    point TEXT NOT NULL,
    actuator TEXT NOT NULL,
    level INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (point, actuator)
);
"""

_V2 = """
CREATE TABLE paired_devices (
    address TEXT PRIMARY KEY COLLATE NOCASE,
    alias TEXT UNIQUE COLLATE NOCASE,
    entry TEXT NOT NULL
);
"""


_V3 = """
ALTER TABLE sessions ADD COLUMN session_uuid TEXT;
ALTER TABLE sessions ADD COLUMN gateway TEXT;
ALTER TABLE sessions ADD COLUMN band TEXT;
ALTER TABLE sessions ADD COLUMN participant TEXT;
ALTER TABLE sessions ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sessions_by_participant ON sessions(participant);
ALTER TABLE faults ADD COLUMN n INTEGER;
ALTER TABLE comfort_events ADD COLUMN n INTEGER;
UPDATE faults SET n = (SELECT COUNT(*) FROM faults AS f
    WHERE f.session_id = faults.session_id AND f.rowid <= faults.rowid);
UPDATE comfort_events SET n = (SELECT COUNT(*) FROM comfort_events AS c
    WHERE c.session_id = comfort_events.session_id AND c.rowid <= comfort_events.rowid);
CREATE TABLE intensity_changes (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    n INTEGER NOT NULL,
    t_ms INTEGER,
    percent INTEGER NOT NULL,
    level INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE comfort_max_by_participant (
    participant TEXT NOT NULL DEFAULT '',
    point TEXT NOT NULL,
    actuator TEXT NOT NULL,
    level INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (participant, point, actuator)
);
INSERT INTO comfort_max_by_participant
    SELECT '', point, actuator, level, updated_at FROM comfort_max;
DROP TABLE comfort_max;
ALTER TABLE comfort_max_by_participant RENAME TO comfort_max;
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    participant TEXT,
    units INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX outbox_by_participant ON outbox(participant);
CREATE TABLE outbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE withdrawn (participant TEXT PRIMARY KEY, at REAL NOT NULL)
"""


def _v3(db: sqlite3.Connection) -> None:
    """Identity for the study: a global UUID per session, participants, and the outbox.

    Sessions already journalled get a UUID and no participant; the comfort maxima remembered
    so far become the single-host user's (participant ''). Nothing old is queued for the
    centre: `acudevice ingest --journal` brings a whole journal there.
    """
    _script(_V3)(db)
    for (session_id,) in db.execute("SELECT id FROM sessions").fetchall():
        db.execute("UPDATE sessions SET session_uuid=? WHERE id=?", (str(uuid.uuid4()), session_id))
    db.execute("CREATE UNIQUE INDEX sessions_by_uuid ON sessions(session_uuid)")
    db.execute("INSERT INTO outbox_meta VALUES ('epoch', ?)", (uuid.uuid4().hex,))


_V4 = """
CREATE TABLE comfort_changes (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    participant TEXT NOT NULL DEFAULT '',
    point TEXT NOT NULL,
    actuator TEXT NOT NULL,
    old_level INTEGER,
    new_level INTEGER,
    reason TEXT NOT NULL,
    who TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX comfort_changes_by_point ON comfort_changes(participant, point, actuator)
"""
"""A remembered comfort maximum set or forgotten by hand: who, when, why, from what, to what
(`new_level` NULL: forgotten). "Too strong" lowerings stay in `comfort_events`."""


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    def step(db: sqlite3.Connection) -> None:
        for statement in sql.split(";"):
            if statement.strip():
                db.execute(statement)

    return step


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _script(_V1),  # 0 -> 1: sessions, samples, faults, comfort
    _script(_V2),  # 1 -> 2: paired devices move here from devices.json
    _v3,  # 2 -> 3: session UUIDs, participants, intensity changes, the outbox
    _script(_V4),  # 3 -> 4: the log of comfort maxima set or reset by hand
)
SCHEMA_VERSION = len(MIGRATIONS)


def default_path() -> Path:
    return private_data_dir() / DATABASE_NAME


def migrate(db: sqlite3.Connection, path: Path) -> int:
    """Bring the schema up to date, one transaction per step; returns the old version."""
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: database schema {version} is newer than this acudevice "
            f"(knows up to {SCHEMA_VERSION}); upgrade acudevice"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if db.execute("PRAGMA user_version").fetchone()[0] >= target:
                db.execute("ROLLBACK")
                continue
            MIGRATIONS[target - 1](db)
            db.execute(f"PRAGMA user_version={target}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return version


def open_database(path: Path | None = None) -> tuple[sqlite3.Connection, Path]:
    """A connection in WAL mode with the schema migrated to the current version."""
    path = path or default_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        private_file(path)  # health records and bond keys: SQLite gives -wal and -shm this mode
        db = sqlite3.connect(path, timeout=10, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        migrate(db, path)
    except (sqlite3.Error, UnicodeDecodeError) as exc:  # a damaged header decodes badly
        raise StoreError(f"{path}: cannot open the database: {exc}") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the database: {exc.strerror or exc}") from None
    return db, path
