"""Adherence of every enrolled participant, from the central store (plan/adherence.py counts).

Every session of an enrolled participant counts against their timetable, whatever program
it ran: a gateway serving an enrolled participant runs the study's program. Withdrawn
participants are left out (their sessions are gone). Nothing here reads the sealed schema:
adherence per arm needs the arms from an unblinding (study/allocations.py), given by the
caller.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from acudevice.plan.adherence import DayAdherence, adherence, totals
from acudevice.plan.timetable import SessionMark, Timetable


@dataclass
class ParticipantAdherence:
    participant: str
    study: str
    timetable: Timetable
    days: list[DayAdherence] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        return totals(self.days)


async def enrolled_adherence(
    conn: Any, now: dt.datetime, participant: str | None = None
) -> list[ParticipantAdherence]:
    """Per enrolled participant (or just `participant`), day by day, as of `now`."""
    enrolled = await conn.fetch(
        "SELECT e.participant, e.study, e.timetable FROM enrolments e"
        " WHERE NOT EXISTS (SELECT 1 FROM withdrawn w WHERE w.participant = e.participant)"
        " AND ($1::text IS NULL OR e.participant = $1) ORDER BY e.participant",
        participant,
    )
    sessions: dict[str, list[SessionMark]] = {}
    for row in await conn.fetch(
        "SELECT se.participant, se.started_at, se.outcome FROM sessions se"
        " JOIN enrolments e USING (participant)"
        " WHERE $1::text IS NULL OR se.participant = $1",
        participant,
    ):
        sessions.setdefault(row["participant"], []).append(
            SessionMark(row["started_at"], row["outcome"])
        )
    out = []
    for row in enrolled:
        timetable = Timetable.model_validate_json(row["timetable"])
        days = adherence(timetable, sessions.get(row["participant"], []), now)
        out.append(ParticipantAdherence(row["participant"], row["study"], timetable, days))
    return out
