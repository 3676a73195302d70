"""The session journal: sessions, samples, faults and comfort in the store's SQLite database.

A session row is written before the device moves and updated as it ends, so a crash or
SIGKILL leaves a row that the next open marks `interrupted`; WAL keeps earlier sessions
intact whatever happens to the writer.

A session journalled by a gateway (`begin_session(gateway=...)`) also queues every write as a
record for the centre, in the same transaction (store/outbox.py); a single host's sessions
are not queued. Every session has a globally unique `session_uuid`, and may name the
participant who wore the band: comfort maxima are remembered per participant.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from acudevice.errors import InputError, Problem
from acudevice.store.comfort import ComfortMemory
from acudevice.store.database import SCHEMA_VERSION, StoreError, open_database
from acudevice.store.identity import check_participant
from acudevice.store.models import (
    Outcome,
    Sample,
)
from acudevice.store.models import (
    SampleRow as SampleRow,  # re-exported: the session layer names it here
)
from acudevice.store.outbox import Outbox, OutboxBound, OutboxStatus
from acudevice.store.outgoing import journal_records, sample_entries, session_entry
from acudevice.store.reading import JournalReader
from acudevice.store.records import (
    MAX_TEXT,
    ComfortEntry,
    FaultEntry,
    IntensityEntry,
    Record,
    encode,
)

MAX_SAMPLES_PER_SESSION = 20_000


JournalError = StoreError
"""The journal database cannot be opened or is not ours."""


_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


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


class _Identity:
    """What every record of a session carries; `queued` when its records go to the outbox."""

    __slots__ = ("participant", "queued", "uuid")

    def __init__(self, uuid: str, participant: str | None, queued: bool) -> None:
        self.uuid, self.participant, self.queued = uuid, participant, queued


class Journal(JournalReader):
    """One connection to the journal; use as a context manager."""

    def __init__(
        self, path: Path | None = None, *, outbox_bound: OutboxBound | None = None
    ) -> None:
        self._db, self.path = open_database(path)
        self._sample_counts: dict[int, int] = {}
        """Samples written per session by this connection: one process writes a session, so
        the cap is kept without counting the table at every write."""
        self._identities: dict[int, _Identity] = {}
        self.comfort_memory = ComfortMemory(self._db, self._transaction, self.path)
        """Remembered maxima listed, set or forgotten with a logged reason."""
        try:
            self.outbox = Outbox(self._db, outbox_bound)
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot read the outbox: {exc}") from None
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
                    "'the host process ended without closing the session'), rev=rev+1"
                    " WHERE id=?",
                    (session_id,),
                )
                self._queue_session(session_id)
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
        participant: str | None = None,
        gateway: str | None = None,
        band: str | None = None,
    ) -> int:
        """Write the session's row before anything moves; with a `gateway`, queue it too.

        Refused (InputError) for a participant who is not a pseudonym or has withdrawn.
        """
        if participant is not None:
            check_participant(participant)
        for name, value in (("gateway", gateway), ("band", band)):
            if value is not None and not _NAME.fullmatch(value):
                raise InputError(
                    [
                        Problem(
                            name,
                            "",
                            f"{value!r} must be 1-64 letters, digits, '_', '-', '.' or ':'",
                        )
                    ]
                )
        session_uuid = str(uuid.uuid4())
        with self._transaction():
            if participant is not None and self.has_withdrawn(participant):
                raise InputError(
                    [Problem("participant", "", f"{participant!r} has withdrawn from the study")]
                )
            cur = self._db.execute(
                "INSERT INTO sessions (program, devices, device_model, actuator, cap_level, limits,"
                " confirmations, schedule, started_at, outcome, repeats_planned, rating_before, pid,"
                " session_uuid, gateway, band, participant)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
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
                    session_uuid,
                    gateway,
                    band,
                    participant,
                ),
            )
            assert cur.lastrowid is not None
            self._identities[cur.lastrowid] = _Identity(
                session_uuid, participant, gateway is not None
            )
            self._queue_session(cur.lastrowid)
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
                " start_skew_ms=?, ended_at=?, rev=rev+1 WHERE id=?",
                (outcome, detail, peak_level, repeats_done, start_skew_ms, time.time(), session_id),
            )
            self._queue_session(session_id)

    def rate_after(self, session_id: int, rating: int) -> None:
        with self._transaction():
            self._db.execute(
                "UPDATE sessions SET rating_after=?, rev=rev+1 WHERE id=?", (rating, session_id)
            )
            self._queue_session(session_id)

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
            who = self._identity(session_id)
            if who.queued:
                for entry in sample_entries(who.uuid, who.participant, kept):
                    self.outbox.add(
                        encode(entry), participant=who.participant, units=len(entry.rows)
                    )
        self._sample_counts[session_id] = count + len(kept)

    def add_fault(
        self, session_id: int, *, channel: int, t_ms: int | None, code: str, message: str
    ) -> None:
        self._add_event(
            "faults",
            session_id,
            FaultEntry,
            dict(channel=channel, t_ms=t_ms, code=code, message=message),
            dict(code=code[:64], message=message[:MAX_TEXT]),
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
        """Record a "too strong" and lower the remembered maximum for that point, for the
        session's own participant (the single-host user when it names none)."""

        def lower(who: _Identity, now: float) -> None:
            self._db.execute(
                "INSERT INTO comfort_max VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(participant, point, actuator) DO UPDATE"
                " SET level=MIN(level, excluded.level), updated_at=excluded.updated_at",
                (who.participant or "", point, actuator, new_level, now),
            )

        fields = dict(point=point, t_ms=t_ms, old_level=old_level, new_level=new_level)
        self._add_event("comfort_events", session_id, ComfortEntry, fields, then=lower)

    def add_intensity_change(
        self, session_id: int, *, t_ms: int | None, percent: int, level: int
    ) -> None:
        """Record a remote "intensity" lowering: `percent` of the plan, `level` the new cap."""
        fields = dict(t_ms=t_ms, percent=percent, level=level)
        self._add_event("intensity_changes", session_id, IntensityEntry, fields)

    def _add_event(
        self,
        table: str,
        session_id: int,
        entry: type[FaultEntry | ComfortEntry | IntensityEntry],
        fields: dict[str, Any],
        overrides: dict[str, Any] | None = None,
        *,
        then: Callable[[_Identity, float], None] | None = None,
    ) -> None:
        """One numbered event row and, for a gateway's session, its record in the outbox."""
        now = time.time()
        with self._transaction():
            n = self._next(table, session_id)
            columns = {"session_id": session_id, "n": n, "at": now, **fields}
            self._db.execute(
                f"INSERT INTO {table} ({', '.join(columns)})"
                f" VALUES ({', '.join('?' * len(columns))})",
                tuple(columns.values()),
            )
            who = self._identity(session_id)
            if then is not None:
                then(who, now)
            if who.queued:
                record = entry(
                    session_uuid=who.uuid,
                    participant=who.participant,
                    n=n,
                    at=now,
                    **{**fields, **(overrides or {})},
                )
                self.outbox.add(encode(record), participant=who.participant, units=1)

    def comfort_max(self, actuator: str, *, participant: str | None = None) -> dict[str, int]:
        """Remembered maxima per point for `participant` (None: the single-host user)."""
        rows = self._db.execute(
            "SELECT point, level FROM comfort_max WHERE actuator=? AND participant=?",
            (actuator, participant or ""),
        ).fetchall()
        return {r["point"]: r["level"] for r in rows}

    def withdraw(self, participant: str) -> int:
        """Delete everything journalled about `participant` (sessions, samples, events,
        comfort maxima, queued records) and refuse their sessions from now on; returns how
        many sessions went."""
        check_participant(participant)
        with self._transaction():
            self._db.execute(
                "INSERT INTO withdrawn VALUES (?, ?) ON CONFLICT(participant) DO NOTHING",
                (participant, time.time()),
            )
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT id FROM sessions WHERE participant=?", (participant,)
                ).fetchall()
            ]
            for table in ("samples", "faults", "comfort_events", "intensity_changes"):
                self._db.executemany(f"DELETE FROM {table} WHERE session_id=?", [(i,) for i in ids])
            self._db.execute("DELETE FROM sessions WHERE participant=?", (participant,))
            self._db.execute("DELETE FROM comfort_max WHERE participant=?", (participant,))
            self.comfort_memory.forget(participant)
            self.outbox.forget(participant)
        for i in ids:
            self._identities.pop(i, None)
            self._sample_counts.pop(i, None)
        return len(ids)

    def withdrawn(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT participant FROM withdrawn ORDER BY 1")]

    def acknowledge(self, ranges: Sequence[tuple[int, int]]) -> int:
        """The centre has committed these outbox rows: delete them; returns how many went."""
        with self._transaction():
            return self.outbox.delete(ranges)

    def outbox_status(self) -> OutboxStatus:
        return self.outbox.status()

    def records(self, gateway: str) -> Iterator[list[Record]]:
        """Every session with its records, for `acudevice ingest --journal` (the outbox
        holds only what a gateway has not yet delivered)."""
        return journal_records(self._db, gateway)

    def has_withdrawn(self, participant: str) -> bool:
        """True once `withdraw(participant)` ran on this journal: their sessions are refused."""
        row = self._db.execute("SELECT 1 FROM withdrawn WHERE participant=?", (participant,))
        return row.fetchone() is not None

    def _identity(self, session_id: int) -> _Identity:
        who = self._identities.get(session_id)
        if who is None:
            row = self._db.execute(
                "SELECT session_uuid, participant, gateway FROM sessions WHERE id=?",
                (session_id,),
            ).fetchone()
            if row is None:
                raise JournalError(f"no session {session_id} in {self.path}")
            who = _Identity(row[0], row[1], row[2] is not None)
            self._identities[session_id] = who
        return who

    def _next(self, table: str, session_id: int) -> int:
        row = self._db.execute(
            f"SELECT COALESCE(MAX(n), 0) + 1 FROM {table} WHERE session_id=?", (session_id,)
        ).fetchone()
        return int(row[0])

    def _queue_session(self, session_id: int) -> None:
        who = self._identity(session_id)
        if who.queued:
            row = self._db.execute("SELECT * FROM sessions WHERE id=?", (session_id,)).fetchone()
            self.outbox.add(encode(session_entry(row)), participant=who.participant, units=1)
