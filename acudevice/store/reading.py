"""Reading the journal back: sessions, samples, faults and comfort events as models."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from acudevice.store.database import StoreError
from acudevice.store.models import (
    CapChange,
    ComfortEvent,
    FaultRecord,
    IntensityChange,
    Sample,
    SessionRecord,
)


class JournalReader:
    """The read side of `Journal` (which holds the connection)."""

    _db: sqlite3.Connection
    path: Path

    def session(self, session_id: int) -> SessionRecord:
        row = self._db.execute("SELECT * FROM sessions WHERE id=?", (session_id,)).fetchone()
        if row is None:
            raise StoreError(f"no session {session_id} in {self.path}")
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

    def intensity_changes(self, session_id: int) -> list[IntensityChange]:
        rows = self._db.execute(
            "SELECT t_ms, percent, level FROM intensity_changes WHERE session_id=? ORDER BY n",
            (session_id,),
        ).fetchall()
        return [IntensityChange(**dict(r)) for r in rows]

    def cap_changes(self, session_id: int) -> list[CapChange]:
        """Each time the session's cap stepped down, in session time: a "too strong" or a
        lower intensity; never up."""
        record = self.session(session_id)
        moves: list[tuple[int, int, CapChange]] = []
        for i, c in enumerate(self.comfort_events(session_id)):
            step = CapChange(
                t_ms=c.t_ms,
                level=c.new_level,
                previous=0,
                cause="too-strong",
                felt_level=c.old_level,
            )
            moves.append((c.t_ms or 0, i, step))
        for i, change in enumerate(self.intensity_changes(session_id)):
            step = CapChange(
                t_ms=change.t_ms,
                level=change.level,
                previous=0,
                cause="intensity",
                percent=change.percent,
            )
            moves.append((change.t_ms or 0, 1_000_000 + i, step))
        cap = record.cap_level
        steps: list[CapChange] = []
        for _, _, step in sorted(moves, key=lambda m: (m[0], m[1])):
            if step.level < cap:
                steps.append(step.model_copy(update={"previous": cap}))
                cap = step.level
        return steps

    def integrity_ok(self) -> bool:
        return bool(self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


def _record(row: sqlite3.Row) -> SessionRecord:
    data = dict(row)
    data.pop("limits")
    data.pop("pid")
    data.pop("rev")
    data["devices"] = json.loads(data["devices"])
    data["confirmations"] = json.loads(data["confirmations"])
    data["schedule"] = json.loads(data["schedule"])
    return SessionRecord(**data)
