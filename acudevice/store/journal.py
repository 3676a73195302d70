"""The session journal: sessions, samples, faults and comfort in the store's SQLite database.

A session row is written before the device moves and updated as it ends, so a crash or
SIGKILL leaves a row that the next open marks `interrupted`; WAL keeps earlier sessions
intact whatever happens to the writer.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from acudevice.store.database import SCHEMA_VERSION, StoreError, open_database

Outcome = Literal[
    "running", "completed", "stopped", "estopped", "link-lost", "faulted", "interrupted"
]

MAX_SAMPLES_PER_SESSION = 20_000


JournalError = StoreError
"""The journal database cannot be opened or is not ours."""


class SessionRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    program: str
    devices: list[str]
    device_model: str
    actuator: str
    cap_level: int
    confirmations: list[dict[str, Any]]
    schedule: dict[str, Any]
    started_at: float
    ended_at: float | None
    outcome: Outcome
    detail: str | None
    peak_level: int | None
    repeats_done: int
    repeats_planned: int
    start_skew_ms: float | None
    rating_before: int | None
    rating_after: int | None


class Sample(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: int
    t_ms: int
    measured_level: int
    target_level: int
    state: int


SampleRow = tuple[int, int, int, int, int]
"""(channel, t_ms, measured_level, target_level, state): a `Sample` as the journal stores it."""


class FaultRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: int
    t_ms: int | None
    code: str
    message: str


class ComfortEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    point: str
    t_ms: int | None
    old_level: int | None
    new_level: int


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Journal:
    """One connection to the journal; use as a context manager."""

    def __init__(self, path: Path | None = None) -> None:
        self._db, self.path = open_database(path)
        self._sample_counts: dict[int, int] = {}
        """Samples written per session by this connection: one process writes a session, so
        the cap is kept without counting the table at every write."""
        self.mark_interrupted()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write; a full disk or a read-only file becomes a JournalError naming the file."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise JournalError(f"{self.path}: cannot write the journal: {exc}") from None

    def check_writable(self) -> None:
        """Raise JournalError now if nothing could be recorded (read-only file, full disk):
        a session must not start that its journal cannot follow."""
        with self._transaction():
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def mark_interrupted(self) -> int:
        """Rows left `running` by a process that no longer exists become `interrupted`."""
        try:
            rows = self._db.execute(
                "SELECT id, pid FROM sessions WHERE outcome = 'running'"
            ).fetchall()
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise JournalError(f"{self.path}: cannot read the journal: {exc}") from None
        dead = [r["id"] for r in rows if not _pid_alive(r["pid"])]
        if not dead:
            return 0  # nothing to write: a read-only journal can still be read
        with self._transaction():
            for session_id in dead:
                self._db.execute(
                    "UPDATE sessions SET outcome='interrupted', detail=COALESCE(detail, "
                    "'the host process ended without closing the session') WHERE id=?",
                    (session_id,),
                )
        return len(dead)

    def begin_session(
        self,
        *,
        program: str,
        devices: Sequence[str],
        device_model: str,
        actuator: str,
        cap_level: int,
        limits: dict[str, Any],
        confirmations: list[dict[str, Any]],
        schedule: dict[str, Any],
        repeats_planned: int,
        rating_before: int | None = None,
    ) -> int:
        with self._transaction():
            cur = self._db.execute(
                "INSERT INTO sessions (program, devices, device_model, actuator, cap_level, limits,"
                " confirmations, schedule, started_at, outcome, repeats_planned, rating_before, pid)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                (
                    program,
                    json.dumps(list(devices)),
                    device_model,
                    actuator,
                    cap_level,
                    json.dumps(limits),
                    json.dumps(confirmations),
                    json.dumps(schedule),
                    time.time(),
                    repeats_planned,
                    rating_before,
                    os.getpid(),
                ),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def end_session(
        self,
        session_id: int,
        *,
        outcome: Outcome,
        detail: str | None = None,
        peak_level: int | None = None,
        repeats_done: int = 0,
        start_skew_ms: float | None = None,
    ) -> None:
        with self._transaction():
            self._db.execute(
                "UPDATE sessions SET outcome=?, detail=?, peak_level=?, repeats_done=?,"
                " start_skew_ms=?, ended_at=? WHERE id=?",
                (outcome, detail, peak_level, repeats_done, start_skew_ms, time.time(), session_id),
            )

    def rate_after(self, session_id: int, rating: int) -> None:
        with self._transaction():
            self._db.execute("UPDATE sessions SET rating_after=? WHERE id=?", (rating, session_id))

    def add_samples(self, session_id: int, samples: Sequence[Sample]) -> None:
        self.add_sample_rows(
            session_id,
            [(s.channel, s.t_ms, s.measured_level, s.target_level, s.state) for s in samples],
        )

    def add_sample_rows(self, session_id: int, rows: Sequence[SampleRow]) -> None:
        """`add_samples` for rows a session built from telemetry it already validated."""
        if not rows:
            return
        with self._transaction():
            count = self._sample_counts.get(session_id)
            if count is None:
                count = self._db.execute(
                    "SELECT COUNT(*) FROM samples WHERE session_id=?", (session_id,)
                ).fetchone()[0]
            kept = rows[: max(MAX_SAMPLES_PER_SESSION - count, 0)]
            self._db.executemany(
                "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?)",
                [(session_id, *row) for row in kept],
            )
        self._sample_counts[session_id] = count + len(kept)

    def add_fault(
        self, session_id: int, *, channel: int, t_ms: int | None, code: str, message: str
    ) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT INTO faults VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, channel, t_ms, code, message, time.time()),
            )

    def add_comfort_event(
        self,
        session_id: int,
        *,
        point: str,
        actuator: str,
        t_ms: int | None,
        old_level: int | None,
        new_level: int,
    ) -> None:
        """Record a "too strong" and lower the remembered maximum for that point."""
        now = time.time()
        with self._transaction():
            self._db.execute(
                "INSERT INTO comfort_events VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, point, t_ms, old_level, new_level, now),
            )
            self._db.execute(
                "INSERT INTO comfort_max VALUES (?, ?, ?, ?) ON CONFLICT(point, actuator) DO UPDATE"
                " SET level=MIN(level, excluded.level), updated_at=excluded.updated_at",
                (point, actuator, new_level, now),
            )

    def comfort_max(self, actuator: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT point, level FROM comfort_max WHERE actuator=?", (actuator,)
        ).fetchall()
        return {r["point"]: r["level"] for r in rows}

    def session(self, session_id: int) -> SessionRecord:
        row = self._db.execute("SELECT * FROM sessions WHERE id=?", (session_id,)).fetchone()
        if row is None:
            raise JournalError(f"no session {session_id} in {self.path}")
        return _record(row)

    def sessions(self, limit: int = 50) -> list[SessionRecord]:
        rows = self._db.execute(
            "SELECT * FROM sessions ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_record(r) for r in rows]

    def sessions_since(self, started_at: float | None = None) -> list[SessionRecord]:
        """Every session started at or after `started_at` (epoch seconds), oldest first."""
        rows = self._db.execute(
            "SELECT * FROM sessions WHERE started_at >= ? ORDER BY id",
            (started_at if started_at is not None else float("-inf"),),
        ).fetchall()
        return [_record(r) for r in rows]

    def samples(self, session_id: int) -> list[Sample]:
        rows = self._db.execute(
            "SELECT channel, t_ms, measured_level, target_level, state FROM samples"
            " WHERE session_id=? ORDER BY channel, t_ms",
            (session_id,),
        ).fetchall()
        return [Sample(**dict(r)) for r in rows]

    def faults(self, session_id: int) -> list[FaultRecord]:
        rows = self._db.execute(
            "SELECT channel, t_ms, code, message FROM faults WHERE session_id=? ORDER BY at",
            (session_id,),
        ).fetchall()
        return [FaultRecord(**dict(r)) for r in rows]

    def comfort_events(self, session_id: int) -> list[ComfortEvent]:
        rows = self._db.execute(
            "SELECT point, t_ms, old_level, new_level FROM comfort_events WHERE session_id=?"
            " ORDER BY at",
            (session_id,),
        ).fetchall()
        return [ComfortEvent(**dict(r)) for r in rows]

    def integrity_ok(self) -> bool:
        return bool(self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


def _record(row: sqlite3.Row) -> SessionRecord:
    data = dict(row)
    data.pop("limits")
    data.pop("pid")
    data["devices"] = json.loads(data["devices"])
    data["confirmations"] = json.loads(data["confirmations"])
    data["schedule"] = json.loads(data["schedule"])
    return SessionRecord(**data)
