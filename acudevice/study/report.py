"""How a study is going, at a glance: per participant and day, and who has gone quiet.

Per participant and UTC day: sessions started, completed, faulted (faulted, estopped or
link lost), stopped (stopped or interrupted), minutes of stimulation (channel 0's samples in
RUNNING, 250 ms each) and "too strong" presses. Then participants with no session for
`quiet_days` or more, and gateways not heard from (no batch committed) for `quiet_hours`.
The figure is a heatmap of minutes with the counts written in each cell; matplotlib is
imported only to draw it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from acudevice.protocol import FirmwareState

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
    to_char(se.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
    count(*) AS started,
    count(*) FILTER (WHERE outcome = 'completed') AS completed,
    count(*) FILTER (WHERE outcome = any($1::text[])) AS faulted,
    count(*) FILTER (WHERE outcome = any($2::text[])) AS stopped,
    (coalesce(sum(r.n), 0) * 0.25 / 60)::float8 AS minutes,
    coalesce(sum(p.n), 0)::int AS too_strong
FROM sessions se
LEFT JOIN running r USING (session_uuid)
LEFT JOIN pressed p USING (session_uuid)
GROUP BY 1, 2 ORDER BY 1, 2
"""


async def build(
    conn: Any, *, now: dt.datetime | None = None, quiet_days: int = 2, quiet_hours: float = 24
) -> Report:
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
    report = Report(
        generated_utc=now.isoformat(timespec="seconds"),
        participants=sorted({c.participant for c in cells}),
        days=_days([c.day for c in cells]),
        cells=cells,
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


def draw(report: Report, path: Path) -> None:
    """The heatmap (participants down, days across) with the quiet lists below it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    people, days = report.participants or ["(none)"], report.days or ["(no sessions)"]
    grid = [[float("nan")] * len(days) for _ in people]
    by_key = {(c.participant, c.day): c for c in report.cells}
    width = min(max(6.0, 1.1 * len(days) + 2.5), 40.0)
    height = min(max(3.5, 0.55 * len(people) + 2.8), 40.0)
    fig, ax = plt.subplots(figsize=(width, height))
    for i, who in enumerate(people):
        for j, day in enumerate(days):
            cell = by_key.get((who, day))
            if cell is not None:
                grid[i][j] = cell.minutes
    most = max((c.minutes for c in report.cells), default=0.0) or 1.0
    # the darkest cell stays mid-green, so the counts written on it stay readable
    image = ax.imshow(grid, cmap="Greens", aspect="auto", vmin=0, vmax=most * 1.6)
    for (who, day), cell in by_key.items():
        i, j = people.index(who), days.index(day)
        text = f"{cell.completed}/{cell.started}"
        if cell.faulted:
            text += f"\n{cell.faulted} fault"
        if cell.stopped:
            text += f"\n{cell.stopped} stop"
        if cell.too_strong:
            text += f"\n{cell.too_strong}× strong"
        ax.text(j, i, text, ha="center", va="center", fontsize=7,
                color="#b00000" if cell.faulted else "black",
                fontweight="bold" if cell.faulted else "normal")  # fmt: skip
    ax.set_yticks(range(len(people)), [p or "(no participant)" for p in people])
    ax.set_xticks(range(len(days)), [d[5:] for d in days], rotation=45, ha="right")
    ax.set_xlabel("day (UTC, month-day)")
    ax.set_title(
        "Sessions completed/started per participant and day\n(colour: minutes of stimulation)",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label="minutes of stimulation")
    quiet = [f"{q['participant']} ({q['days']} d)" for q in report.quiet_participants]
    silent = [
        f"{g['gateway']} ({'never' if g['hours'] is None else str(g['hours']) + ' h'})"
        for g in report.quiet_gateways
    ]
    footer = (
        f"No session lately: {', '.join(quiet) or 'nobody'}\n"
        f"Gateways silent: {', '.join(silent) or 'none'}\n"
        f"Generated {report.generated_utc}"
    )
    fig.text(0.01, 0.01, footer, fontsize=8, va="bottom")
    fig.subplots_adjust(bottom=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
