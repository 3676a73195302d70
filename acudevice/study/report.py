"""How a study is going, at a glance: per participant and day, and who has gone quiet.

Per participant and day (the participant's local date when enrolled in a study, else the
UTC date): sessions started, completed, faulted (faulted, estopped or link lost), stopped
(stopped or interrupted), minutes of stimulation (channel 0's samples in RUNNING, 250 ms
each) and "too strong" presses; for enrolled participants, adherence to their timetable
(done / late / failed / missed / due / extra, plan/adherence.py). Then participants with no
session for `quiet_days` or more, and gateways not heard from (no batch committed) for
`quiet_hours`. Arms appear only when the caller passes them, from a logged unblinding.
The figure is a heatmap of minutes with the counts written in each cell, and missed windows
framed in red; matplotlib is imported only to draw it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from acudevice.plan.adherence import totals
from acudevice.protocol import FirmwareState
from acudevice.study.adherence import enrolled_adherence

FAULTED = ("faulted", "estopped", "link-lost")
STOPPED = ("stopped", "interrupted")


@dataclass
class Cell:
    participant: str
    day: str
    started: int = 0
    completed: int = 0
    faulted: int = 0
    stopped: int = 0
    minutes: float = 0.0
    too_strong: int = 0


@dataclass
class Report:
    generated_utc: str
    participants: list[str]
    days: list[str]
    cells: list[Cell]
    quiet_participants: list[dict[str, Any]] = field(default_factory=list)
    quiet_gateways: list[dict[str, Any]] = field(default_factory=list)
    adherence: list[dict[str, Any]] = field(default_factory=list)
    """Per enrolled participant and timetable day: windows, done, late, failed, missed, due,
    extra (every day of the timetable, the future ones due)."""
    adherence_totals: list[dict[str, Any]] = field(default_factory=list)
    unblinded: bool = False
    arms: dict[str, str] = field(default_factory=dict)
    """Participant -> arm: only in a report made with an unblinding reason (logged)."""
    arm_totals: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"


_CELLS = f"""
WITH running AS (
    SELECT session_uuid, count(*) AS n FROM samples
    WHERE channel = 0 AND state = {int(FirmwareState.RUNNING)} GROUP BY session_uuid
), pressed AS (
    SELECT session_uuid, count(*) AS n FROM comfort_events GROUP BY session_uuid
)
SELECT coalesce(se.participant, '') AS participant,
    to_char(se.started_at AT TIME ZONE coalesce(e.timetable->>'timezone', 'UTC'), 'YYYY-MM-DD')
        AS day,
    count(*) AS started,
    count(*) FILTER (WHERE outcome = 'completed') AS completed,
    count(*) FILTER (WHERE outcome = any($1::text[])) AS faulted,
    count(*) FILTER (WHERE outcome = any($2::text[])) AS stopped,
    (coalesce(sum(r.n), 0) * 0.25 / 60)::float8 AS minutes,
    coalesce(sum(p.n), 0)::int AS too_strong
FROM sessions se
LEFT JOIN enrolments e USING (participant)
LEFT JOIN running r USING (session_uuid)
LEFT JOIN pressed p USING (session_uuid)
GROUP BY 1, 2 ORDER BY 1, 2
"""


async def build(
    conn: Any,
    *,
    now: dt.datetime | None = None,
    quiet_days: int = 2,
    quiet_hours: float = 24,
    arms: Mapping[str, str] | None = None,
) -> Report:
    """The report as of `now`; `arms` (participant -> arm, from a logged unblinding) adds
    each participant's arm and adherence per arm."""
    now = now or dt.datetime.now(dt.UTC)
    rows = await conn.fetch(_CELLS, list(FAULTED), list(STOPPED))
    cells = [
        Cell(
            participant=r["participant"],
            day=r["day"],
            started=r["started"],
            completed=r["completed"],
            faulted=r["faulted"],
            stopped=r["stopped"],
            minutes=round(float(r["minutes"]), 2),
            too_strong=int(r["too_strong"]),
        )
        for r in rows
    ]
    followed = await enrolled_adherence(conn, now)
    shown_days = [
        day.date
        for p in followed
        for day in p.days
        if dt.date.fromisoformat(day.date) <= p.timetable.local_date(now)
    ]
    report = Report(
        generated_utc=now.isoformat(timespec="seconds"),
        participants=sorted({c.participant for c in cells} | {p.participant for p in followed}),
        days=_days([c.day for c in cells] + shown_days),
        cells=cells,
    )
    for p in followed:
        for day in p.days:
            report.adherence.append({"participant": p.participant, "study": p.study,
                                     **day.as_dict()})  # fmt: skip
        report.adherence_totals.append(
            {"participant": p.participant, "study": p.study, **p.totals()}
        )
    if arms is not None:
        report.unblinded = True
        report.arms = dict(sorted(arms.items()))
        for arm in sorted(set(arms.values())):
            report.arm_totals[arm] = totals(
                day for p in followed if arms.get(p.participant) == arm for day in p.days
            )
    for r in await conn.fetch(
        "SELECT participant, max(started_at) AS last FROM sessions"
        " WHERE participant IS NOT NULL GROUP BY participant ORDER BY participant"
    ):
        idle = (now - r["last"]).total_seconds() / 86_400
        if idle >= quiet_days:
            report.quiet_participants.append(
                {
                    "participant": r["participant"],
                    "last_session_utc": _iso(r["last"]),
                    "days": int(idle),
                }
            )
    for r in await conn.fetch("SELECT name, last_seen FROM gateways ORDER BY name"):
        last = r["last_seen"]
        if last is None or (now - last).total_seconds() >= quiet_hours * 3600:
            report.quiet_gateways.append(
                {
                    "gateway": r["name"],
                    "last_seen_utc": None if last is None else _iso(last),
                    "hours": None
                    if last is None
                    else round((now - last).total_seconds() / 3600, 1),
                }
            )
    return report


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def _days(days: list[str]) -> list[str]:
    """Every day from the first to the last, so a gap shows as an empty column."""
    if not days:
        return []
    first, last = dt.date.fromisoformat(min(days)), dt.date.fromisoformat(max(days))
    return [(first + dt.timedelta(d)).isoformat() for d in range((last - first).days + 1)]
