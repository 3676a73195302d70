"""Journal rows as records for the centre: the one place a row becomes a record.

The outbox (live, one write at a time) and `acudevice ingest --journal` (a whole journal file
at once) both build records here, so a session that reached the centre both ways carries the
same keys and is stored once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

from acudevice.store.records import (
    MAX_ROWS,
    MAX_TEXT,
    ComfortEntry,
    FaultEntry,
    IntensityEntry,
    Record,
    SamplesEntry,
    SessionEntry,
)

SampleRow = tuple[int, int, int, int, int]


def _text(value: str | None) -> str | None:
    return None if value is None else value[:MAX_TEXT]


def session_entry(row: sqlite3.Row, gateway: str | None = None) -> SessionEntry:
    """The record of a `sessions` row; `gateway` stands in when the row has none."""
    return SessionEntry(
        session_uuid=row["session_uuid"],
        rev=row["rev"],
        gateway=row["gateway"] or gateway,
        band=row["band"],
        participant=row["participant"],
        program=row["program"],
        device_model=row["device_model"],
        actuator=row["actuator"],
        cap_level=row["cap_level"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        outcome=row["outcome"],
        detail=_text(row["detail"]),
        peak_level=row["peak_level"],
        repeats_done=row["repeats_done"],
        repeats_planned=row["repeats_planned"],
        start_skew_ms=row["start_skew_ms"],
        rating_before=row["rating_before"],
        rating_after=row["rating_after"],
    )


def sample_entries(
    session_uuid: str, participant: str | None, rows: Sequence[SampleRow]
) -> Iterator[SamplesEntry]:
    for i in range(0, len(rows), MAX_ROWS):
        yield SamplesEntry(
            session_uuid=session_uuid, participant=participant, rows=list(rows[i : i + MAX_ROWS])
        )


def journal_records(db: sqlite3.Connection, gateway: str) -> Iterator[list[Record]]:
    """Every session of a journal with all its records, one list per session, oldest first;
    sessions journalled without a gateway are attributed to `gateway`."""
    for row in db.execute("SELECT * FROM sessions ORDER BY id").fetchall():
        sid, uuid, who = row["id"], row["session_uuid"], row["participant"]
        out: list[Record] = [session_entry(row, gateway)]
        samples = db.execute(
            "SELECT channel, t_ms, measured_level, target_level, state FROM samples"
            " WHERE session_id=? ORDER BY channel, t_ms",
            (sid,),
        ).fetchall()
        out += sample_entries(uuid, who, [tuple(r) for r in samples])
        for f in db.execute("SELECT * FROM faults WHERE session_id=? ORDER BY n", (sid,)):
            out.append(
                FaultEntry(
                    session_uuid=uuid,
                    participant=who,
                    n=f["n"],
                    channel=f["channel"],
                    t_ms=f["t_ms"],
                    code=f["code"],
                    message=_text(f["message"]),
                    at=f["at"],
                )
            )
        for c in db.execute("SELECT * FROM comfort_events WHERE session_id=? ORDER BY n", (sid,)):
            out.append(
                ComfortEntry(
                    session_uuid=uuid,
                    participant=who,
                    n=c["n"],
                    point=c["point"],
                    t_ms=c["t_ms"],
                    old_level=c["old_level"],
                    new_level=c["new_level"],
                    at=c["at"],
                )
            )
        for i in db.execute(
            "SELECT * FROM intensity_changes WHERE session_id=? ORDER BY n", (sid,)
        ):
            out.append(
                IntensityEntry(
                    session_uuid=uuid,
                    participant=who,
                    n=i["n"],
                    t_ms=i["t_ms"],
                    percent=i["percent"],
                    level=i["level"],
                    at=i["at"],
                )
            )
        yield out
