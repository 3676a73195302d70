"""Writing checked records into the study database, so that a second delivery adds nothing.

Samples go by COPY into a temporary staging table, then `INSERT ... SELECT ... ON CONFLICT DO
NOTHING` into `samples` (asyncpg's binary COPY is the fast path: docs/study.md). A session
keeps its highest revision whatever order revisions arrive in; events are keyed by
(`session_uuid`, `n`). The caller owns the transaction: it commits, and only then confirms.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from acudevice.store.records import (
    ComfortEntry,
    FaultEntry,
    IntensityEntry,
    Record,
    SamplesEntry,
    SessionEntry,
)

SAMPLE_COLUMNS = ("session_uuid", "channel", "t_ms", "measured_level", "target_level", "state")
_SESSION_COLUMNS = (
    "session_uuid", "rev", "gateway", "band", "participant", "program", "device_model",
    "actuator", "cap_level", "started_at", "ended_at", "outcome", "detail", "peak_level",
    "repeats_done", "repeats_planned", "start_skew_ms", "rating_before", "rating_after",
)  # fmt: skip
_UPSERT_SESSION = (
    f"INSERT INTO sessions ({', '.join(_SESSION_COLUMNS)}) VALUES "
    f"({', '.join(f'${i + 1}' for i in range(len(_SESSION_COLUMNS)))}) "
    "ON CONFLICT (session_uuid) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _SESSION_COLUMNS[1:])
    + ", received_at = now() WHERE sessions.rev < EXCLUDED.rev"
)
_EVENTS: dict[type, tuple[str, tuple[str, ...]]] = {
    FaultEntry: ("faults", ("channel", "t_ms", "code", "message")),
    ComfortEntry: ("comfort_events", ("point", "t_ms", "old_level", "new_level")),
    IntensityEntry: ("intensity_changes", ("t_ms", "percent", "level")),
}


@dataclass
class Written:
    sessions: int = 0
    samples_offered: int = 0
    samples_inserted: int = 0
    events: int = 0


def _when(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


async def prepare(conn: Any) -> None:
    """The connection's staging table (emptied at every commit)."""
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS stage_samples (LIKE samples) ON COMMIT DELETE ROWS"
    )


async def write(conn: Any, records: list[Record]) -> Written:
    """Insert `records` inside the caller's transaction."""
    out = Written()
    sessions: list[tuple[Any, ...]] = []
    rows: list[tuple[Any, ...]] = []
    events: dict[type, list[tuple[Any, ...]]] = {kind: [] for kind in _EVENTS}
    for r in records:
        if isinstance(r, SamplesEntry):
            key = UUID(r.session_uuid)
            rows += [(key, *row) for row in r.rows]
        elif isinstance(r, SessionEntry):
            values = r.model_dump(include=set(_SESSION_COLUMNS))
            values["session_uuid"] = UUID(r.session_uuid)
            values["started_at"], values["ended_at"] = _when(r.started_at), _when(r.ended_at)
            sessions.append(tuple(values[c] for c in _SESSION_COLUMNS))
        else:
            _, columns = _EVENTS[type(r)]
            values = r.model_dump()
            events[type(r)].append(
                (UUID(r.session_uuid), r.n, *(values[c] for c in columns), _when(r.at))
            )
    if sessions:
        await conn.executemany(_UPSERT_SESSION, sessions)
        out.sessions = len(sessions)
    if rows:
        await conn.copy_records_to_table("stage_samples", records=rows, columns=SAMPLE_COLUMNS)
        status = await conn.execute(
            "INSERT INTO samples SELECT * FROM stage_samples ON CONFLICT DO NOTHING"
        )
        await conn.execute("TRUNCATE stage_samples")
        out.samples_offered, out.samples_inserted = len(rows), int(status.split()[-1])
    for kind, values_list in events.items():
        if values_list:
            table, columns = _EVENTS[kind]
            names = ("session_uuid", "n", *columns, "at")
            marks = ", ".join(f"${i + 1}" for i in range(len(names)))
            await conn.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks}) ON CONFLICT DO NOTHING",
                values_list,
            )
            out.events += len(values_list)
    return out
